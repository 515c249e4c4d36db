// A run's report a person can read: RUN_DIR/report.html, self-contained (inline
// SVG and CSS, no scripts, nothing fetched), with what was trained (the run
// record's summary), how it did (the evaluation table: the training's own
// evaluations and every `m4forge eval --run`), and the curves, also written
// beside it as SVG files: training loss (raw and smoothed), learning rate,
// the evaluation metric and throughput against step.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace m4 {

// The charts' files in a run directory, in the report's order.
namespace reportfiles {
inline constexpr const char* kLossChart = "loss.svg";
inline constexpr const char* kLrChart = "lr.svg";
inline constexpr const char* kEvalChart = "eval.svg";
inline constexpr const char* kThroughputChart = "throughput.svg";
inline constexpr uint64_t kMaxMetricsBytes = 1ULL << 30;  // metrics.jsonl is bounded before it is read
inline constexpr uint64_t kMaxEvalsBytes = 64ULL << 20;
inline constexpr size_t kMaxChartPoints = 2000;          // a longer series is thinned evenly
}  // namespace reportfiles

struct RunReport {
  std::filesystem::path html;         // RUN_DIR/report.html
  std::vector<std::string> warnings;  // rows it skipped (also shown in the page)
};

// Writes RUN_DIR/report.html and the four SVG charts (atomically), from
// run.json, metrics.jsonl, evals.jsonl and the adapter's size. A run still
// going or interrupted is reported as such. Throws m4::Error naming the file
// when the run record is missing or unreadable.
RunReport write_run_report(const std::filesystem::path& run_dir);

// Appends one `m4forge eval` result (evaluate_request's JSON) with the time to
// RUN_DIR/evals.jsonl, so the report keeps every evaluation made of the run.
void append_evaluation(const std::filesystem::path& run_dir, const nlohmann::json& result);

// The page's shared style sheet and header (the job report uses them too).
std::string report_page_head(const std::string& title);
// A metric as people quote it: BLEU on 0..100 with 2 decimals, the rest
// fractions with 4.
std::string format_metric(const std::string& metric, double value);
// "2026-12-02 01:51:15 UTC"
std::string utc_time(int64_t unix_seconds);

}  // namespace m4
