// `m4forge train` as real processes: under `mpirun -np 2` it gives the adapter
// of one process with the same global batch; a rank killed with SIGKILL fails
// the job (no hang) and --resume then reaches the bit-identical adapter of an
// uninterrupted run; a hung rank makes the job fail within the timeout.
#include <gtest/gtest.h>

#include <cstdlib>

#include "firmware/safetensors.h"
#include "tests/support/cli_test.h"
#include "tests/train/train_test_util.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;
using test::CliRun;

class TrainCli : public test::CliTest {
 protected:
  void SetUp() override {
    task_ = test::make_tiny_task(tmp_ / "repo");
    // Open MPI refuses root without these; CI runs as root in a container.
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
  }
  std::vector<std::string> train_args(const std::string& run) {
    return {"train", task_.config.string(), "peft.lora.dropout=0.0", "--firmware", task_.firmware.string(), "--run-dir",
            (tmp_ / run).string(), "--checkpoint-every", "2", "--log-level", "warn"};
  }
  CliRun mpi(const std::vector<std::string>& args, const std::string& env = "") {
    std::string cmd = env + " mpirun -np 2 " + test::quote(test::cli_path());
    for (const auto& a : args) cmd += " " + test::quote(a);
    const fs::path o = tmp_ / "mpi.out", e = tmp_ / "mpi.err";
    cmd += " >" + test::quote(o.string()) + " 2>" + test::quote(e.string());
    const int status = std::system(cmd.c_str());
    CliRun r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = test::slurp(o);
    r.err = test::slurp(e);
    return r;
  }
  static double max_diff(const fs::path& a, const fs::path& b, bool* identical) {
    SafetensorsFile fa = SafetensorsFile::open(a), fb = SafetensorsFile::open(b);
    double d = 0;
    *identical = fa.tensors().size() == fb.tensors().size();
    for (const auto& info : fa.tensors()) {
      const TensorInfo* other = fb.find(info.name);
      if (!other) return INFINITY;
      *identical = *identical && fa.bytes(info) == fb.bytes(*other);
      d = std::max(d, test::max_abs_diff(fa.tensor(info), fb.tensor(*other)));
    }
    return d;
  }
  test::TinyTask task_;
};

TEST_F(TrainCli, TwoRanksGiveTheAdapterOfOneProcessWithTheSameGlobalBatch) {
  CliRun one = m4(train_args("one"));
  ASSERT_EQ(one.code, 0) << one.err;
  CliRun two = mpi(train_args("two"));
  ASSERT_EQ(two.code, 0) << two.err;
  bool identical = false;
  const double d = max_diff(tmp_ / "one" / "adapter.safetensors", tmp_ / "two" / "adapter.safetensors", &identical);
  std::cout << "[check] 2 MPI ranks vs 1 process adapter max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-5);
}

TEST_F(TrainCli, KilledRankFailsTheJobAndResumeIsBitIdentical) {
  CliRun whole = mpi(train_args("whole"));
  ASSERT_EQ(whole.code, 0) << whole.err;
  // Rank 1 is SIGKILLed at step 5 (checkpoints at 2 and 4): the job must end, non-zero.
  CliRun killed = mpi(train_args("cut"), "M4FORGE_FAULT=kill:1:5");
  EXPECT_NE(killed.code, 0);
  EXPECT_FALSE(fs::exists(tmp_ / "cut" / "adapter.safetensors"));
  auto args = train_args("cut");
  args.push_back("--resume");
  CliRun resumed = mpi(args);
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  bool identical = false;
  max_diff(tmp_ / "whole" / "adapter.safetensors", tmp_ / "cut" / "adapter.safetensors", &identical);
  EXPECT_TRUE(identical);
}

TEST_F(TrainCli, HungRankFailsTheJobWithinTheTimeout) {
  auto args = train_args("hung");
  args.insert(args.end(), {"--collective-timeout", "5"});
  CliRun r = mpi(args, "M4FORGE_FAULT=hang:1:2");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("did not finish within 5 s"), std::string::npos) << r.err;
}

TEST_F(TrainCli, SigtermCheckpointsAndExitsZero) {
  // --stop-after takes the same path as SIGTERM (the flag is all-reduced with the gradients).
  auto args = train_args("stop");
  args.insert(args.end(), {"--stop-after", "3"});
  CliRun r = m4(args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("stopped tiny_images: 3 steps"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(tmp_ / "stop" / "checkpoints" / "step-00000003" / "state.json"));
}

}  // namespace
}  // namespace m4
