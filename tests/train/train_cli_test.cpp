// `m4forge train` as real processes: under `mpirun -np 2` it gives the adapter
// of one process with the same global batch; a rank killed with SIGKILL fails
// the job (no hang) and --resume then reaches the bit-identical adapter of an
// uninterrupted run; a hung rank makes the job fail within the timeout; `m4forge
// eval --from-scratch` reports the from-scratch baseline.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/train/train_cli_fixture.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;
using test::CliRun;
using test::TrainCli;

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

TEST_F(TrainCli, EvalReportsTheFromScratchBaselineBesideZeroShot) {
  CliRun r = m4({"eval", task_.config.string(), "--firmware", task_.firmware.string(), "--from-scratch",
                 "--scratch-steps", "4", "--json", "--log-level", "warn"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.contains("zero_shot")) << r.out;
  ASSERT_TRUE(j.contains("from_scratch")) << r.out;
  const auto& s = j["from_scratch"];
  EXPECT_EQ(s["metric"], "accuracy");
  EXPECT_EQ(s["steps"], 4);
  EXPECT_EQ(s["samples"], 10);
  EXPECT_GT(s["parameters"].get<int64_t>(), 0);
  EXPECT_NE(s["model"].get<std::string>().find("cnn"), std::string::npos) << s;
  // Text, without the firmware (only the from-scratch model runs).
  r = m4({"eval", task_.config.string(), "--from-scratch", "--no-baseline", "--scratch-steps", "4", "--log-level",
          "warn"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("tiny_images from_scratch: accuracy "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" on 10 samples (4 steps)"), std::string::npos) << r.out;
  expect_one_line_error(m4({"eval", task_.config.string(), "--no-baseline"}), {"nothing to evaluate"});
}

// A split without a field the task reads is refused before training, naming the file.
TEST_F(TrainCli, RefusesADatasetWithoutTheFieldsTheTaskReads) {
  data::DatasetContents c;
  c.tensors["image"] = at::zeros({8, 1, 28, 28}, at::kByte);
  c.attrs.label_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  const fs::path nolabel = tmp_ / "nolabel.h5";
  data::write_dataset(nolabel, c);
  auto args = train_args("nolabel");
  args.push_back("data.train=" + nolabel.string());
  CliRun r = m4(args);
  expect_one_line_error(r, {nolabel.string(), "reads 'label'", "it has: image"});
  EXPECT_EQ(r.code, 4);
  expect_one_line_error(m4({"eval", task_.config.string(), "data.test=" + nolabel.string(), "--firmware",
                            task_.firmware.string()}),
                        {nolabel.string(), "reads 'label'"});
}

TEST_F(TrainCli, NeverStartsAfreshOverAnEarlierRun) {
  CliRun first = m4(train_args("kept"));
  ASSERT_EQ(first.code, 0) << first.err;
  const std::string adapter = test::slurp(tmp_ / "kept" / "adapter.safetensors");
  auto args = train_args("kept");
  args.push_back("optim.lr=0.5");  // a different run that would overwrite it
  expect_one_line_error(m4(args), {"kept", "already holds a run", "--resume"});
  EXPECT_EQ(test::slurp(tmp_ / "kept" / "adapter.safetensors"), adapter);
}

}  // namespace
}  // namespace m4
