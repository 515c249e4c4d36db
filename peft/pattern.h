// Target patterns for PEFT methods over dotted module names
// ("backbone.layers.*.self_attn.{q,v}_proj"), and the "did you mean" list an
// unmatched pattern reports instead of silently attaching nothing.
#pragma once

#include <string>
#include <vector>

namespace m4 {

// `*` matches within one dotted component, `**` across components, `{a,b}`
// one of the alternatives (no nesting). The whole name must match.
bool match_pattern(const std::string& pattern, const std::string& name);

// Checks the syntax (balanced braces, non-empty alternatives); throws
// m4::Error(kInvalidArgument) naming the pattern.
void check_pattern(const std::string& pattern);

// Up to `n` names closest to `pattern` (edit distance on the pattern with its
// wildcards, then lexicographic), for error messages.
std::vector<std::string> nearest_names(const std::string& pattern, const std::vector<std::string>& names,
                                       size_t n = 5);

}  // namespace m4
