// Helpers shared by the test suites: fixture paths, temp dirs, comparisons.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/error.h"

namespace m4::test {

// tests/fixtures/hf-reference (vendored: a clone needs nothing beside it), and
// the m4forge binary under test.
std::filesystem::path fixtures();
// tests/fixtures/hf-frontends: HF's front-ends (AST fbank, CLIP tokenizer and
// image processor) on real recordings, strings and photos (its make_fixtures.py).
std::filesystem::path frontend_fixtures();
// ../shared/fixtures/real (or $M4FORGE_REAL_FIXTURES): real pretrained models
// that may not be committed here; tests of them skip where it is absent
// (tests/cli/real_model_test.cpp).
std::filesystem::path real_fixtures();
std::string cli_path();
// The source tree (configs/, prompts/, scripts/).
std::filesystem::path repo_dir();

// A fresh directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& s) const { return path_ / s; }

 private:
  std::filesystem::path path_;
};

// Max |a - b| over all elements (as double), after broadcasting-free checks.
double max_abs_diff(const at::Tensor& a, const at::Tensor& b);

// Runs fn, expects an m4::Error whose message contains every needle; returns it.
template <typename Fn>
std::string expect_error(Fn&& fn, std::initializer_list<std::string> needles) {
  try {
    fn();
  } catch (const m4::Error& e) {
    std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "message: " << msg << "\nmissing: " << n;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message must be one line: " << msg;
    return msg;
  }
  ADD_FAILURE() << "expected an m4::Error";
  return {};
}

}  // namespace m4::test
