// Task prompt templates as data (M4 paper Table 2): segments tagged with the
// module that consumes them ([E] txt_enc label texts, [B] backbone input), a
// label verbalizer, and the rule mapping generated text back to an answer.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace m4 {

// Which module reads a segment: 'E' = txt_enc (Path-2 label texts), 'B' = backbone.
enum class PromptModule { kTextEncoder, kBackbone };

struct PromptSegment {
  PromptModule module = PromptModule::kBackbone;
  std::string text;  // with {name} placeholders and {{ / }} escapes
};

// How generated text maps back to an answer (generation tasks only).
enum class AnswerRule {
  kNone,                // classification by head / alignment: nothing generated
  kFirstMatchingLabel,  // earliest label (normalised, whole words) in the output
  kExact,               // the whole normalised output equals a label
  kNumber,              // first decimal number in the output (counting)
  kFreeText,            // the text itself (BLEU / WER / F1 tasks)
};

struct Answer {
  int64_t label = -1;             // index into labels, -1 = none matched
  std::optional<double> number;   // kNumber
  std::string text;               // the output with surrounding whitespace trimmed
};

using PromptVars = std::map<std::string, std::string>;

struct PromptTemplate {
  std::string id;
  std::string description;
  std::vector<PromptSegment> segments;
  std::vector<std::string> variables;  // declared, in file order
  PromptVars fixed;                    // task constants, e.g. {src: German}; a given value overrides
  bool labels_from_dataset = false;    // labels come from the HDF5 `label_names`
  std::vector<std::string> labels;     // label id -> verbalizer text
  AnswerRule answer = AnswerRule::kNone;

  bool has_module(PromptModule m) const;
  // The verbalizer to use with a dataset whose HDF5 `label_names` are
  // `dataset_labels` (may be empty when unknown): those names when
  // labels_from_dataset, else this template's texts, which must then be as many.
  std::vector<std::string> labels_for(const std::vector<std::string>& dataset_labels) const;
  // Segments for `m`, rendered and joined by one space. Every placeholder needs
  // a value (from `vars`, else `fixed`); a value for an undeclared variable is
  // an error naming it. Per-example values come from the dataset's text fields.
  std::string render(PromptModule m, const PromptVars& vars) const;
  // Path-2 label texts: the [E] segments rendered once per label with
  // {label} = verbalizer text (`dataset_labels` when labels_from_dataset).
  std::vector<std::string> label_texts(const PromptVars& vars = {},
                                       const std::vector<std::string>& dataset_labels = {}) const;
  // Maps generated text back to an answer with this template's rule.
  Answer parse_answer(const std::string& generated, const std::vector<std::string>& dataset_labels = {}) const;
  // The form that travels in a bundle manifest; parse_prompt_template reads it back.
  nlohmann::json to_json() const;
};

// Validates a parsed template (YAML file or manifest json); reports every
// problem at once as one m4::Error(kBadInput) prefixed with `where`.
PromptTemplate parse_prompt_template(const nlohmann::json& j, const std::string& id, const std::string& where);

// <repo_root>/prompts/templates/<id>.yaml
std::filesystem::path prompt_template_path(const std::filesystem::path& repo_root, const std::string& id);
PromptTemplate load_prompt_template(const std::filesystem::path& repo_root, const std::string& id);
// Ids of every template under <repo_root>/prompts/templates, sorted.
std::vector<std::string> list_prompt_templates(const std::filesystem::path& repo_root);

// Replaces {name} with vars[name]; {{ and }} are literal braces. `declared`
// (when non-null) restricts which names may be used or given. Errors name `where`.
std::string render_text(const std::string& text, const PromptVars& vars, const std::string& where,
                        const std::vector<std::string>* declared = nullptr);
// The placeholder names in `text`, in order of first use; syntax errors name `where`.
std::vector<std::string> placeholders(const std::string& text, const std::string& where);

// Lower-case ASCII, every non-alphanumeric byte -> space, whitespace collapsed
// and trimmed. Bytes >= 0x80 are kept so UTF-8 labels still match.
std::string normalize_answer(const std::string& s);

const char* answer_rule_name(AnswerRule r);
const char* prompt_module_tag(PromptModule m);  // "E" / "B"

}  // namespace m4
