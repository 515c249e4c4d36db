// Prompt templates: parsing/validation of prompts/templates/<id>.yaml, the
// deterministic renderer, and answer mapping for generation tasks.
#include "prompts/prompt_template.h"

#include <algorithm>
#include <charconv>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/json_file.h"
#include "core/yaml_json.h"

namespace m4 {
namespace {

// ASCII only, by hand: <cctype> classification would follow the process locale.
bool is_name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

bool is_identifier(const std::string& s) {
  if (s.empty() || !is_name_char(s[0], true)) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_name_char(c, false); });
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// Walks `text` once; calls on_literal for text and on_var for each {name}.
template <typename OnLiteral, typename OnVar>
void scan(const std::string& text, const std::string& where, OnLiteral on_literal, OnVar on_var) {
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '{') {
      if (i + 1 < text.size() && text[i + 1] == '{') {
        on_literal('{');
        i += 2;
        continue;
      }
      const size_t close = text.find('}', i + 1);
      M4_CHECK(close != std::string::npos, ErrorCode::kBadInput, where, ": unterminated '{' at offset ", i,
               " in \"", text, "\" (write '{{' for a literal brace)");
      const std::string name = text.substr(i + 1, close - i - 1);
      M4_CHECK(is_identifier(name), ErrorCode::kBadInput, where, ": bad placeholder '{", name, "}' in \"", text,
               "\" (names are letters, digits and '_')");
      on_var(name);
      i = close + 1;
    } else if (c == '}') {
      M4_CHECK(i + 1 < text.size() && text[i + 1] == '}', ErrorCode::kBadInput, where, ": single '}' at offset ", i,
               " in \"", text, "\" (write '}}' for a literal brace)");
      on_literal('}');
      i += 2;
    } else {
      on_literal(c);
      ++i;
    }
  }
}

// "[E] a [B] b" or ["[E] a", "[B] b"] -> segments. Tags are reserved words.
std::vector<PromptSegment> split_segments(const std::string& s, std::vector<std::string>& problems) {
  static const std::regex kTag("\\[(E|B)\\]");
  std::vector<PromptSegment> out;
  const std::string t = trim(s);
  auto it = std::sregex_iterator(t.begin(), t.end(), kTag);
  const auto end = std::sregex_iterator();
  if (it == end || it->position() != 0) {
    problems.push_back("template: segment \"" + t + "\" must start with a module tag [E] (txt_enc) or [B] (backbone)");
    return out;
  }
  for (; it != end; ++it) {
    auto next = std::next(it);
    const size_t start = it->position() + it->length();
    const size_t stop = next == end ? t.size() : static_cast<size_t>(next->position());
    PromptSegment seg;
    seg.module = (*it)[1] == "E" ? PromptModule::kTextEncoder : PromptModule::kBackbone;
    seg.text = trim(t.substr(start, stop - start));
    if (seg.text.empty()) problems.push_back("template: empty [" + std::string((*it)[1]) + "] segment");
    out.push_back(std::move(seg));
  }
  return out;
}

AnswerRule parse_rule(const std::string& s, bool* ok) {
  *ok = true;
  if (s == "first_matching_label") return AnswerRule::kFirstMatchingLabel;
  if (s == "exact") return AnswerRule::kExact;
  if (s == "number") return AnswerRule::kNumber;
  if (s == "free_text") return AnswerRule::kFreeText;
  *ok = false;
  return AnswerRule::kNone;
}

}  // namespace

const char* answer_rule_name(AnswerRule r) {
  switch (r) {
    case AnswerRule::kNone: return "none";
    case AnswerRule::kFirstMatchingLabel: return "first_matching_label";
    case AnswerRule::kExact: return "exact";
    case AnswerRule::kNumber: return "number";
    case AnswerRule::kFreeText: return "free_text";
  }
  return "?";
}

const char* prompt_module_tag(PromptModule m) { return m == PromptModule::kTextEncoder ? "E" : "B"; }

std::vector<std::string> placeholders(const std::string& text, const std::string& where) {
  std::vector<std::string> names;
  scan(text, where, [](char) {}, [&](const std::string& n) {
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  });
  return names;
}

std::string render_text(const std::string& text, const PromptVars& vars, const std::string& where,
                        const std::vector<std::string>* declared) {
  if (declared) {
    for (const auto& [k, v] : vars) {
      M4_CHECK(std::find(declared->begin(), declared->end(), k) != declared->end(), ErrorCode::kInvalidArgument,
               where, ": value given for undeclared variable '", k, "' (declared: ", join(*declared), ")");
    }
  }
  std::string out;
  out.reserve(text.size() + 32);
  scan(text, where, [&](char c) { out.push_back(c); }, [&](const std::string& n) {
    M4_CHECK(!declared || std::find(declared->begin(), declared->end(), n) != declared->end(),
             ErrorCode::kBadInput, where, ": template uses undeclared variable '", n, "' (declared: ", join(*declared),
             ")");
    auto it = vars.find(n);
    M4_CHECK(it != vars.end(), ErrorCode::kInvalidArgument, where, ": no value for variable '", n, "'");
    out += it->second;
  });
  return out;
}

std::string normalize_answer(const std::string& s) {
  std::string out;
  bool space = false;
  for (unsigned char c : s) {
    // ASCII-only case folding on purpose: std::tolower would depend on the locale.
    const bool keep = c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!keep) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c));
  }
  return out;
}

bool PromptTemplate::has_module(PromptModule m) const {
  return std::any_of(segments.begin(), segments.end(), [&](const PromptSegment& s) { return s.module == m; });
}

std::string PromptTemplate::render(PromptModule m, const PromptVars& vars) const {
  const std::string where = "prompt template '" + id + "' [" + prompt_module_tag(m) + "]";
  M4_CHECK(has_module(m), ErrorCode::kInvalidArgument, where, ": the template has no [", prompt_module_tag(m),
           "] segment");
  PromptVars all = fixed;
  for (const auto& [k, v] : vars) all[k] = v;
  std::string out;
  for (const auto& seg : segments) {
    if (seg.module != m) continue;
    if (!out.empty()) out.push_back(' ');
    out += render_text(seg.text, all, where, &variables);
  }
  return out;
}

std::vector<std::string> PromptTemplate::labels_for(const std::vector<std::string>& dataset_labels) const {
  if (labels_from_dataset) {
    M4_CHECK(!dataset_labels.empty(), ErrorCode::kInvalidArgument, "prompt template '", id,
             "': no labels (labels.from_dataset needs the dataset's label_names)");
    return dataset_labels;
  }
  M4_CHECK(!labels.empty(), ErrorCode::kInvalidArgument, "prompt template '", id, "' has no labels");
  // Ids are positions: a count mismatch means the verbalizer was written for other data.
  M4_CHECK(dataset_labels.empty() || dataset_labels.size() == labels.size(), ErrorCode::kMismatch,
           "prompt template '", id, "' has ", labels.size(), " labels but the dataset has ", dataset_labels.size(),
           " label_names (hint: the verbalizer was written for another dataset; use labels: {from_dataset: true} "
           "or list one text per dataset label)");
  return labels;
}

std::vector<std::string> PromptTemplate::label_texts(const PromptVars& vars,
                                                     const std::vector<std::string>& dataset_labels) const {
  const std::vector<std::string> names = labels_for(dataset_labels);
  M4_CHECK(std::find(variables.begin(), variables.end(), "label") != variables.end(), ErrorCode::kInvalidArgument,
           "prompt template '", id, "': label texts need a {label} variable");
  M4_CHECK(!vars.count("label"), ErrorCode::kInvalidArgument, "prompt template '", id,
           "': {label} is filled from the verbalizer, not given");
  std::vector<std::string> out;
  out.reserve(names.size());
  PromptVars v = vars;
  for (const auto& name : names) {
    v["label"] = name;
    out.push_back(render(PromptModule::kTextEncoder, v));
  }
  return out;
}

Answer PromptTemplate::parse_answer(const std::string& generated, const std::vector<std::string>& dataset_labels) const {
  Answer a;
  a.text = trim(generated);
  switch (answer) {
    case AnswerRule::kNone:
      M4_FAIL(ErrorCode::kInvalidArgument, "prompt template '", id, "' has no answer rule (not a generation task)");
    case AnswerRule::kFreeText:
      return a;
    case AnswerRule::kNumber: {
      static const std::regex kNum("[-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)");
      std::smatch m;
      if (std::regex_search(a.text, m, kNum)) {
        std::string s = m.str();
        if (s[0] == '+') s.erase(0, 1);
        double v = 0;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec == std::errc()) a.number = v;
      }
      return a;
    }
    case AnswerRule::kExact:
    case AnswerRule::kFirstMatchingLabel: {
      const std::vector<std::string> names = labels_for(dataset_labels);
      const std::string gen = normalize_answer(generated);
      if (answer == AnswerRule::kExact) {
        for (size_t i = 0; i < names.size(); ++i) {
          if (normalize_answer(names[i]) == gen) {
            a.label = static_cast<int64_t>(i);
            break;
          }
        }
        return a;
      }
      // Earliest whole-word match; at the same position the longer label wins
      // ("sea lion" over "sea"), and then the lower id, so the result never
      // depends on iteration order.
      const std::string hay = " " + gen + " ";
      size_t best_pos = std::string::npos, best_len = 0;
      for (size_t i = 0; i < names.size(); ++i) {
        const std::string lab = normalize_answer(names[i]);
        if (lab.empty()) continue;
        const size_t pos = hay.find(" " + lab + " ");
        if (pos == std::string::npos) continue;
        if (pos < best_pos || (pos == best_pos && lab.size() > best_len)) {
          best_pos = pos;
          best_len = lab.size();
          a.label = static_cast<int64_t>(i);
        }
      }
      return a;
    }
  }
  return a;
}

nlohmann::json PromptTemplate::to_json() const {
  nlohmann::json j;
  j["description"] = description;
  nlohmann::json segs = nlohmann::json::array();
  for (const auto& s : segments) segs.push_back(std::string("[") + prompt_module_tag(s.module) + "] " + s.text);
  j["template"] = segs;
  j["variables"] = variables;
  if (!fixed.empty()) j["fixed"] = fixed;
  if (labels_from_dataset) {
    j["labels"] = {{"from_dataset", true}};
  } else if (!labels.empty()) {
    j["labels"] = labels;
  }
  if (answer != AnswerRule::kNone) j["answer"] = answer_rule_name(answer);
  return j;
}

PromptTemplate parse_prompt_template(const nlohmann::json& j, const std::string& id, const std::string& where) {
  PromptTemplate t;
  t.id = id;
  std::vector<std::string> problems;
  if (!j.is_object()) {
    check_problems({"expected a mapping with template, variables, labels, answer"}, where);
  }
  static const std::vector<std::string> kKeys = {"description", "template", "variables", "fixed", "labels", "answer", "note"};
  for (const auto& [k, v] : j.items()) {
    if (std::find(kKeys.begin(), kKeys.end(), k) == kKeys.end()) {
      problems.push_back("unknown key '" + k + "' (known: " + join(kKeys) + ")");
    }
  }
  if (j.contains("description")) {
    if (j["description"].is_string()) t.description = j["description"].get<std::string>();
    else problems.push_back("description: expected a string");
  }

  // template: one string, or a list of strings, each starting with a tag.
  if (!j.contains("template")) {
    problems.push_back("missing required key 'template'");
  } else if (j["template"].is_string()) {
    t.segments = split_segments(j["template"].get<std::string>(), problems);
  } else if (j["template"].is_array() && !j["template"].empty()) {
    for (const auto& s : j["template"]) {
      if (!s.is_string()) {
        problems.push_back("template: list items must be strings");
        continue;
      }
      for (auto& seg : split_segments(s.get<std::string>(), problems)) t.segments.push_back(std::move(seg));
    }
  } else {
    problems.push_back("template: expected a string or a non-empty list of strings");
  }

  if (j.contains("variables")) {
    const auto& v = j["variables"];
    if (!v.is_array()) {
      problems.push_back("variables: expected a list of names");
    } else {
      for (const auto& n : v) {
        if (!n.is_string() || !is_identifier(n.get<std::string>())) {
          problems.push_back("variables: '" + (n.is_string() ? n.get<std::string>() : n.dump()) +
                             "' is not a name (letters, digits, '_')");
        } else if (std::find(t.variables.begin(), t.variables.end(), n.get<std::string>()) != t.variables.end()) {
          problems.push_back("variables: '" + n.get<std::string>() + "' declared twice");
        } else {
          t.variables.push_back(n.get<std::string>());
        }
      }
    }
  }

  if (j.contains("fixed")) {
    const auto& f = j["fixed"];
    if (!f.is_object()) problems.push_back("fixed: expected a mapping {variable: text}");
    else {
      for (const auto& [k, v] : f.items()) {
        if (std::find(t.variables.begin(), t.variables.end(), k) == t.variables.end()) {
          problems.push_back("fixed: '" + k + "' is not a declared variable (declared: " + join(t.variables) + ")");
        } else if (!v.is_string()) {
          problems.push_back("fixed." + k + ": expected a string (got " + v.dump() + ")");
        } else if (k == "label") {
          problems.push_back("fixed: {label} comes from the verbalizer and cannot be fixed");
        } else {
          t.fixed[k] = v.get<std::string>();
        }
      }
    }
  }

  // Placeholders vs declarations: both directions, so a typo on either side shows.
  std::set<std::string> used;
  for (const auto& seg : t.segments) {
    try {
      for (const auto& n : placeholders(seg.text, "template")) {
        used.insert(n);
        if (std::find(t.variables.begin(), t.variables.end(), n) == t.variables.end()) {
          problems.push_back("template uses undeclared variable '" + n + "' (declared: " + join(t.variables) + ")");
        }
      }
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
  }
  for (const auto& n : t.variables) {
    if (!used.count(n)) problems.push_back("variables: '" + n + "' is declared but not used in the template");
  }

  if (j.contains("labels")) {
    const auto& l = j["labels"];
    if (l.is_object() && l.contains("from_dataset")) {
      if (l.size() != 1 || !l["from_dataset"].is_boolean() || !l["from_dataset"].get<bool>()) {
        problems.push_back("labels: write either `from_dataset: true` or the label texts");
      } else {
        t.labels_from_dataset = true;
      }
    } else if (l.is_array()) {
      for (const auto& s : l) {
        if (s.is_string() && !s.get<std::string>().empty()) t.labels.push_back(s.get<std::string>());
        else problems.push_back("labels: every label text must be a non-empty string (got " + s.dump() + ")");
      }
    } else if (l.is_object()) {
      // {0: text, 1: text, ...}: ids must be 0..n-1 so they are the dataset's label ints.
      std::map<int64_t, std::string> by_id;
      for (const auto& [k, v] : l.items()) {
        int64_t id_num = -1;
        auto [p, ec] = std::from_chars(k.data(), k.data() + k.size(), id_num);
        if (ec != std::errc() || p != k.data() + k.size() || id_num < 0) {
          problems.push_back("labels: key '" + k + "' is not a label id (0, 1, ...)");
        } else if (!v.is_string() || v.get<std::string>().empty()) {
          problems.push_back("labels." + k + ": expected a non-empty string");
        } else {
          by_id[id_num] = v.get<std::string>();
        }
      }
      int64_t expect = 0;
      for (const auto& [k, v] : by_id) {
        if (k != expect) {
          problems.push_back("labels: ids must be 0.." + std::to_string(by_id.size() - 1) + " without gaps (missing " +
                             std::to_string(expect) + ")");
          break;
        }
        t.labels.push_back(v);
        ++expect;
      }
    } else {
      problems.push_back("labels: expected a list, a map {id: text}, or {from_dataset: true}");
    }
    // Two labels with the same normalised text could never be told apart.
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < t.labels.size(); ++i) {
      auto [it, fresh] = seen.emplace(normalize_answer(t.labels[i]), i);
      if (!fresh) {
        problems.push_back("labels: " + std::to_string(it->second) + " '" + t.labels[it->second] + "' and " +
                           std::to_string(i) + " '" + t.labels[i] + "' normalise to the same text");
      }
    }
  }
  const bool has_labels = t.labels_from_dataset || !t.labels.empty();
  if (used.count("label") && !has_labels) problems.push_back("template uses {label} but `labels` is missing");

  if (j.contains("answer")) {
    bool ok = j["answer"].is_string();
    if (ok) t.answer = parse_rule(j["answer"].get<std::string>(), &ok);
    if (!ok) {
      problems.push_back("answer: unknown rule " + j["answer"].dump() +
                         " (known: first_matching_label, exact, number, free_text)");
    } else if ((t.answer == AnswerRule::kExact || t.answer == AnswerRule::kFirstMatchingLabel) && !has_labels) {
      problems.push_back(std::string("answer: '") + answer_rule_name(t.answer) + "' needs `labels`");
    }
    if (ok && !t.has_module(PromptModule::kBackbone)) {
      problems.push_back("answer: only generation tasks have one, and they need a [B] segment");
    }
  }
  check_problems(problems, where);
  return t;
}

std::filesystem::path prompt_template_path(const std::filesystem::path& repo_root, const std::string& id) {
  return repo_root / "prompts" / "templates" / (id + ".yaml");
}

PromptTemplate load_prompt_template(const std::filesystem::path& repo_root, const std::string& id) {
  M4_CHECK(is_identifier(id), ErrorCode::kInvalidArgument, "prompt id '", id,
           "' is not a name (letters, digits, '_')");
  const auto path = prompt_template_path(repo_root, id);
  M4_CHECK(std::filesystem::is_regular_file(path), ErrorCode::kIo, "prompt template '", id, "' not found at ",
           path.string());
  return parse_prompt_template(read_yaml_file(path), id, path.string());
}

std::vector<std::string> list_prompt_templates(const std::filesystem::path& repo_root) {
  std::vector<std::string> ids;
  const auto dir = repo_root / "prompts" / "templates";
  M4_CHECK(std::filesystem::is_directory(dir), ErrorCode::kIo, "no prompt template directory ", dir.string());
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".yaml") ids.push_back(e.path().stem().string());
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace m4
