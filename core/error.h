// m4forge's one error type and check macro, in the spirit of TORCH_CHECK: the
// message says what was expected, what was found, where, and (optionally) a hint.
// Errors are caught only in main() (one line + exit code) and, later, per rank.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace m4 {

// What went wrong, coarse enough to choose an exit code from.
enum class ErrorCode {
  kInvalidArgument = 2,  // bad CLI usage or option value
  kBadInput = 3,         // a file exists but its content is malformed
  kMismatch = 4,         // well-formed but does not fit (shapes, ids, configs)
  kIo = 5,               // cannot open / read / write
  kInternal = 70,        // a bug in m4forge
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string message)
      : std::runtime_error(std::move(message)), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// `s` with line breaks turned into spaces: every error is one line.
inline std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return one_line(os.str());  // embedded newlines would break the "one-line error" rule
}
}  // namespace detail

}  // namespace m4

// M4_CHECK(cond, code, parts...): throw m4::Error(code, concat(parts...)) unless cond.
#define M4_CHECK(cond, code, ...)                                             \
  do {                                                                        \
    if (!(cond)) [[unlikely]] {                                               \
      throw ::m4::Error((code), ::m4::detail::concat(__VA_ARGS__));           \
    }                                                                         \
  } while (0)

// M4_FAIL(code, parts...): throw unconditionally.
#define M4_FAIL(code, ...) \
  throw ::m4::Error((code), ::m4::detail::concat(__VA_ARGS__))
