// RFC 4180 CSV parsing (see csv_reader.h).
#include "data/csv_reader.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "core/atomic_file.h"
#include "core/error.h"

namespace m4::data {

int CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return static_cast<int>(i);
  }
  return -1;
}

int CsvTable::require_column(const std::string& name) const {
  int c = column(name);
  if (c < 0) {
    std::string found;
    for (const auto& h : header) found += (found.empty() ? "" : ",") + h;
    M4_FAIL(ErrorCode::kBadInput, path.string(), ": header has no '", name, "' column (found: ", found, ")");
  }
  return c;
}

std::string CsvTable::where(size_t row) const { return path.string() + ":" + std::to_string(lines.at(row)); }

CsvTable read_csv(const std::filesystem::path& path) {
  const std::string text = read_text_file(path, size_t{1} << 30);
  CsvTable t;
  t.path = path;
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false, any = false;
  int64_t line = 1, row_line = 1;
  auto end_row = [&]() {
    fields.push_back(field);
    field.clear();
    bool blank = fields.size() == 1 && fields[0].empty() && !any;
    if (!blank) {
      if (t.header.empty()) {
        t.header = fields;
      } else {
        M4_CHECK(fields.size() == t.header.size(), ErrorCode::kBadInput, path.string(), ":", row_line, ": has ",
                 fields.size(), " fields, the header has ", t.header.size());
        t.rows.push_back(fields);
        t.lines.push_back(row_line);
      }
    }
    fields.clear();
    any = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char ch = text[i];
    if (quoted) {
      if (ch == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (ch == '\n') ++line;
        field += ch;
      }
    } else if (ch == '"') {
      quoted = true;
      any = true;
    } else if (ch == ',') {
      fields.push_back(field);
      field.clear();
      any = true;
    } else if (ch == '\r') {
      // CRLF line ends: the '\n' ends the row.
    } else if (ch == '\n') {
      end_row();
      ++line;
      row_line = line;
    } else {
      field += ch;
      any = true;
    }
  }
  M4_CHECK(!quoted, ErrorCode::kBadInput, path.string(), ":", row_line, ": unterminated quoted field");
  if (!field.empty() || !fields.empty() || any) end_row();
  M4_CHECK(!t.header.empty(), ErrorCode::kBadInput, path.string(), ": empty CSV (no header row)");
  for (auto& h : t.header) {
    // Tolerate spaces around header names ("file, label").
    size_t a = h.find_first_not_of(' '), b = h.find_last_not_of(' ');
    h = a == std::string::npos ? "" : h.substr(a, b - a + 1);
  }
  M4_CHECK(!t.rows.empty(), ErrorCode::kBadInput, path.string(), ": no data rows after the header");
  return t;
}

bool parse_finite_float(const std::string& cell, float* out) {
  if (cell.empty()) return false;
  char* end = nullptr;
  errno = 0;
  *out = std::strtof(cell.c_str(), &end);
  return end == cell.c_str() + cell.size() && errno == 0 && std::isfinite(*out);
}

}  // namespace m4::data
