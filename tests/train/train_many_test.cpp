// `m4forge train-many`: a job file is validated whole before any training;
// tasks share one resident copy of the firmware modules and still train the
// adapter each would train alone; a failing task does not stop the others;
// a stopped job resumes to the same adapters; under mpirun the tasks are
// spread over the ranks. Also: an adapter refuses modules another adapter
// still hooks.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "firmware/module_loader.h"
#include "peft/adapter.h"
#include "tests/train/train_cli_fixture.h"
#include "train/job.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;
using test::CliRun;

class TrainMany : public test::TrainCli {
 protected:
  // A job in the tiny repo: entries are YAML flow items.
  fs::path job(const std::string& name, const std::string& body) {
    const fs::path dir = task_.root / "configs" / "jobs";
    fs::create_directories(dir);
    std::ofstream(dir / (name + ".yaml")) << body;
    return dir / (name + ".yaml");
  }
  std::vector<std::string> many_args(const fs::path& job_file, const std::string& run_root) {
    return {"train-many", job_file.string(), "--firmware", task_.firmware.string(), "--run-root", (tmp_ / run_root).string(),
            "--log-level", "warn"};
  }
  bool same_adapter(const fs::path& a, const fs::path& b) {
    bool identical = false;
    max_diff(a, b, &identical);
    return identical;
  }
  // Two different tasks, then the tiny task as `m4forge train` would train it.
  const std::string two_tasks_ =
      "run_root: ignored\n"
      "overrides: [peft.lora.dropout=0.0]\n"
      "tasks:\n"
      "  - {config: tiny_images, name: first, overrides: [train.seed=7, optim.lr=0.05, peft.lora.r=4]}\n"
      "  - tiny_images\n";
};

TEST_F(TrainMany, JobFileProblemsAreReportedTogetherBeforeAnyTraining) {
  const fs::path bad = job("bad",
                           "tasks:\n"
                           "  - tiny_imagez\n"
                           "  - {config: tiny_images, overrides: [optim.lrr=1]}\n"
                           "  - {config: tiny_images, name: x}\n"
                           "  - {config: tiny_images, name: x, epochs: 3}\n"
                           "colour: blue\n");
  try {
    load_job(bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    for (const char* needle : {"bad.yaml", "unknown key 'colour'", "tasks[0]: unknown task 'tiny_imagez' (nearest: tiny_images)",
                               "tasks[1]:", "lrr", "tasks[3]: unknown key 'epochs'"}) {
      EXPECT_NE(m.find(needle), std::string::npos) << m << "\nmissing: " << needle;
    }
  }
  const fs::path dup = job("dup", "tasks: [tiny_images, {config: configs/tasks/tiny_images.yaml}]\n");
  CliRun r = m4(many_args(dup, "dup"));
  expect_one_line_error(r, {"dup.yaml", "tasks[1]: name 'tiny_images' is already used by tasks[0]"});
  EXPECT_FALSE(fs::exists(tmp_ / "dup"));
}

TEST_F(TrainMany, SharedModulesTrainTheAdapterEachTaskTrainsAlone) {
  CliRun alone = m4(train_args("alone"));
  ASSERT_EQ(alone.code, 0) << alone.err;
  CliRun r = m4(many_args(job("two", two_tasks_), "many"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("done first (rank 0): 6 steps"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("done tiny_images (rank 0): 6 steps"), std::string::npos) << r.out;
  // The second task ran on the modules the first one had hooked and trained through.
  EXPECT_TRUE(same_adapter(tmp_ / "alone" / "adapter.safetensors", tmp_ / "many" / "tiny_images" / "adapter.safetensors"));
  EXPECT_NE(test::slurp(tmp_ / "many" / "first" / "adapter.safetensors"),
            test::slurp(tmp_ / "many" / "tiny_images" / "adapter.safetensors"));  // r 4 vs r 2
  // One load per module for both tasks.
  const std::string log = test::slurp(tmp_ / "many" / "job-rank0.jsonl");
  EXPECT_NE(log.find("\"modules_loaded\":2"), std::string::npos) << log;
  EXPECT_EQ(log.find("\"modules_loaded\":4"), std::string::npos) << log;
}

TEST_F(TrainMany, AFailingTaskIsReportedAndTheOthersStillTrain) {
  const fs::path j = job("failing",
                         "tasks:\n"
                         "  - {config: tiny_images, name: broken, overrides: [data.train=/nonexistent/train.h5]}\n"
                         "  - {config: tiny_images, name: fine}\n");
  CliRun r = m4(many_args(j, "failing"));
  expect_one_line_error(r, {"failing.yaml", "1 of 2 tasks", "broken", "/nonexistent/train.h5"});
  EXPECT_TRUE(fs::exists(tmp_ / "failing" / "fine" / "adapter.safetensors"));
  EXPECT_NE(r.out.find("failed broken"), std::string::npos) << r.out;
  // The job's report: both tasks, the failure with its reason, a link to the one that trained.
  const std::string report = test::slurp(tmp_ / "failing" / "report.html");
  EXPECT_NE(r.out.find("report: " + (tmp_ / "failing" / "report.html").string()), std::string::npos) << r.out;
  EXPECT_NE(report.find("<td>broken</td><td class=\"failed\">failed</td>"), std::string::npos) << report;
  EXPECT_NE(report.find("/nonexistent/train.h5"), std::string::npos);
  EXPECT_NE(report.find("<a href=\"fine/report.html\">fine</a></td><td class=\"done\">done</td>"), std::string::npos) << report;
  EXPECT_TRUE(fs::exists(tmp_ / "failing" / "fine" / "report.html"));
}

TEST_F(TrainMany, StoppedJobResumesToTheSameAdaptersAndNeverOverwritesARun) {
  const fs::path j = job("two", two_tasks_);
  CliRun whole = m4(many_args(j, "whole"));
  ASSERT_EQ(whole.code, 0) << whole.err;
  auto args = many_args(j, "cut");
  args.insert(args.end(), {"--stop-after", "3", "--checkpoint-every", "2"});
  CliRun cut = m4(args);
  ASSERT_EQ(cut.code, 0) << cut.err;  // preemption is not a failure
  EXPECT_NE(cut.out.find("preempted first"), std::string::npos) << cut.out;
  EXPECT_NE(cut.out.find("not_started tiny_images"), std::string::npos) << cut.out;
  EXPECT_FALSE(fs::exists(tmp_ / "cut" / "tiny_images"));
  // The preempted run's report says so; the job's lists the task that never started.
  EXPECT_NE(test::slurp(tmp_ / "cut" / "first" / "report.html").find("running or interrupted (3 steps recorded)"), std::string::npos);
  EXPECT_NE(test::slurp(tmp_ / "cut" / "report.html").find("<td>tiny_images</td><td class=\"not_started\">not_started</td>"),
            std::string::npos);

  auto again = many_args(j, "cut");
  CliRun refused = m4(again);  // without --resume a started run is never overwritten
  expect_one_line_error(refused, {"already holds a run", "--resume"});

  again.push_back("--resume");
  CliRun resumed = m4(again);
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  for (const char* t : {"first", "tiny_images"}) {
    EXPECT_TRUE(same_adapter(tmp_ / "whole" / t / "adapter.safetensors", tmp_ / "cut" / t / "adapter.safetensors")) << t;
  }
  CliRun done = m4(again);
  ASSERT_EQ(done.code, 0) << done.err;
  EXPECT_NE(done.out.find("already_done first"), std::string::npos) << done.out;
  EXPECT_NE(done.out.find("already_done tiny_images"), std::string::npos) << done.out;
}

TEST_F(TrainMany, MpiRanksSplitTheTasks) {
  const fs::path j = job("three", two_tasks_ + "  - {config: tiny_images, name: third, overrides: [train.seed=3]}\n");
  CliRun one = m4(many_args(j, "one"));
  ASSERT_EQ(one.code, 0) << one.err;
  CliRun two = mpi(many_args(j, "two"));
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_NE(two.out.find("done first (rank 0)"), std::string::npos) << two.out;
  EXPECT_NE(two.out.find("done tiny_images (rank 1)"), std::string::npos) << two.out;
  EXPECT_NE(two.out.find("done third (rank 0)"), std::string::npos) << two.out;
  EXPECT_NE(test::slurp(tmp_ / "two" / "job-rank1.jsonl").find("\"task\":\"tiny_images\""), std::string::npos);
  // Both ranks wrote the job's report; the last one left it complete.
  EXPECT_NE(test::slurp(tmp_ / "two" / "report.html").find("3 tasks: 3 done"), std::string::npos);
  for (const char* t : {"first", "tiny_images", "third"}) {
    EXPECT_TRUE(same_adapter(tmp_ / "one" / t / "adapter.safetensors", tmp_ / "two" / t / "adapter.safetensors")) << t;
  }
}

TEST_F(TrainMany, AnAdapterRefusesModulesAnotherAdapterStillHooks) {
  const Firmware fw = Firmware::open(task_.firmware);
  ModuleCache cache(fw);
  Adapter::Modules mods = {{"img_enc", cache.get("img_enc")}};
  EXPECT_EQ(cache.get("img_enc"), mods.at("img_enc"));  // loaded once
  EXPECT_EQ(cache.loads(), 1u);
  const PeftConfig cfg = PeftConfig::from_json({{"trainable", {{"img_enc", "lora"}}}, {"peft", {{"lora", {{"r", 2}}}}}}, "test");
  {
    Adapter first(mods, cfg, "test firmware");
    try {
      Adapter second(mods, cfg, "test firmware");
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("already carries another adapter"), std::string::npos) << e.what();
    }
  }
  Adapter after(mods, cfg, "test firmware");  // the first one detached when it went away
  EXPECT_GT(after.trainable_count(), 0);
}

}  // namespace
}  // namespace m4
