// JSON files and multi-problem validation.
#include "core/json_file.h"

#include "core/atomic_file.h"

namespace m4 {

nlohmann::json read_json_file(const std::filesystem::path& path, size_t max_bytes) {
  const std::string text = read_text_file(path, max_bytes);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    M4_FAIL(ErrorCode::kBadInput, path.string(), ": not valid JSON (", e.what(), ")");
  }
}

void check_problems(const std::vector<std::string>& problems, const std::string& where, ErrorCode code) {
  if (problems.empty()) return;
  std::string all;
  for (size_t i = 0; i < problems.size(); ++i) all += (i ? "; " : "") + problems[i];
  M4_FAIL(code, where, ": ", all);
}

}  // namespace m4
