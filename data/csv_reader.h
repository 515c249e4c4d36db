// A small RFC 4180 CSV reader for the importers: a header row, quoted fields
// ("a, ""b""" -> a, "b"), and each row's line number for error messages.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace m4::data {

struct CsvTable {
  std::filesystem::path path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // each as many fields as the header
  std::vector<int64_t> lines;                  // 1-based line where each row starts

  int column(const std::string& name) const;  // -1 when absent
  // The column's index, or m4::Error naming the file, the column and the header.
  int require_column(const std::string& name) const;
  // "file.csv:7" for messages about row i.
  std::string where(size_t row) const;
};

// A CSV cell that is wholly one finite number (no trailing text, no NaN/inf).
bool parse_finite_float(const std::string& cell, float* out);

// Blank lines are skipped; a row with a different field count than the header
// is an error naming its line.
CsvTable read_csv(const std::filesystem::path& path);

}  // namespace m4::data
