// The all-reduce backend chosen at start (`--backend`, cluster/communicator.h)
// and the run-time NCCL loader (cluster/nccl_library.h): what each choice
// resolves to under each launch, and the one-line error for each that cannot
// run here (a CPU build: nccl; no launch: mpi; a multi-rank launch: single).
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <string>

#include "cluster/communicator.h"
#include "cluster/nccl_library.h"
#include "tests/support/cli_test.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

// Sets (or, with nullopt, unsets) environment variables for one test and puts them back.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::map<std::string, std::optional<std::string>>& vars) {
    for (const auto& [k, v] : vars) {
      const char* old = std::getenv(k.c_str());
      saved_[k] = old ? std::optional<std::string>(old) : std::nullopt;
      if (v) ::setenv(k.c_str(), v->c_str(), 1);
      else ::unsetenv(k.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    for (const auto& [k, v] : saved_) {
      if (v) ::setenv(k.c_str(), v->c_str(), 1);
      else ::unsetenv(k.c_str());
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

// No launcher in the environment, or mpirun's for `world` ranks.
ScopedEnv launch(std::optional<int> world) {
  std::map<std::string, std::optional<std::string>> v = {{"OMPI_COMM_WORLD_SIZE", std::nullopt}, {"PMI_SIZE", std::nullopt},
                                                         {"PMIX_RANK", std::nullopt}, {"SLURM_NTASKS", std::nullopt}};
  if (world) v["OMPI_COMM_WORLD_SIZE"] = std::to_string(*world);
  return ScopedEnv(v);
}

std::string resolve(const std::string& backend) {
  CommunicatorOptions o;
  o.backend = backend;
  return resolve_backend(o);
}

TEST(Backend, AutoIsOneProcessAloneAndMpiUnderALaunch) {
  {
    auto env = launch(std::nullopt);
    EXPECT_EQ(resolve("auto"), "single");
    EXPECT_EQ(resolve("single"), "single");
    EXPECT_EQ(make_communicator({})->backend(), "single");
  }
  if (mpi_available()) {
    auto env = launch(2);
    EXPECT_EQ(resolve("auto"), "mpi");
    EXPECT_EQ(resolve("mpi"), "mpi");
  }
  auto one = launch(1);  // `mpirun -np 1`: training alone is what it asked for
  EXPECT_EQ(resolve("single"), "single");
}

TEST(Backend, AChoiceThatCannotRunHereIsAOneLineError) {
  {
    auto env = launch(std::nullopt);
    test::expect_error([] { resolve("gloo"); }, {"--backend: unknown 'gloo' (known: auto, single, mpi, nccl)"});
    if (mpi_available()) test::expect_error([] { resolve("mpi"); }, {"--backend mpi: not started by mpirun/srun"});
  }
  {
    auto env = launch(4);
    test::expect_error([] { resolve("single"); }, {"--backend single: this process is one of 4 ranks"});
  }
  if (!at::hasCUDA()) {
    auto env = launch(std::nullopt);
    test::expect_error([] { resolve("nccl"); }, {"--backend nccl: this m4forge's LibTorch has no CUDA", "use --backend single"});
    auto two = launch(2);
    test::expect_error([] { resolve("nccl"); }, {"use --backend mpi"});
  }
}

TEST(NcclLibrary, AMissingOrForeignLibraryNamesTheFileAndWhatToInstall) {
  SCOPED_TRACE("missing file");
  test::expect_error([] { NcclLibrary::open("/nonexistent/libnccl.so.2"); },
                     {"/nonexistent/libnccl.so.2: cannot load NCCL", "pip: nvidia-nccl-cu12", "M4FORGE_NCCL_LIBRARY"});
  // A real shared library that is not NCCL.
  SCOPED_TRACE("libm");
  test::expect_error([] { NcclLibrary::open("libm.so.6"); }, {"libm.so.6: is not NCCL (no function ncclGetVersion"});
  {
    ScopedEnv env(std::map<std::string, std::optional<std::string>>{
        {std::string("M4FORGE_NCCL_LIBRARY"), std::string("/nonexistent/from-env.so")}});
    SCOPED_TRACE("from the environment");
    test::expect_error([] { NcclLibrary::open(); }, {"/nonexistent/from-env.so: cannot load NCCL"});
  }
}

// A real NCCL where the machine has one (CUDA images ship it; Debian does not):
// the eight functions bind and it answers without a GPU.
TEST(NcclLibrary, ARealNcclBindsAndSaysItsVersion) {
  std::shared_ptr<NcclLibrary> nccl;
  try {
    nccl = NcclLibrary::open("libnccl.so.2");
  } catch (const Error& e) {
    GTEST_SKIP() << "no NCCL on this machine: " << e.what();
  }
  std::cout << "[nccl] " << nccl->path() << " version " << nccl->version() << "\n";
  EXPECT_EQ(nccl->version().rfind("2.", 0), 0u) << nccl->version();
  EXPECT_EQ(nccl->error_string(0), "no error");
  static_assert(sizeof(nccl::UniqueId) == 128, "NCCL_UNIQUE_ID_BYTES");  // ncclGetUniqueId needs a GPU: not called here
}

class BackendCli : public test::CliTest {};

TEST_F(BackendCli, TrainRefusesNcclOnACpuBuildBeforeReadingAnything) {
  if (at::hasCUDA()) GTEST_SKIP() << "a CUDA build: --backend nccl is not refused for want of CUDA";
  test::CliRun r = m4({"train", (tmp_ / "absent.yaml").string(), "--backend", "nccl"});
  expect_one_line_error(r, {"--backend nccl: this m4forge's LibTorch has no CUDA"});
  EXPECT_EQ(r.code, 2);
  test::CliRun u = m4({"train", (tmp_ / "absent.yaml").string(), "--backend", "smoke-signals"});
  expect_one_line_error(u, {"--backend: unknown 'smoke-signals'"});
}

}  // namespace
}  // namespace m4
