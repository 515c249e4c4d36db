// YAML -> nlohmann::json with YAML 1.2 core-schema scalar typing, so the rest of
// m4forge sees task configs and prompt templates as plain json (yaml-cpp stays private).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace m4 {

// Bounds on what a YAML document may become, checked as it is read: its file
// size, the nodes of its expanded tree (every alias counts again) and its depth.
inline constexpr size_t kMaxYamlBytes = 16 << 20;
inline constexpr int64_t kMaxYamlNodes = 1000000;
inline constexpr int kMaxYamlDepth = 200;

// Parses one YAML document. Plain scalars become null/bool/int/float when they
// match the core schema (`1e-4` is a float, `on`/`yes` stay strings); quoted
// scalars are always strings. Duplicate mapping keys, non-scalar keys, and
// syntax errors are m4::Error(kBadInput) naming `where` (and line:column), as
// is a document past the bounds above.
nlohmann::json parse_yaml(const std::string& text, const std::string& where);

// Reads and parses a YAML file; errors name the file.
nlohmann::json read_yaml_file(const std::filesystem::path& path);

// Types one plain scalar the way parse_yaml would (used for CLI overrides,
// where `k=[a, b]` is parsed as a YAML flow value).
nlohmann::json parse_yaml_value(const std::string& text, const std::string& where);

}  // namespace m4
