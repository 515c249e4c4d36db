// A run directory from `m4forge train` to the bundle, as real processes: the
// bundle carries the run's own template after the repository's changed (and
// needs no config or dataset), --resume refuses another firmware, config,
// dataset or world size, two trains into one directory give one refusal every
// time, and kill -9 + --resume leaves each step once in metrics.jsonl and no
// temporary behind.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/train/train_cli_fixture.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using test::CliRun;
using test::TrainCli;

// The steps of metrics.jsonl's training rows (not eval rows), in file order.
std::vector<int64_t> logged_steps(const fs::path& file) {
  std::ifstream in(file);
  std::vector<int64_t> steps;
  std::string line;
  while (std::getline(in, line)) {
    const json row = json::parse(line);
    if (row.contains("loss")) steps.push_back(row["step"].get<int64_t>());
  }
  return steps;
}

std::vector<std::string> temporaries(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp") != std::string::npos) found.push_back(e.path().string());
  }
  return found;
}

class RunDirCli : public TrainCli {
 protected:
  // The tiny task's templates as a copy of the repository's, to edit freely.
  void own_templates() {
    const fs::path t = task_.root / "prompts" / "templates";
    fs::remove(t);
    fs::copy(test::repo_dir() / "prompts" / "templates", t, fs::copy_options::recursive);
  }
  std::string keygen() {
    const std::string key = (tmp_ / "key").string();
    CliRun k = m4({"keygen", "--out", key, "--log-level", "warn"});
    EXPECT_EQ(k.code, 0) << k.err;
    return key;
  }
  static json manifest_of(const fs::path& bundle) {
    // The first tar entry is manifest.json: a 512-byte header, then its bytes (size in octal at 124).
    const std::string b = test::slurp(bundle);
    const size_t size = std::stoul(b.substr(124, 11), nullptr, 8);
    return json::parse(b.substr(512, size));
  }
};

TEST_F(RunDirCli, BundleCarriesTheTrainedTemplateAfterTheRepositoryChanged) {
  own_templates();
  const fs::path tmpl = task_.root / "prompts" / "templates" / "fashion_mnist.yaml";
  const std::string trained = test::slurp(tmpl);
  ASSERT_NE(trained.find("There is a photo of a {label}."), std::string::npos) << trained;
  ASSERT_EQ(m4(train_args("run")).code, 0);
  const json record = json::parse(test::slurp(tmp_ / "run" / "run.json"));
  EXPECT_EQ(record["status"], "finished");
  EXPECT_EQ(record["prompt"]["labels"].size(), 10u);
  EXPECT_EQ(record["training"]["world"], 1);
  EXPECT_TRUE(fs::exists(tmp_ / "run" / "report.html"));
  for (const auto& e : fs::directory_iterator(tmp_ / "run")) EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();

  // Between training and export: the template is edited, the config and the datasets are gone.
  std::string edited = trained;
  edited.replace(edited.find("There is a photo of a {label}."), 30, "An edited prompt about a {label}.");
  std::ofstream(tmpl, std::ios::trunc) << edited;
  fs::remove(task_.config);
  fs::remove(task_.root / "train.h5");
  fs::rename(task_.root / "test.h5", tmp_ / "test.h5");

  const std::string key = keygen();
  const fs::path bundle = tmp_ / "run.m4adapter";
  CliRun e = m4({"export", "--run", (tmp_ / "run").string(), "--firmware", task_.firmware.string(), "--key", key + ".key",
                 "--out", bundle.string(), "--log-level", "warn"});
  ASSERT_EQ(e.code, 0) << e.err;
  const json m = manifest_of(bundle);
  const std::string carried = m["prompt"]["template"].dump();
  EXPECT_NE(carried.find("There is a photo of a {label}."), std::string::npos) << carried;
  EXPECT_EQ(carried.find("edited"), std::string::npos) << carried;
  EXPECT_EQ(m["prompt"]["template"], record["prompt"]["template"]);
  EXPECT_EQ(m["prompt"]["labels"], record["prompt"]["labels"]);
  EXPECT_EQ(m["task"]["config"], record["task_config"]);
  EXPECT_EQ(m["provenance"]["dataset_digests"]["train"], record["datasets"]["train"]["sha256"]);
  EXPECT_EQ(m["provenance"]["training"]["steps"], 6);

  // Overrides do not apply to a run; a firmware other than the run's is refused before writing.
  expect_one_line_error(m4({"export", "--run", (tmp_ / "run").string(), "--firmware", task_.firmware.string(), "--key",
                            key + ".key", "--out", (tmp_ / "x.m4adapter").string(), "optim.lr=1"}),
                        {"overrides do not apply to --run"});
  const std::string other = demo("fw-other", "5");
  expect_one_line_error(m4({"export", "--run", (tmp_ / "run").string(), "--firmware", other, "--key", key + ".key",
                            "--out", (tmp_ / "y.m4adapter").string()}),
                        {"trained on firmware_id", record["firmware"]["id"].get<std::string>()});
  EXPECT_FALSE(fs::exists(tmp_ / "y.m4adapter"));

  // eval --run reads the same record: the trained template and labels, the adapter, the recorded test split.
  fs::rename(tmp_ / "test.h5", task_.root / "test.h5");
  CliRun ev = m4({"eval", "--run", (tmp_ / "run").string(), "--firmware", task_.firmware.string(), "--json",
                  "--no-baseline", "--log-level", "warn"});
  ASSERT_EQ(ev.code, 0) << ev.err;
  EXPECT_DOUBLE_EQ(json::parse(ev.out)["adapter"]["value"].get<double>(), record["metrics"]["accuracy"].get<double>());

  // eval --bundle runs the bundle as a device would (its template, labels and
  // adapter bytes; verified, bound, canary re-run): the same figures as the run's,
  // next to zero-shot.
  CliRun run_eval = m4({"eval", "--run", (tmp_ / "run").string(), "--firmware", task_.firmware.string(), "--json",
                        "--log-level", "warn"});
  ASSERT_EQ(run_eval.code, 0) << run_eval.err;
  CliRun bundle_eval = m4({"eval", "--bundle", bundle.string(), "--pubkey", key + ".pub", "--firmware", task_.firmware.string(),
                           "--data", (task_.root / "test.h5").string(), "--json", "--log-level", "warn"});
  ASSERT_EQ(bundle_eval.code, 0) << bundle_eval.err;
  const json a = json::parse(run_eval.out), b = json::parse(bundle_eval.out);
  EXPECT_EQ(b["adapter"], a["adapter"]) << bundle_eval.out;
  EXPECT_EQ(b["zero_shot"], a["zero_shot"]) << bundle_eval.out;
  expect_one_line_error(m4({"eval", "--bundle", bundle.string(), "--firmware", task_.firmware.string()}), {"--bundle needs --pubkey"});
  expect_one_line_error(m4({"eval", "--bundle", bundle.string(), "--pubkey", key + ".pub", "--firmware", other}),
                        {"run.m4adapter", "firmware binding: bundle is bound to"});
  expect_one_line_error(m4({"eval", "--run", (tmp_ / "run").string(), "--firmware", task_.firmware.string(), "--data", "x.h5"}),
                        {"--data goes with --bundle"});
}

TEST_F(RunDirCli, UnfinishedRunsAreNotExported) {
  auto args = train_args("half");
  args.insert(args.end(), {"--stop-after", "3"});
  ASSERT_EQ(m4(args).code, 0);
  EXPECT_EQ(json::parse(test::slurp(tmp_ / "half" / "run.json"))["status"], "running");
  const std::string key = keygen();
  expect_one_line_error(m4({"export", "--run", (tmp_ / "half").string(), "--firmware", task_.firmware.string(), "--key",
                            key + ".key", "--out", (tmp_ / "h.m4adapter").string()}),
                        {"run.json", "has not finished", "3 of 6"});
}

TEST_F(RunDirCli, ResumeRefusesAnotherFirmwareConfigDatasetOrWorld) {
  auto args = train_args("r");
  args.insert(args.end(), {"--stop-after", "3"});
  ASSERT_EQ(m4(args).code, 0);
  const std::string before = test::slurp(tmp_ / "r" / "run.json");
  auto resume = [&](std::vector<std::string> extra, const std::string& firmware = "") {
    auto a = train_args("r");
    if (!firmware.empty()) a[4] = firmware;  // --firmware's value
    a.push_back("--resume");
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  ASSERT_EQ(train_args("r")[3], "--firmware");
  expect_one_line_error(m4(resume({}, demo("fw-b", "9"))), {"r: --resume would not continue the same run", "the firmware"});
  expect_one_line_error(m4(resume({"optim.lr=0.5"})), {"the config at optim.lr: 0.01 -> 0.5"});
  expect_one_line_error(m4(resume({"peft.lora.r=4"})), {"the config at peft.lora.r"});
  expect_one_line_error(mpi(resume({})), {"the world size: 1 -> 2"});
  // The same bytes elsewhere are the same data; other bytes are not.
  const fs::path moved = tmp_ / "moved-train.h5";
  fs::copy_file(task_.root / "train.h5", moved);
  test::write_tiny_images(task_.root / "train.h5", 16, /*seed=*/99);
  expect_one_line_error(m4(resume({})), {"the train dataset"});
  EXPECT_EQ(test::slurp(tmp_ / "r" / "run.json"), before) << "a refused resume writes nothing";
  // Continuing with more steps is the same run, extended.
  CliRun ok = m4(resume({"data.train=" + moved.string(), "train.steps=8"}));
  ASSERT_EQ(ok.code, 0) << ok.err;
  const json record = json::parse(test::slurp(tmp_ / "r" / "run.json"));
  EXPECT_EQ(record["status"], "finished");
  EXPECT_EQ(record["training"]["steps"], 8);
  EXPECT_EQ(logged_steps(tmp_ / "r" / "metrics.jsonl"), (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST_F(RunDirCli, TwoTrainsIntoOneRunDirectoryGiveOneRefusalEveryTime) {
  for (int round = 0; round < 3; ++round) {
    const std::string dir = "both" + std::to_string(round);
    // Two processes started together on one run directory.
    std::string cmd;
    for (int i = 0; i < 2; ++i) {
      std::string one = test::quote(test::cli_path());
      for (const auto& a : train_args(dir)) one += " " + test::quote(a);
      const std::string o = (tmp_ / ("p" + std::to_string(i))).string();
      cmd += one + " >" + test::quote(o + ".out") + " 2>" + test::quote(o + ".err") + " & p" + std::to_string(i) + "=$!; ";
    }
    cmd += "wait $p0; c0=$?; wait $p1; c1=$?; echo $c0 $c1 >" + test::quote((tmp_ / "codes").string());
    ASSERT_EQ(std::system(("bash -c " + test::quote(cmd)).c_str()), 0);
    std::ifstream codes(tmp_ / "codes");
    int c[2] = {-1, -1};
    codes >> c[0] >> c[1];
    ASSERT_TRUE((c[0] == 0) != (c[1] == 0)) << "round " << round << ": exit codes " << c[0] << " " << c[1];
    const int loser = c[0] == 0 ? 1 : 0;
    CliRun refused;
    refused.code = c[loser];
    refused.err = test::slurp(tmp_ / ("p" + std::to_string(loser) + ".err"));
    expect_one_line_error(refused, {dir});
    const bool in_use = refused.err.find("is in use by another m4forge process") != std::string::npos;
    const bool finished_first = refused.err.find("already holds a run") != std::string::npos;
    EXPECT_TRUE(in_use || finished_first) << refused.err;
    std::cout << "[check] round " << round << ": refusal: " << (in_use ? "in use (lock)" : "already holds a run") << "\n";
    // The winner's run is whole: each step once, finished.
    EXPECT_EQ(logged_steps(tmp_ / dir / "metrics.jsonl"), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(json::parse(test::slurp(tmp_ / dir / "run.json"))["status"], "finished");
  }
}

TEST_F(RunDirCli, KillNineThenResumeLogsEachStepOnceAndLeavesNoTemporary) {
  CliRun whole = m4(train_args("whole"));
  ASSERT_EQ(whole.code, 0) << whole.err;
  // SIGKILL at the start of step 6 (checkpoints at 2 and 4): steps 5 and 6 are logged again on resume.
  {
    std::string cmd = "M4FORGE_FAULT=kill:0:5 " + test::quote(test::cli_path());
    for (const auto& a : train_args("cut")) cmd += " " + test::quote(a);
    cmd += " >/dev/null 2>" + test::quote((tmp_ / "killed.err").string());
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 128 + 9)) << status;
  }
  EXPECT_EQ(logged_steps(tmp_ / "cut" / "metrics.jsonl"), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_TRUE(fs::exists(tmp_ / "cut" / ".lock")) << "the lock file of the killed process stays";
  // What a writer killed mid-write would leave.
  std::ofstream(tmp_ / "cut" / ".run.json.tmp.Ab12Cd") << "{";
  fs::create_directories(tmp_ / "cut" / "checkpoints" / "step-00000006.tmp");
  std::ofstream(tmp_ / "cut" / "checkpoints" / ".latest.tmp.Zz99Yy") << "step-0000";
  auto args = train_args("cut");
  args.push_back("--resume");
  CliRun resumed = m4(args);
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_EQ(logged_steps(tmp_ / "cut" / "metrics.jsonl"), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(temporaries(tmp_ / "cut"), std::vector<std::string>{});
  bool identical = false;
  max_diff(tmp_ / "whole" / "adapter.safetensors", tmp_ / "cut" / "adapter.safetensors", &identical);
  EXPECT_TRUE(identical);
}

}  // namespace
}  // namespace m4
