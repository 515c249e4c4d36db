// JSON files and multi-problem validation, the two things every config and
// manifest reader does: parse with a one-line error naming the file, and
// report every problem found at once.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace m4 {

// Reads and parses a (small) JSON file of at most `max_bytes`; m4::Error(kBadInput) names the file.
nlohmann::json read_json_file(const std::filesystem::path& path, size_t max_bytes = 64 << 20);

// Throws one m4::Error "where: p1; p2; ..." if there are problems.
void check_problems(const std::vector<std::string>& problems, const std::string& where,
                    ErrorCode code = ErrorCode::kBadInput);

}  // namespace m4
