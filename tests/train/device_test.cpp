// train.device on a CPU build: the choice (auto, cpu, cuda by local rank),
// its one-line errors, the record of where a run trained, and a resume that
// names another device continuing the same run.
#include <gtest/gtest.h>

#include <cstdlib>

#include "cluster/communicator.h"
#include "core/atomic_file.h"
#include "core/device.h"
#include "core/safetensors.h"
#include "task/task_config.h"
#include "tests/support/test_util.h"
#include "tests/train/train_test_util.h"
#include "train/trainer.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;

TEST(DeviceChoice, AutoCpuAndCudaByLocalRank) {
  EXPECT_EQ(pick_device("cpu", 8, 3, "cfg", true), c10::Device(c10::kCPU));
  EXPECT_EQ(pick_device("auto", 0, 3, "cfg", false), c10::Device(c10::kCPU));
  EXPECT_EQ(pick_device("auto", 4, 1, "cfg", true), c10::Device(c10::kCUDA, 1));
  // Eight ranks on a node of four GPUs: rank 5 shares GPU 1 with rank 1.
  EXPECT_EQ(pick_device("cuda", 4, 5, "cfg", true), c10::Device(c10::kCUDA, 1));
  EXPECT_EQ(pick_device("cuda", 1, 0, "cfg", true), c10::Device(c10::kCUDA, 0));
  test::expect_error([] { pick_device("cuda", 0, 0, "x.yaml: train.device", false); },
                     {"x.yaml: train.device is cuda", "LibTorch has no CUDA", "cluster/build-cuda.sh"});
  test::expect_error([] { pick_device("cuda", 0, 0, "x.yaml: train.device", true); },
                     {"x.yaml: train.device is cuda", "no CUDA GPU", "nvidia-smi"});
  test::expect_error([] { pick_device("gpu", 2, 0, "--device", true); }, {"--device", "unknown device 'gpu'", "auto, cpu, cuda"});
}

struct EnvVar {
  EnvVar(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    ::setenv(name, value, 1);
  }
  ~EnvVar() { had_ ? (void)::setenv(name_, old_.c_str(), 1) : (void)::unsetenv(name_); }
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(DeviceChoice, LocalRankFromTheLauncher) {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "LOCAL_RANK"}) {
    if (std::getenv(v)) GTEST_SKIP() << "run under a launcher that sets " << v;
  }
  EXPECT_EQ(local_rank(), 0);
  {
    EnvVar slurm("SLURM_LOCALID", "3");
    EXPECT_EQ(local_rank(), 3);
    EnvVar ompi("OMPI_COMM_WORLD_LOCAL_RANK", "2");  // Open MPI's own wins under srun --mpi=pmix too
    EXPECT_EQ(local_rank(), 2);
  }
  EnvVar junk("LOCAL_RANK", "two");
  EXPECT_EQ(local_rank(), 0);  // not a number: ignored
}

// This build is Debian's CPU LibTorch (CI's): auto is the CPU, cuda an error.
TEST(DeviceChoice, ThisCpuBuild) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "this build sees a GPU";
  EXPECT_EQ(choose_device("auto", "cfg"), c10::Device(c10::kCPU));
  EXPECT_EQ(describe_device(c10::Device(c10::kCPU)), "cpu");
  EXPECT_EQ(peak_device_memory(c10::Device(c10::kCPU)), -1);
  test::expect_error([] { choose_device("cuda", "cfg: train.device"); }, {"cfg: train.device is cuda, but"});
}

class DeviceTrainer : public ::testing::Test {
 protected:
  void SetUp() override { task_ = test::make_tiny_task(tmp_.path()); }
  TrainSummary run(const fs::path& run_dir, const std::string& device, bool resume, int64_t stop_after = 0) {
    return test::train_tiny(task_, run_dir, {"train.device=" + device}, resume, stop_after);
  }
  test::TempDir tmp_;
  test::TinyTask task_;
};

// A preempted run resumes wherever the scheduler puts it: train.device is not
// part of the run's identity, the record says where each start trained, and
// the result is the uninterrupted run's, bit for bit (the same CPU here).
TEST_F(DeviceTrainer, ResumeNamingAnotherDeviceContinuesTheSameRun) {
  run(tmp_ / "full", "cpu", false);
  EXPECT_TRUE(run(tmp_ / "split", "cpu", false, /*stop_after=*/3).preempted);
  EXPECT_EQ(nlohmann::json::parse(read_text_file(tmp_ / "split" / "run.json"))["training"]["device"], "cpu");
  EXPECT_EQ(run(tmp_ / "split", "auto", true).steps, 6);
  SafetensorsFile a = SafetensorsFile::open(tmp_ / "full" / "adapter.safetensors");
  SafetensorsFile b = SafetensorsFile::open(tmp_ / "split" / "adapter.safetensors");
  ASSERT_GT(a.tensors().size(), 0u);
  for (const auto& info : a.tensors()) EXPECT_EQ(a.bytes(info), b.bytes(*b.find(info.name))) << info.name;
  // Another setting that does shape the trajectory is still refused.
  auto comm = make_communicator();
  TaskConfig other = load_task_config(task_.config, {"train.device=cpu", "train.seed=1"}, task_.root);
  TrainOptions o;
  o.run_dir = tmp_ / "split";
  o.repo_root = task_.root;
  o.resume = true;
  Firmware fw = Firmware::open(task_.firmware);
  test::expect_error([&] { train_task(fw, other, o, *comm); }, {"train.seed"});
}

TEST_F(DeviceTrainer, CudaOnThisBuildIsOneLineBeforeAnythingIsWritten) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "this build sees a GPU";
  test::expect_error([&] { run(tmp_ / "r", "cuda", false); }, {task_.config.string(), "train.device is cuda"});
  EXPECT_FALSE(fs::exists(tmp_ / "r" / "run.json"));
  EXPECT_FALSE(fs::exists(tmp_ / "r" / "checkpoints"));
}

TEST_F(DeviceTrainer, AnUnknownDeviceIsAConfigError) {
  test::expect_error([&] { load_task_config(task_.config, {"train.device=gpu0"}, task_.root); },
                     {task_.config.string(), "train.device: unknown 'gpu0'", "auto, cpu, cuda"});
}

}  // namespace
}  // namespace m4
