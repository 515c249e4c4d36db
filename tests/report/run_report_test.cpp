// report.html of a run and of a job, from hand-written run directories: what
// the page says, what it skips and says so, and the errors that name the file.
#include "report/run_report.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/atomic_file.h"
#include "report/job_report.h"
#include "task/run_record.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

RunRecord record() {
  RunRecord r;
  r.finished = true;
  r.task = "fashion_mnist";
  r.path = 2;
  r.config = {{"task", "fashion_mnist"},
              {"description", "Fashion <MNIST> & co"},
              {"modules", {"img_enc", "txt_enc"}},
              {"trainable", {{"img_enc", "lora"}, {"txt_enc", "frozen"}}},
              {"peft", {{"init_from", ""}, {"lora", {{"r", 4}, {"alpha", 8}, {"targets", {"img_enc.layers.*.self_attn.{q,v}_proj"}}}}}},
              {"optim", {{"lr", 1e-3}, {"schedule", "cosine"}}},
              {"metric", "accuracy"}};
  r.prompt_id = "fashion_mnist";
  r.prompt_template = {{"segments", json::array({{{"module", "E"}, {"text", "A photo of a {label}."}}})}};
  r.labels = {"shirt", "shoe"};
  r.firmware_id = "sha256:f51b0e0d";
  r.firmware_name = "m4-demo";
  r.firmware_version = "1.0.0";
  r.datasets["train"] = {"datasets/fashion_mnist/train.h5", "sha256:4e634d51"};
  r.datasets["test"] = {"datasets/fashion_mnist/test.h5", "sha256:92572ee6"};
  r.backend = "gloo";
  r.world = 2;
  r.seed = 7;
  r.precision = "bf16";
  r.m4forge_version = "0.1.0";
  r.m4forge_revision = "abc123";
  r.started = 1796174270;
  r.finished_at = 1796174270 + 3725;
  r.steps = 150;
  r.last_loss = 2.283;
  r.trainable_parameters = 2048;
  r.frozen_parameters = 998000;
  r.metrics["accuracy"] = 0.1588;
  return r;
}

void write_metrics(const fs::path& dir, int steps) {
  std::ofstream m(dir / runkeys::kMetricsFile);
  for (int s = 1; s <= steps; ++s) {
    m << json({{"step", s}, {"loss", 3.0 - 0.005 * s}, {"lr", 1e-3 * s / steps}, {"samples_per_s", 140.0 + s % 7}, {"step_time_s", 0.1}}).dump()
      << "\n";
    if (s % 50 == 0) m << json({{"step", s}, {"eval_accuracy", s == steps ? 0.1588 : 0.0977}, {"eval_samples", s == steps ? 10000 : 256}}).dump() << "\n";
  }
}

int count(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

TEST(RunReport, SaysWhatWasTrainedHowItDidAndDrawsTheCurves) {
  test::TempDir dir;
  write_run_record(dir.path(), record());
  write_metrics(dir.path(), 150);
  {
    std::ofstream a(dir / runkeys::kAdapterFile);
    a << std::string(9584, 'x');
  }
  append_evaluation(dir.path(), {{"adapter", {{"metric", "accuracy"}, {"value", 0.152}, {"samples", 2000}}},
                                 {"zero_shot", {{"metric", "accuracy"}, {"value", 0.1}, {"samples", 2000}}},
                                 {"from_scratch", {{"metric", "accuracy"}, {"value", 0.755}, {"samples", 2000}, {"steps", 150},
                                                   {"model", "cnn"}, {"parameters", 30000}}}});
  const RunReport rep = write_run_report(dir.path());
  EXPECT_EQ(rep.html, dir / "report.html");
  EXPECT_TRUE(rep.warnings.empty());
  const std::string page = read_text_file(rep.html);
  for (const char* needle : {"<!DOCTYPE html>", "Fashion &lt;MNIST&gt; &amp; co", "Path-2 (img_enc, txt_enc)", "m4-demo 1.0.0", "sha256:f51b0e0d",
                             "<b>lora</b>: alpha=8, r=4; targets: <code>img_enc.layers.*.self_attn.{q,v}_proj</code>",
                             "img_enc: lora, txt_enc: frozen", "2,048 trainable / 998,000 frozen (0.2048% trainable)",
                             "9.4 KiB (9,584 bytes)", "sha256:4e634d51", "sha256:92572ee6", "2 (gloo)", "bf16", "1h 02m 05s",
                             "0.1588", "10,000", "final evaluation", "zero-shot (no adapter)", "0.1000", "from scratch", "0.7550",
                             "cnn; 150 steps, all parameters trained", "Learning rate (cosine)", "accuracy (fraction)",
                             "cross-entropy (nats)", "samples/s (global batch)", "started 2026-12-02 01:17:50 UTC"}) {
    EXPECT_NE(page.find(needle), std::string::npos) << "missing: " << needle;
  }
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("http://"), page.find("http://www.w3.org/2000/svg")) << "nothing fetched";
  EXPECT_EQ(count(page, "<svg "), 4);
  // Each chart also stands alone, as an XML document.
  for (const char* f : {"loss.svg", "lr.svg", "eval.svg", "throughput.svg"}) {
    const std::string svg = read_text_file(dir / f);
    EXPECT_EQ(svg.rfind("<?xml", 0), 0u) << f;
    EXPECT_NE(page.find(svg.substr(svg.find("<svg"))), std::string::npos) << f << " is the chart in the page";
  }
  const std::string loss = read_text_file(dir / "loss.svg");
  EXPECT_NE(loss.find("data-series=\"loss (raw)\" data-points=\"150\""), std::string::npos);
  EXPECT_NE(loss.find("data-series=\"loss (smoothed, EMA 0.9)\" data-points=\"150\""), std::string::npos);
  EXPECT_NE(read_text_file(dir / "eval.svg").find("data-series=\"accuracy (adapter)\" data-points=\"3\""), std::string::npos);
}

TEST(RunReport, AnInterruptedRunAndBrokenRowsAreShownNotFatal) {
  test::TempDir dir;
  RunRecord r = record();
  r.finished = false;
  r.steps = 100;
  r.frozen_parameters = -1;  // an older record
  write_run_record(dir.path(), r);
  write_metrics(dir.path(), 100);
  {
    std::ofstream m(dir / runkeys::kMetricsFile, std::ios::app);
    m << "not json\n{\"loss\": 1}\n{\"step\": 41, \"loss\": 2.";  // a hand edit, a row without step, a line cut by a kill
  }
  std::ofstream(dir / runkeys::kEvalsFile) << "{\"adapter\": {\"metric\": \"accuracy\", \"value\": 0.5, \"samples\": 4}}\n[1,2]\n"
                                              // an object whose fields have the wrong types: shown as far as it goes
                                              "{\"evaluated_at\": \"yesterday\", \"adapter\": {\"metric\": 3, \"value\": \"x\", \"samples\": \"many\"}}\n";
  const RunReport rep = write_run_report(dir.path());
  ASSERT_EQ(rep.warnings.size(), 2u);
  EXPECT_NE(rep.warnings[0].find("metrics.jsonl: 3 line(s)"), std::string::npos) << rep.warnings[0];
  EXPECT_NE(rep.warnings[0].find("first: line 103"), std::string::npos) << rep.warnings[0];
  EXPECT_NE(rep.warnings[1].find("evals.jsonl: line 2"), std::string::npos) << rep.warnings[1];
  const std::string page = read_text_file(rep.html);
  EXPECT_NE(page.find("running or interrupted (100 steps recorded)"), std::string::npos);
  EXPECT_NE(page.find("frozen count not recorded"), std::string::npos);
  EXPECT_NE(page.find("not written yet"), std::string::npos) << "no adapter yet";
  EXPECT_NE(page.find("class=\"warnings\""), std::string::npos);
  EXPECT_EQ(page.find("final evaluation"), std::string::npos) << "an unfinished run has no final figure";
  EXPECT_NE(read_text_file(dir / "loss.svg").find("data-points=\"100\""), std::string::npos);
  EXPECT_NE(read_text_file(dir / "eval.svg").find("data-points=\"2\""), std::string::npos);
}

TEST(RunReport, NoEvaluationAndNoMetricsYet) {
  test::TempDir dir;
  write_run_record(dir.path(), record());
  write_run_report(dir.path());
  EXPECT_NE(read_text_file(dir / "report.html").find("no evaluation yet"), std::string::npos);
  EXPECT_NE(read_text_file(dir / "loss.svg").find("no data recorded"), std::string::npos);
}

TEST(RunReport, ErrorsNameTheFile) {
  test::TempDir dir;
  test::expect_error([&] { write_run_report(dir.path()); }, {"run.json", "no run record"});
  write_run_record(dir.path(), record());
  fs::create_directory(dir / runkeys::kMetricsFile);
  test::expect_error([&] { write_run_report(dir.path()); }, {"metrics.jsonl", "directory"});
  fs::remove(dir / runkeys::kMetricsFile);
  {
    std::ofstream m(dir / runkeys::kMetricsFile);
  }
  fs::resize_file(dir / runkeys::kMetricsFile, reportfiles::kMaxMetricsBytes + 1);  // sparse: no disk used
  test::expect_error([&] { write_run_report(dir.path()); }, {"metrics.jsonl", "bytes, more than the 1073741824 a metrics file may hold"});
  EXPECT_FALSE(fs::exists(dir / "report.html"));
}

TEST(JobReport, EveryTaskWithItsLastStatusAndALinkWhereThereIsAReport) {
  test::TempDir dir;
  std::ofstream(dir / "job-rank0.jsonl") << json({{"task", "a"}, {"rank", 0}, {"status", "preempted"}, {"steps", 3}}).dump() << "\n"
                                         << json({{"task", "a"}, {"rank", 0}, {"status", "done"}, {"steps", 6}, {"seconds", 12.5},
                                                  {"metrics", {{"accuracy", 0.75}}}}).dump()
                                         << "\ngarbage\n";
  std::ofstream(dir / "job-rank1.jsonl") << json({{"task", "b<x>"}, {"rank", 1}, {"status", "failed"}, {"error", "b.yaml: bad & wrong"}}).dump()
                                         << "\n";
  fs::create_directories(dir / "a");
  std::ofstream(dir / "a" / "report.html") << "x";
  EXPECT_TRUE(is_job_root(dir.path()));
  const JobReport rep = write_job_report(dir.path(), {"a", "b<x>", "c"});
  EXPECT_EQ(rep.tasks, 3u);
  EXPECT_EQ(rep.failed, 1u);
  const std::string page = read_text_file(rep.html);
  EXPECT_NE(page.find("<a href=\"a/report.html\">a</a></td><td class=\"done\">done</td><td>accuracy 0.7500</td><td class=\"num\">6</td>"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("b&lt;x&gt;</td><td class=\"failed\">failed"), std::string::npos) << "no report, no link";
  EXPECT_NE(page.find("b.yaml: bad &amp; wrong"), std::string::npos);
  EXPECT_NE(page.find("<td>c</td><td class=\"pending\">pending</td>"), std::string::npos);
  EXPECT_NE(page.find("3 tasks: 1 done, 1 failed, 1 pending"), std::string::npos) << page;
  EXPECT_NE(page.find("1 log line(s) that are not task rows skipped"), std::string::npos);
  // Without the job's list: the tasks the logs name.
  EXPECT_EQ(write_job_report(dir.path()).tasks, 2u);
  test::TempDir empty;
  EXPECT_FALSE(is_job_root(empty.path()));
}

}  // namespace
}  // namespace m4
