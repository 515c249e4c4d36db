// End-to-end CLI test support: runs the real m4forge binary with arguments,
// captures exit code, stdout and stderr, and checks the one-line error rule.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/test_util.h"

namespace m4::test {

struct CliRun {
  int code = -1;
  std::string out, err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Flips one bit of the byte `from_end` bytes before the end of `file` (its
// size unchanged): tensor data, for the tamper tests.
inline void flip_byte_near_end(const std::filesystem::path& file, int64_t from_end = 100) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(-from_end, std::ios::end);
  char c;
  f.get(c);
  f.seekp(-from_end, std::ios::end);
  f.put(static_cast<char>(c ^ 0x01));
}

class CliTest : public ::testing::Test {
 protected:
  CliRun m4(const std::vector<std::string>& args) {
    std::string cmd = quote(cli_path());
    for (const auto& a : args) {
      cmd += ' ';
      cmd += quote(a);
    }
    const std::filesystem::path o = tmp_ / "stdout", e = tmp_ / "stderr";
    cmd += " >" + quote(o.string()) + " 2>" + quote(e.string());
    int status = std::system(cmd.c_str());
    CliRun r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(o);
    r.err = slurp(e);
    return r;
  }
  // A failed run: non-zero exit, exactly one "m4forge: error:" line holding every needle.
  void expect_one_line_error(const CliRun& r, std::initializer_list<std::string> needles) {
    EXPECT_NE(r.code, 0);
    EXPECT_LT(r.code, 128) << "crashed: " << r.err;
    std::istringstream lines(r.err);
    std::string line, error_line;
    int errors = 0;
    while (std::getline(lines, line)) {
      if (line.rfind("m4forge: error: ", 0) == 0) {
        ++errors;
        error_line = line;
      }
    }
    EXPECT_EQ(errors, 1) << r.err;
    for (const auto& n : needles) EXPECT_NE(error_line.find(n), std::string::npos) << error_line << "\nmissing: " << n;
  }
  std::string demo(const std::string& name, const std::string& seed = "0") {
    const std::filesystem::path fw = tmp_ / name;
    CliRun r = m4({"firmware", "init-demo", "--out", fw.string(), "--seed", seed, "--log-level", "warn"});
    EXPECT_EQ(r.code, 0) << r.err;
    return fw.string();
  }
  TempDir tmp_;
};

}  // namespace m4::test
