// Glob-like matching over dotted names, and nearest-name suggestions.
#include "peft/pattern.h"

#include <algorithm>

#include "core/error.h"

namespace m4 {
namespace {

// Expands the {a,b} groups into plain glob patterns.
std::vector<std::string> expand_braces(const std::string& p) {
  const size_t open = p.find('{');
  if (open == std::string::npos) return {p};
  const size_t close = p.find('}', open);
  std::vector<std::string> out;
  const std::string head = p.substr(0, open), tail = p.substr(close + 1), body = p.substr(open + 1, close - open - 1);
  size_t start = 0;
  while (true) {
    const size_t comma = body.find(',', start);
    const std::string alt = body.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    for (auto& rest : expand_braces(tail)) out.push_back(head + alt + rest);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

bool glob(const char* p, const char* s) {
  if (*p == '\0') return *s == '\0';
  if (p[0] == '*' && p[1] == '*') {
    for (const char* t = s;; ++t) {
      if (glob(p + 2, t)) return true;
      if (*t == '\0') return false;
    }
  }
  if (*p == '*') {
    for (const char* t = s;; ++t) {
      if (glob(p + 1, t)) return true;
      if (*t == '\0' || *t == '.') return false;
    }
  }
  return *s != '\0' && *p == *s && glob(p + 1, s + 1);
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

void check_pattern(const std::string& pattern) {
  M4_CHECK(!pattern.empty(), ErrorCode::kInvalidArgument, "empty target pattern");
  bool in = false;
  size_t open = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '{') {
      M4_CHECK(!in, ErrorCode::kInvalidArgument, "target pattern '", pattern, "': nested '{'");
      in = true;
      open = i;
    } else if (c == '}') {
      M4_CHECK(in, ErrorCode::kInvalidArgument, "target pattern '", pattern, "': '}' without '{'");
      const std::string body = pattern.substr(open + 1, i - open - 1);
      M4_CHECK(!body.empty() && body.front() != ',' && body.back() != ',' && body.find(",,") == std::string::npos,
               ErrorCode::kInvalidArgument, "target pattern '", pattern, "': empty alternative in {", body, "}");
      in = false;
    }
  }
  M4_CHECK(!in, ErrorCode::kInvalidArgument, "target pattern '", pattern, "': unclosed '{'");
}

bool match_pattern(const std::string& pattern, const std::string& name) {
  for (const auto& p : expand_braces(pattern)) {
    if (glob(p.c_str(), name.c_str())) return true;
  }
  return false;
}

std::vector<std::string> nearest_names(const std::string& pattern, const std::vector<std::string>& names, size_t n) {
  // Layer indices become '*', so 32 layers suggest one name, not 32.
  std::vector<std::string> general;
  for (const auto& name : names) {
    std::string g, comp;
    for (size_t i = 0; i <= name.size(); ++i) {
      if (i == name.size() || name[i] == '.') {
        const bool digits = !comp.empty() && comp.find_first_not_of("0123456789") == std::string::npos;
        if (!g.empty()) g += '.';
        g += digits ? std::string("*") : comp;
        comp.clear();
      } else {
        comp += name[i];
      }
    }
    if (std::find(general.begin(), general.end(), g) == general.end()) general.push_back(g);
  }
  std::vector<std::pair<size_t, std::string>> scored;
  const auto alts = expand_braces(pattern);
  for (const auto& name : general) {
    size_t best = SIZE_MAX;
    for (const auto& a : alts) best = std::min(best, edit_distance(a, name));
    scored.emplace_back(best, name);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && i < n; ++i) out.push_back(scored[i].second);
  return out;
}

}  // namespace m4
