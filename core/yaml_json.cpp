// YAML -> json: yaml-cpp does the parsing, this file does the typing of plain
// scalars (YAML 1.2 core schema, https://yaml.org/spec/1.2.2/#1032-tag-resolution).
#include "core/yaml_json.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <regex>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"

namespace m4 {
namespace {

// Core-schema resolution of an untagged plain scalar. Numbers go through
// from_chars, so a user's locale never changes what "0.5" means.
nlohmann::json resolve_plain(const std::string& s) {
  static const std::regex kNull("null|Null|NULL|~|");
  static const std::regex kTrue("true|True|TRUE");
  static const std::regex kFalse("false|False|FALSE");
  static const std::regex kInt("[-+]?[0-9]+");
  static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  static const std::regex kInf("[-+]?\\.(inf|Inf|INF)");
  static const std::regex kNan("\\.(nan|NaN|NAN)");
  if (std::regex_match(s, kNull)) return nullptr;
  if (std::regex_match(s, kTrue)) return true;
  if (std::regex_match(s, kFalse)) return false;
  if (std::regex_match(s, kInt)) {
    const char* b = s.data() + (s[0] == '+' ? 1 : 0);
    int64_t v = 0;
    auto [p, ec] = std::from_chars(b, s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size()) return v;
    // Out of int64 range: fall through to float like most YAML loaders.
  }
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), v, s[1] == 'x' ? 16 : 8);
    if (ec == std::errc() && p == s.data() + s.size()) return v;
  }
  if (std::regex_match(s, kFloat)) {
    const char* b = s.data() + (s[0] == '+' ? 1 : 0);
    double v = 0;
    auto [p, ec] = std::from_chars(b, s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size()) return v;
  }
  if (std::regex_match(s, kInf)) {
    return s[0] == '-' ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  if (std::regex_match(s, kNan)) return std::numeric_limits<double>::quiet_NaN();
  return s;
}

// Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF),
// as JSON needs: a config is written back into run records and manifests.
bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

std::string mark_of(const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  if (m.line < 0) return "";
  // ostringstream, not operator+: GCC 12 warns falsely (-Wstringop-overflow) on the latter here.
  std::ostringstream os;
  os << ':' << m.line + 1 << ':' << m.column + 1;
  return os.str();
}

// Aliases make a small file a large tree ("billion laughs": 12 nested 10x
// anchors are 10^12 nodes); yaml-cpp shares aliased nodes, the copy into json
// would not. Every node of the expanded tree counts.
struct Budget {
  int64_t nodes = 0;
  void take(const YAML::Node& n, const std::string& where, int depth) {
    M4_CHECK(++nodes <= kMaxYamlNodes, ErrorCode::kBadInput, where, mark_of(n), ": the YAML document expands past ",
             kMaxYamlNodes, " nodes (aliases included); refusing it");
    M4_CHECK(depth <= kMaxYamlDepth, ErrorCode::kBadInput, where, mark_of(n), ": the YAML document nests deeper than ",
             kMaxYamlDepth, " levels");
  }
};

nlohmann::json to_json(const YAML::Node& n, const std::string& where, Budget& budget, int depth) {
  budget.take(n, where, depth);
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      M4_CHECK(valid_utf8(n.Scalar()), ErrorCode::kBadInput, where, mark_of(n), ": not valid UTF-8");
      // "?" = untagged plain scalar; "!" = quoted (non-specific tag): always a string.
      if (n.Tag() == "?") return resolve_plain(n.Scalar());
      if (n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str") return n.Scalar();
      M4_FAIL(ErrorCode::kBadInput, where, mark_of(n), ": unsupported YAML tag '", n.Tag(), "'");
    case YAML::NodeType::Sequence: {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& item : n) arr.push_back(to_json(item, where, budget, depth + 1));
      return arr;
    }
    case YAML::NodeType::Map: {
      nlohmann::json obj = nlohmann::json::object();
      for (const auto& kv : n) {
        M4_CHECK(kv.first.IsScalar(), ErrorCode::kBadInput, where, mark_of(kv.first),
                 ": mapping keys must be plain scalars");
        const std::string key = kv.first.Scalar();
        M4_CHECK(valid_utf8(key), ErrorCode::kBadInput, where, mark_of(kv.first), ": a key is not valid UTF-8");
        // yaml-cpp keeps duplicates; silently taking one would hide a typo'd config.
        M4_CHECK(!obj.contains(key), ErrorCode::kBadInput, where, mark_of(kv.first), ": duplicate key '", key,
                 "'");
        obj[key] = to_json(kv.second, where, budget, depth + 1);
      }
      return obj;
    }
  }
  M4_FAIL(ErrorCode::kInternal, where, ": unknown YAML node type");
}

}  // namespace

nlohmann::json parse_yaml(const std::string& text, const std::string& where) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    M4_FAIL(ErrorCode::kBadInput, where, ":", e.mark.line + 1, ":", e.mark.column + 1, ": not valid YAML (", e.msg,
            ")");
  }
  Budget budget;
  return to_json(root, where, budget, 0);
}

nlohmann::json read_yaml_file(const std::filesystem::path& path) {
  return parse_yaml(read_text_file(path, kMaxYamlBytes), path.string());
}

nlohmann::json parse_yaml_value(const std::string& text, const std::string& where) {
  // An empty override value means "empty string", not null: `data.prepare=`.
  if (text.empty()) return std::string();
  return parse_yaml(text, where);
}

}  // namespace m4
