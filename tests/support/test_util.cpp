#include "tests/support/test_util.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

namespace m4::test {

std::filesystem::path fixtures() { return M4_FIXTURES_DIR; }
std::filesystem::path frontend_fixtures() { return repo_dir() / "tests" / "fixtures" / "hf-frontends"; }
std::filesystem::path real_fixtures() {
  if (const char* dir = std::getenv("M4FORGE_REAL_FIXTURES")) return dir;  // CI: a clone tested apart from ../shared
  return M4_REAL_FIXTURES_DIR;
}
std::string cli_path() { return M4_CLI_PATH; }
std::filesystem::path repo_dir() { return M4_REPO_DIR; }

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          ("m4test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return INFINITY;
  if (a.numel() == 0) return 0;
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace m4::test
