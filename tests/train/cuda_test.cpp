// The device check's tests (bench/gpu_check.sh runs `ctest -R '^Cuda\.'`):
// CUDA against the CPU and against HF PEFT. On a machine or build without a
// GPU each skips with one line; M4FORGE_REQUIRE_CUDA=1 makes that a failure.
#include <gtest/gtest.h>

#include <cstdlib>

#include "cluster/communicator.h"
#include "core/atomic_file.h"
#include "core/autocast.h"
#include "core/device.h"
#include "core/safetensors.h"
#include "firmware/llama.h"
#include "firmware/weight_set.h"
#include "task/task_config.h"
#include "tests/support/test_util.h"
#include "tests/train/train_test_util.h"
#include "train/trainer.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;

#define M4_NEED_CUDA()                                                                                       \
  do {                                                                                                     \
    if (cuda_device_count() == 0) {                                                                        \
      const char* req = std::getenv("M4FORGE_REQUIRE_CUDA");                                               \
      if (req && std::string(req) == "1") FAIL() << "M4FORGE_REQUIRE_CUDA=1, but this build sees no GPU"; \
      GTEST_SKIP() << "no CUDA GPU in this build or machine (bench/gpu_check.sh runs these on one)";       \
    }                                                                                                      \
  } while (0)

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.cpu().to(at::kDouble) - b.cpu().to(at::kDouble)).abs().max().item<double>();
}

// The fixture LLaMA's logits on CUDA against the CPU's (and HF's): f32 within
// 1e-4; bf16 autocast within 3% of the logits' range (bf16 keeps 8 bits of
// mantissa, and the fixture's two layers round each matmul once).
TEST(Cuda, LlamaLogitsMatchTheCpu) {
  M4_NEED_CUDA();
  at::NoGradGuard ng;
  const fs::path dir = test::fixtures() / "llama";
  const LlamaConfig config = LlamaConfig::from_file(dir / "config.json");
  SafetensorsFile ref = SafetensorsFile::open(dir / "reference.safetensors");
  Llama model(config, WeightSet::open_hf_dir(dir), "fixture");
  const at::Tensor ids = ref.tensor("input_ids");
  const at::Tensor cpu = model->forward(ids, {}, {}, nullptr, {}).logits;
  const c10::Device gpu = choose_device("cuda", "test");
  model->to(gpu);
  const at::Tensor f32 = model->forward(ids.to(gpu), {}, {}, nullptr, {}).logits;
  EXPECT_TRUE(f32.is_cuda());
  at::Tensor bf16;
  {
    Bf16Autocast on;
    bf16 = model->forward(ids.to(gpu), {}, {}, nullptr, {}).logits;
  }
  const double range = cpu.abs().max().item<double>();
  const double d32 = max_diff(f32, cpu), d16 = max_diff(bf16, cpu), dhf = max_diff(f32, ref.tensor("logits"));
  std::cout << "[parity] cuda f32 vs cpu logits max |diff| = " << d32 << ", vs HF " << dhf << "; cuda bf16 vs cpu f32 "
            << d16 << " (logits up to " << range << ")\n";
  EXPECT_LT(d32, 1e-4);
  EXPECT_LT(dhf, 1e-4);
  EXPECT_LT(d16, 0.03 * range);
}

// HF PEFT's 20 LoRA steps through the trainer on the GPU, f32.
TEST(Cuda, PeftTrajectoryThroughTheTrainer) {
  M4_NEED_CUDA();
  const TrajectoryDiff d = peft_trajectory_diff("cuda");
  EXPECT_EQ(d.device.rfind("cuda:", 0), 0u) << d.device;
  std::cout << "[parity] cuda m4forge train vs peft 20-step losses max |diff| = " << d.losses << ", lora_final " << d.adapter
            << "\n";
  EXPECT_LT(d.losses, 1e-5);
  EXPECT_LT(d.adapter, 1e-4);
}

// NCCL's all-reduce of a device buffer through the communicator (one rank:
// the sum is the buffer itself, but it runs NCCL's kernel and the watchdog).
TEST(Cuda, NcclAllReduceOnTheDevice) {
  M4_NEED_CUDA();
  CommunicatorOptions o;
  o.backend = "nccl";
  auto comm = make_communicator(o);
  EXPECT_EQ(comm->backend(), "nccl");
  const c10::Device gpu = choose_device("cuda", "test");
  at::Tensor x = at::arange(1 << 20, at::TensorOptions(at::kFloat).device(gpu));
  const at::Tensor want = x.clone() * comm->world();
  comm->allreduce_sum(x);
  EXPECT_EQ(max_diff(x, want), 0.0);
  test::expect_error([&] { at::Tensor c = at::ones({4}); comm->allreduce_sum(c); }, {"nccl allreduce_sum", "cpu"});
}

// A run trained on the GPU, preempted, and resumed on the CPU: the adapter and
// checkpoint files are CPU tensors either way, and the result is the
// uninterrupted GPU run's within float tolerance.
TEST(Cuda, PreemptedOnTheGpuResumedOnTheCpu) {
  M4_NEED_CUDA();
  test::TempDir tmp;
  test::TinyTask task = test::make_tiny_task(tmp.path());
  auto run = [&](const fs::path& dir, const std::string& device, bool resume, int64_t stop_after) {
    return test::train_tiny(task, dir, {"train.device=" + device, "peft.lora.dropout=0.0"}, resume, stop_after);
  };
  run(tmp / "gpu", "cuda", false, 0);
  EXPECT_TRUE(run(tmp / "split", "cuda", false, 3).preempted);
  EXPECT_EQ(run(tmp / "split", "cpu", true, 0).steps, 6);
  EXPECT_EQ(nlohmann::json::parse(read_text_file(tmp / "split" / "run.json"))["training"]["device"], "cpu");
  SafetensorsFile a = SafetensorsFile::open(tmp / "gpu" / "adapter.safetensors");
  SafetensorsFile b = SafetensorsFile::open(tmp / "split" / "adapter.safetensors");
  ASSERT_GT(a.tensors().size(), 0u);
  double worst = 0;
  for (const auto& info : a.tensors()) worst = std::max(worst, max_diff(a.tensor(info), b.tensor(*b.find(info.name))));
  std::cout << "[parity] adapter trained on cuda vs preempted on cuda + resumed on cpu: max |diff| = " << worst << "\n";
  EXPECT_LT(worst, 1e-4);
}

}  // namespace
}  // namespace m4
