// The run record: json round trip, validation of hostile or stale files, and
// the same-run check --resume makes (what may change, what may not).
#include "task/run_record.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/atomic_file.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

RunRecord sample() {
  RunRecord r;
  r.finished = true;
  r.task = "fashion_mnist";
  r.path = 2;
  r.config = {{"task", "fashion_mnist"},
              {"description", "x"},
              {"optim", {{"lr", 1e-3}, {"weight_decay", 0.01}}},
              {"train", {{"steps", 100}, {"eval_every", 50}, {"seed", 0}, {"batch_size", 16}}},
              {"data", {{"train", "a/train.h5"}, {"test", "a/test.h5"}}}};
  r.config_path = "/repo/configs/tasks/fashion_mnist.yaml";
  r.prompt_id = "fashion_mnist";
  r.prompt_template = {{"segments", json::array({{{"module", "E"}, {"text", "A photo of a {label}."}}})}};
  r.labels = {"shirt", "shoe"};
  r.label_names = {"Shirt", "Shoe"};
  r.firmware_id = "sha256:aa";
  r.firmware_name = "m4-demo";
  r.firmware_version = "1.0.0";
  r.datasets["train"] = {"a/train.h5", "sha256:11"};
  r.datasets["test"] = {"a/test.h5", "sha256:22"};
  r.world = 1;
  r.backend = "single";
  r.seed = 0;
  r.precision = "f32";
  r.m4forge_version = "0.1.0";
  r.m4forge_revision = "abc";
  r.started = 1700000000;
  r.finished_at = 1700000100;
  r.steps = 100;
  r.last_loss = 0.25;
  r.trainable_parameters = 2048;
  r.frozen_parameters = 1000000;
  r.metrics["accuracy"] = 0.5;
  return r;
}

TEST(RunRecord, RoundTripsThroughJson) {
  const RunRecord r = sample();
  const json j = r.to_json();
  EXPECT_EQ(j["format"], runkeys::kFormatTag);
  EXPECT_EQ(j["status"], "finished");
  const RunRecord back = RunRecord::from_json(json::parse(j.dump()), "run.json");
  EXPECT_EQ(back.to_json(), j);
  EXPECT_EQ(back.labels, r.labels);
  EXPECT_EQ(back.datasets.at("test").sha256, "sha256:22");
  EXPECT_DOUBLE_EQ(back.metrics.at("accuracy"), 0.5);
  EXPECT_EQ(back.frozen_parameters, 1000000);
}

TEST(RunRecord, ARecordWithoutTheFrozenCountStillReads) {
  // Records written before training.frozen_parameters existed.
  json j = sample().to_json();
  j["training"].erase("frozen_parameters");
  EXPECT_EQ(RunRecord::from_json(j, "run.json").frozen_parameters, -1);
  j["training"]["frozen_parameters"] = "lots";
  test::expect_error([&] { RunRecord::from_json(j, "x/run.json"); }, {"x/run.json", "training.frozen_parameters has the wrong type"});
}

TEST(RunRecord, RefusesMalformedRecordsNamingEveryProblem) {
  json j = sample().to_json();
  j["format"] = "m4forge-run/0";
  test::expect_error([&] { RunRecord::from_json(j, "x/run.json"); }, {"x/run.json", "m4forge-run/0", "retrain"});
  j = sample().to_json();
  j.erase("firmware");
  j["training"]["steps"] = "many";
  j["status"] = "halfway";
  j["prompt"]["labels"] = json::array({"a", 3});
  test::expect_error([&] { RunRecord::from_json(j, "x/run.json"); },
                     {"x/run.json", "firmware is missing", "training.steps has the wrong type", "'halfway'",
                      "prompt.labels must hold strings"});
  j = sample().to_json();
  j["prompt"]["template"] = nullptr;
  test::expect_error([&] { RunRecord::from_json(j, "r"); }, {"prompt.template must be the template of 'fashion_mnist'"});
  test::expect_error([&] { RunRecord::from_json(json::array(), "r"); }, {"r: a run record is a JSON object"});
}

TEST(RunRecord, FilesAreBoundedAndReportedByName) {
  test::TempDir dir;
  test::expect_error([&] { read_run_record(dir.path()); }, {"run.json", "no run record"});
  write_file_atomic(dir / "run.json", "{\"format\": ");
  test::expect_error([&] { read_run_record(dir.path()); }, {"run.json", "not valid JSON"});
  {
    std::ofstream big(dir / "run.json", std::ios::trunc);
    big << std::string(runkeys::kMaxBytes + 10, ' ');
  }
  test::expect_error([&] { read_run_record(dir.path()); }, {"run.json"});
  RunRecord running = sample();
  running.finished = false;
  running.steps = 40;
  write_run_record(dir.path(), running);
  EXPECT_FALSE(read_run_record(dir.path()).finished);
  test::expect_error([&] { read_finished_run(dir.path()); }, {"has not finished", "40 of 100", "--resume"});
  write_run_record(dir.path(), sample());
  EXPECT_EQ(read_finished_run(dir.path()).steps, 100);
}

TEST(RunRecord, ResumeAcceptsOnlyTheSameRun) {
  const RunRecord before = sample();
  RunRecord now = sample();
  now.finished = false;
  now.metrics.clear();
  EXPECT_EQ(resume_difference(before, now), "");
  // May change: steps (to extend), when to evaluate, the description, where the data lie.
  now.config["train"]["steps"] = 300;
  now.config["train"]["eval_every"] = 10;
  now.config["description"] = "y";
  now.config["data"]["train"] = "moved/train.h5";
  now.datasets["train"].file = "moved/train.h5";
  EXPECT_EQ(resume_difference(before, now), "");

  RunRecord fw = now;
  fw.firmware_id = "sha256:bb";
  fw.firmware_version = "2.0.0";
  EXPECT_NE(resume_difference(before, fw).find("the firmware"), std::string::npos);
  EXPECT_NE(resume_difference(before, fw).find("sha256:bb"), std::string::npos);

  RunRecord lr = now;
  lr.config["optim"]["lr"] = 0.5;
  EXPECT_EQ(resume_difference(before, lr), "the config at optim.lr: 0.001 -> 0.5");
  RunRecord added = now;
  added.config["train"]["grad_accum"] = 2;
  EXPECT_EQ(resume_difference(before, added), "the config at train.grad_accum: (absent) -> 2");

  RunRecord tmpl = now;
  tmpl.prompt_template["segments"][0]["text"] = "A picture of a {label}.";
  EXPECT_NE(resume_difference(before, tmpl).find("prompt template 'fashion_mnist'"), std::string::npos);
  RunRecord labels = now;
  labels.labels = {"shirt", "boot"};
  EXPECT_NE(resume_difference(before, labels).find("labels"), std::string::npos);

  RunRecord data = now;
  data.datasets["train"].sha256 = "sha256:99";
  EXPECT_NE(resume_difference(before, data).find("the train dataset"), std::string::npos);
  RunRecord gone = now;
  gone.datasets.erase("test");
  EXPECT_NE(resume_difference(before, gone).find("the test dataset"), std::string::npos);

  RunRecord world = now;
  world.world = 2;
  EXPECT_NE(resume_difference(before, world).find("world size: 1 -> 2"), std::string::npos);
}

TEST(RunRecord, RebuildsTheTaskConfigFromItselfAlone) {
  // A real config and template, then no repository at all: the record suffices.
  test::TempDir dir;
  const fs::path root = test::repo_dir();
  const TaskConfig task = load_task_config(root / "configs" / "tasks" / "fashion_mnist.yaml", {"train.steps=70"}, root);
  RunRecord r = sample();
  r.config = task.resolved;
  const PromptTemplate t = load_prompt_template(root, task.prompt);
  r.prompt_id = t.id;
  r.prompt_template = t.to_json();
  const TaskConfig back = RunRecord::from_json(r.to_json(), "run.json").task_config("run.json");
  EXPECT_EQ(back.resolved, task.resolved);
  EXPECT_EQ(back.train.steps, 70);
  EXPECT_EQ(RunRecord::from_json(r.to_json(), "run.json").prompt()->to_json(), t.to_json());
  // A record whose template no longer parses is refused, naming it.
  r.prompt_template = {{"segments", 5}};
  test::expect_error([&] { RunRecord::from_json(r.to_json(), "run.json").task_config("run.json"); }, {"fashion_mnist"});
}

}  // namespace
}  // namespace m4
