// JSON files and multi-problem validation.
#include "core/json_file.h"

#include <fstream>

#include "core/atomic_file.h"
#include "core/mapped_file.h"

namespace m4 {

nlohmann::json read_json_file(const std::filesystem::path& path, size_t max_bytes) {
  const std::string text = read_text_file(path, max_bytes);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    M4_FAIL(ErrorCode::kBadInput, path.string(), ": not valid JSON (", e.what(), ")");
  }
}

void for_each_json_line(const std::filesystem::path& path, uint64_t max_bytes, const char* noun,
                        const std::function<void(int64_t, const nlohmann::json&)>& fn) {
  check_regular_file(path, noun);
  const uint64_t size = std::filesystem::file_size(path);
  M4_CHECK(size <= max_bytes, ErrorCode::kBadInput, path.string(), ": ", size, " bytes, more than the ", max_bytes, " a ", noun,
           " may hold");
  std::ifstream in(path);
  M4_CHECK(in, ErrorCode::kIo, path.string(), ": cannot open");
  int64_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (!line.empty()) fn(line_no, nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false));
  }
  M4_CHECK(!in.bad(), ErrorCode::kIo, path.string(), ": read failed");
}

void check_problems(const std::vector<std::string>& problems, const std::string& where, ErrorCode code) {
  if (problems.empty()) return;
  std::string all;
  for (size_t i = 0; i < problems.size(); ++i) all += (i ? "; " : "") + problems[i];
  M4_FAIL(code, where, ": ", all);
}

}  // namespace m4
