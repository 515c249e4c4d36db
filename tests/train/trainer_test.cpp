// The trainer in one process: AdamW equals torch's, the schedule's shape,
// exact resume after a stop (bit-identical adapter), checkpoint selection when
// a write was cut short, and frozen firmware bytes unchanged.
#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include "cluster/communicator.h"
#include "core/atomic_file.h"
#include "core/safetensors.h"
#include "core/sha256.h"
#include "tests/train/train_test_util.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/schedule.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;

TEST(AdamW, MatchesTorchOptimAdamW) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  at::Tensor a = at::randn({5, 7}, gen).requires_grad_(true), b = a.detach().clone().requires_grad_(true);
  AdamW mine({a}, {1e-2, 0.9, 0.999, 1e-8, 0.05});
  torch::optim::AdamW theirs(std::vector<at::Tensor>{b}, torch::optim::AdamWOptions(1e-2).weight_decay(0.05));
  for (int i = 0; i < 10; ++i) {
    at::Tensor g = at::randn({5, 7}, gen);
    a.mutable_grad() = g.clone();
    b.mutable_grad() = g.clone();
    mine.step(1e-2);
    theirs.step();
  }
  EXPECT_LT(test::max_abs_diff(a, b), 1e-6);
  EXPECT_GT(test::max_abs_diff(a, at::zeros_like(a)), 0.1);  // it moved
}

TEST(Schedule, WarmupThenCosineLinearConstant) {
  EXPECT_DOUBLE_EQ(scheduled_lr("cosine", 1.0, 0, 4, 20), 0.0);
  EXPECT_DOUBLE_EQ(scheduled_lr("cosine", 1.0, 2, 4, 20), 0.5);
  EXPECT_DOUBLE_EQ(scheduled_lr("cosine", 1.0, 4, 4, 20), 1.0);
  EXPECT_NEAR(scheduled_lr("cosine", 1.0, 12, 4, 20), 0.5, 1e-12);
  EXPECT_NEAR(scheduled_lr("cosine", 1.0, 20, 4, 20), 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(scheduled_lr("linear", 1.0, 12, 4, 20), 0.5);
  EXPECT_DOUBLE_EQ(scheduled_lr("constant", 2.0, 19, 0, 20), 2.0);
  test::expect_error([] { scheduled_lr("step", 1.0, 5, 0, 10); }, {"unknown schedule 'step'"});
}

class Trainer : public ::testing::Test {
 protected:
  void SetUp() override { task_ = test::make_tiny_task(tmp_.path()); }
  TrainSummary run(const fs::path& run_dir, bool resume, int64_t stop_after = 0) {
    return test::train_tiny(task_, run_dir, {}, resume, stop_after);
  }
  std::map<std::string, std::string> firmware_hashes() {
    std::map<std::string, std::string> h;
    for (const auto& e : fs::recursive_directory_iterator(task_.firmware)) {
      if (e.is_regular_file()) h[e.path().string()] = to_hex(sha256_file(e.path()));
    }
    return h;
  }
  test::TempDir tmp_;
  test::TinyTask task_;
};

TEST_F(Trainer, StopThenResumeGivesTheBitIdenticalAdapter) {
  const auto before = firmware_hashes();
  TrainSummary full = run(tmp_ / "full", false);
  EXPECT_EQ(full.steps, 6);
  EXPECT_FALSE(full.preempted);
  ASSERT_TRUE(full.metrics.count("accuracy"));
  TrainSummary part = run(tmp_ / "split", false, /*stop_after=*/3);
  EXPECT_TRUE(part.preempted);
  EXPECT_EQ(part.steps, 3);
  EXPECT_FALSE(fs::exists(tmp_ / "split" / "adapter.safetensors"));
  TrainSummary rest = run(tmp_ / "split", true);
  EXPECT_EQ(rest.steps, 6);
  SafetensorsFile a = SafetensorsFile::open(tmp_ / "full" / "adapter.safetensors");
  SafetensorsFile b = SafetensorsFile::open(tmp_ / "split" / "adapter.safetensors");
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  ASSERT_GT(a.tensors().size(), 0u);
  for (const auto& info : a.tensors()) {
    EXPECT_EQ(a.bytes(info), b.bytes(*b.find(info.name))) << info.name;  // bit-identical
  }
  EXPECT_EQ(firmware_hashes(), before);
  // The run recorded what bundles need.
  const auto run_json = nlohmann::json::parse(read_text_file(tmp_ / "full" / "run.json"));
  EXPECT_EQ(run_json["firmware"]["id"], Firmware::open(task_.firmware).id());
  EXPECT_EQ(run_json["datasets"]["train"]["sha256"].get<std::string>().rfind("sha256:", 0), 0u);
  EXPECT_EQ(run_json["status"], "finished");
  EXPECT_EQ(run_json["prompt"]["id"], "fashion_mnist");
  EXPECT_EQ(run_json["task_config"], load_task_config(task_.config, {}, task_.root).resolved);
  EXPECT_GT(run_json["training"]["frozen_parameters"].get<int64_t>(), run_json["training"]["trainable_parameters"].get<int64_t>());
  // The run's report, with a loss point per step (tests/report/ checks it in a browser).
  EXPECT_NE(read_text_file(tmp_ / "full" / "report.html").find("Run report: full"), std::string::npos);
  EXPECT_NE(read_text_file(tmp_ / "full" / "loss.svg")
                .find("data-series=\"loss (raw)\" data-points=\"" + std::to_string(run_json["training"]["steps"].get<int64_t>()) + "\""),
            std::string::npos);
}

TEST_F(Trainer, AnInterruptedCheckpointWriteLeavesThePreviousSelected) {
  run(tmp_ / "r", false, /*stop_after=*/4);  // checkpoints at steps 2 and 4
  const fs::path root = tmp_ / "r" / "checkpoints";
  ASSERT_EQ(latest_checkpoint(tmp_ / "r"), root / "step-00000004");
  // A write killed before the rename: a .tmp directory, ignored.
  fs::create_directories(root / "step-00000006.tmp");
  write_file_atomic(root / "step-00000006.tmp" / "state.json", "{");
  EXPECT_EQ(latest_checkpoint(tmp_ / "r"), root / "step-00000004");
  // A directory missing a file and a pointer to it (written out of order): skipped.
  fs::create_directories(root / "step-00000008");
  fs::copy_file(root / "step-00000004" / "state.json", root / "step-00000008" / "state.json");
  write_file_atomic(root / "latest", "step-00000008\n");
  EXPECT_EQ(latest_checkpoint(tmp_ / "r"), root / "step-00000004");
  TrainSummary rest = run(tmp_ / "r", true);
  EXPECT_EQ(rest.steps, 6);
}

TEST_F(Trainer, MissingDataNamesTheFileAndTheCommandThatBuildsIt) {
  auto comm = make_communicator();
  TaskConfig cfg = load_task_config(task_.config, {"data.train=" + (tmp_ / "nope.h5").string()}, task_.root);
  TrainOptions o;
  o.run_dir = tmp_ / "x";
  o.repo_root = task_.root;
  Firmware fw = Firmware::open(task_.firmware);
  test::expect_error([&] { train_task(fw, cfg, o, *comm); }, {"nope.h5", "no such dataset"});
  TaskConfig odd = load_task_config(task_.config, {"train.batch_size=6", "train.grad_accum=4"}, task_.root);
  test::expect_error([&] { train_task(fw, odd, o, *comm); }, {"train.batch_size 6 must be a multiple of world (1) x grad_accum (4)"});
}

// configs/tasks/har.yaml as shipped (Path-2: imu_enc LoRA + a projector into
// txt_enc's embedding space) on IMU windows shorter than the encoder's.
TEST_F(Trainer, PathTwoProjectorTrainsOnImuWindowsOfAnotherLength) {
  for (const char* split : {"train", "test"}) {
    data::DatasetContents c;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(split[1]);
    c.tensors["imu"] = at::randn({12, 100, 6}, gen);  // the demo's IMU encoder takes 128 steps
    c.tensors["label"] = at::arange(12, at::kLong).remainder(6);
    c.attrs.label_names = {"walking", "running", "sitting", "standing", "climbing_stairs", "cycling"};
    c.attrs.source = "m4forge test: random IMU";
    c.attrs.license = "CC0";
    data::write_dataset(tmp_ / (std::string(split) + "_imu.h5"), c);
  }
  TaskConfig cfg = load_task_config(test::repo_dir() / "configs" / "tasks" / "har.yaml",
                                    {"data.train=" + (tmp_ / "train_imu.h5").string(), "data.test=" + (tmp_ / "test_imu.h5").string(),
                                     "train.steps=2", "train.batch_size=4", "train.eval_every=0", "optim.warmup_steps=0"},
                                    test::repo_dir());
  TrainOptions o;
  o.run_dir = tmp_ / "har";
  o.repo_root = test::repo_dir();
  Firmware fw = Firmware::open(task_.firmware);
  auto comm = make_communicator();
  const TrainSummary s = train_task(fw, cfg, o, *comm);
  EXPECT_EQ(s.steps, 2);
  EXPECT_TRUE(std::isfinite(s.last_loss));
  SafetensorsFile a = SafetensorsFile::open(o.run_dir / "adapter.safetensors");
  const TensorInfo* w = nullptr;
  for (const auto& t : a.tensors()) {
    if (t.name.rfind("projector.", 0) == 0 && t.shape.size() == 2) w = &t;
  }
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape[0], 64);  // the demo txt_enc's text_projection width
}

// configs/tasks/text_to_image_retrieval.yaml as shipped (Path-2, no labels):
// the contrastive loss learns 8 image/title pairs, and recall@1 over them
// rises from chance to most of them.
TEST_F(Trainer, RetrievalLearnsPairsAndReportsRecallAtK) {
  data::DatasetContents c;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  c.tensors["image"] = at::randint(0, 256, {8, 3, 32, 32}, gen, at::kLong).to(at::kByte);
  c.texts["text"] = {"a red car", "a green tree", "a blue house", "a yellow sun", "a black cat", "a white boat",
                     "an orange fish", "a grey road"};
  c.attrs.source = "m4forge test: random images with titles";
  c.attrs.license = "CC0";
  data::write_dataset(tmp_ / "pairs.h5", c);
  const std::string pairs = (tmp_ / "pairs.h5").string();
  auto eval_at = [&](int64_t steps) {
    TaskConfig cfg = load_task_config(test::repo_dir() / "configs" / "tasks" / "text_to_image_retrieval.yaml",
                                      {"data.train=" + pairs, "data.test=" + pairs, "train.steps=" + std::to_string(steps),
                                       "train.batch_size=8", "train.eval_every=0", "optim.warmup_steps=0", "optim.lr=2.0e-2",
                                       "metric=recall@1"},
                                      test::repo_dir());
    TrainOptions o;
    o.run_dir = tmp_ / ("ret" + std::to_string(steps));
    o.repo_root = test::repo_dir();
    Firmware fw = Firmware::open(task_.firmware);
    auto comm = make_communicator();
    return train_task(fw, cfg, o, *comm).metrics.at("recall@1");
  };
  const double before = eval_at(1), after = eval_at(40);
  std::cout << "[check] retrieval recall@1 over 8 pairs: 1 step " << before << ", 40 steps " << after << "\n";
  EXPECT_LE(before, 0.5);
  EXPECT_GE(after, 0.75);
}

// train.precision bf16 runs the training steps under autocast: the loss is the
// f32 loss to bfloat16 precision, yet not bit-equal (autocast is really on).
TEST_F(Trainer, Bf16AutocastTrainsCloseToF32) {
  auto loss_of = [&](const std::string& precision) {
    TaskConfig cfg = load_task_config(task_.config, {"train.precision=" + precision, "train.steps=2", "peft.lora.dropout=0.0"},
                                      task_.root);
    TrainOptions o;
    o.run_dir = tmp_ / precision;
    o.repo_root = task_.root;
    Firmware fw = Firmware::open(task_.firmware);
    auto comm = make_communicator();
    return train_task(fw, cfg, o, *comm).last_loss;
  };
  const double f32 = loss_of("f32"), bf16 = loss_of("bf16");
  std::cout << "[check] step-2 loss f32 " << f32 << ", bf16 autocast " << bf16 << "\n";
  EXPECT_NE(f32, bf16);
  EXPECT_NEAR(bf16, f32, 0.03 * std::abs(f32));
}

// A causal-LM batch without a single target token (here: pre-tokenized rows
// of one token, nothing to predict) would train on a NaN loss: it is one error
// naming the task instead.
TEST_F(Trainer, CausalLmBatchWithoutTargetsIsAnError) {
  data::DatasetContents c;
  c.tensors["input_ids"] = at::full({4, 1}, 5, at::kLong);
  c.tensors["attention_mask"] = at::ones({4, 1}, at::kLong);
  c.attrs.source = "m4forge test: one-token rows";
  c.attrs.license = "CC0";
  data::write_dataset(tmp_ / "empty_targets.h5", c);
  const std::string f = (tmp_ / "empty_targets.h5").string();
  TaskConfig cfg = load_task_config(test::repo_dir() / "configs" / "tasks" / "translation_de_en.yaml",
                                    {"data.train=" + f, "data.test=" + (tmp_ / "no_test_split.h5").string(), "train.steps=2", "train.batch_size=4",
                                     "optim.warmup_steps=0"},
                                    test::repo_dir());
  TrainOptions o;
  o.run_dir = tmp_ / "empty";
  o.repo_root = test::repo_dir();
  Firmware fw = Firmware::open(task_.firmware);
  auto comm = make_communicator();
  test::expect_error([&] { train_task(fw, cfg, o, *comm); }, {"translation_de_en", "no target tokens"});
}

}  // namespace
}  // namespace m4
