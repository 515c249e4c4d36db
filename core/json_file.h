// JSON files and multi-problem validation, the two things every config and
// manifest reader does: parse with a one-line error naming the file, and
// report every problem found at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"

namespace m4 {

// Reads and parses a (small) JSON file of at most `max_bytes`; m4::Error(kBadInput) names the file.
nlohmann::json read_json_file(const std::filesystem::path& path, size_t max_bytes = 64 << 20);

// Calls fn(line number, row) for every non-empty line of a JSON Lines file;
// `row` is discarded (row.is_discarded()) where the line is not JSON, for the
// caller to count or refuse. The file must be a regular file (`noun` names it:
// "metrics file") of at most `max_bytes`, both checked before it is read.
void for_each_json_line(const std::filesystem::path& path, uint64_t max_bytes, const char* noun,
                        const std::function<void(int64_t line_no, const nlohmann::json& row)>& fn);

// j[key] when it holds a T (a number for arithmetic T), else `fallback`:
// for rows written by m4forge and perhaps edited by hand, where a wrong type
// must not stop a reader that only displays them.
template <typename T>
T json_or(const nlohmann::json& j, const char* key, T fallback) {
  if (!j.is_object() || !j.contains(key)) return fallback;
  const nlohmann::json& v = j.at(key);
  if constexpr (std::is_same_v<T, std::string>) {
    return v.is_string() ? v.get<std::string>() : fallback;
  } else {
    return v.is_number() ? v.get<T>() : fallback;
  }
}

// Throws one m4::Error "where: p1; p2; ..." if there are problems.
void check_problems(const std::vector<std::string>& problems, const std::string& where,
                    ErrorCode code = ErrorCode::kBadInput);

}  // namespace m4
