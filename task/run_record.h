// The run record (RUN_DIR/run.json): what one training run was, written when
// the run starts and completed when it ends. It carries everything a later
// step needs so that none of them re-reads the repository, the config file or
// the datasets: the resolved task config, the prompt template's content and
// the verbalizer actually used, the decoding settings, the firmware identity,
// dataset digests, world size, seed, m4forge revision and the final metrics.
// `export --run`, `eval --run`, `train-many` and `--resume` read only this.
// Format: docs/run-record.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "prompts/prompt_template.h"
#include "task/task_config.h"

namespace m4 {

// Every name the writer and the readers agree on, declared once.
namespace runkeys {
inline constexpr const char* kFormatTag = "m4forge-run/1";
inline constexpr const char* kFile = "run.json";
inline constexpr const char* kAdapterFile = "adapter.safetensors";
inline constexpr const char* kMetricsFile = "metrics.jsonl";  // one row per step and per evaluation
inline constexpr const char* kEvalsFile = "evals.jsonl";      // one row per `m4forge eval --run`
inline constexpr const char* kReportFile = "report.html";     // report/run_report.h
inline constexpr uint64_t kMaxBytes = 16ULL << 20;  // bounded before it is read
// run.json keys
inline constexpr const char* kFormat = "format";
inline constexpr const char* kStatus = "status";  // running | finished
inline constexpr const char* kStatusRunning = "running";
inline constexpr const char* kStatusFinished = "finished";
inline constexpr const char* kTask = "task";
inline constexpr const char* kPath = "path";
inline constexpr const char* kConfig = "task_config";       // the resolved config
inline constexpr const char* kConfigPath = "config_path";   // provenance only; never re-read
inline constexpr const char* kPrompt = "prompt";
inline constexpr const char* kPromptId = "id";
inline constexpr const char* kPromptTemplate = "template";  // PromptTemplate::to_json(), null without a template
inline constexpr const char* kLabels = "labels";            // verbalizer texts, label id order
inline constexpr const char* kLabelNames = "label_names";   // the training split's label names
inline constexpr const char* kDecoding = "decoding";
inline constexpr const char* kFirmware = "firmware";
inline constexpr const char* kFirmwareId = "id";
inline constexpr const char* kFirmwareName = "name";
inline constexpr const char* kFirmwareVersion = "version";
inline constexpr const char* kDatasets = "datasets";
inline constexpr const char* kDatasetFile = "file";
inline constexpr const char* kDatasetSha256 = "sha256";
inline constexpr const char* kTraining = "training";
inline constexpr const char* kWorld = "world";
inline constexpr const char* kBackend = "backend";
inline constexpr const char* kDevice = "device";  // where the steps ran ("cpu", "cuda:0"); absent from older records
inline constexpr const char* kSeed = "seed";
inline constexpr const char* kPrecision = "precision";
inline constexpr const char* kSteps = "steps";
inline constexpr const char* kLastLoss = "last_loss";
inline constexpr const char* kTrainableParameters = "trainable_parameters";
inline constexpr const char* kFrozenParameters = "frozen_parameters";  // absent from records before it was added
inline constexpr const char* kMetrics = "metrics";
inline constexpr const char* kM4forge = "m4forge";
inline constexpr const char* kVersion = "version";
inline constexpr const char* kRevision = "revision";
inline constexpr const char* kStarted = "started";    // unix seconds
inline constexpr const char* kFinished = "finished";  // unix seconds, 0 while running
}  // namespace runkeys

struct RunDataset {
  std::string file;    // as the config named it (provenance)
  std::string sha256;  // "sha256:<hex>" of its bytes
  bool operator==(const RunDataset&) const = default;
};

struct RunRecord {
  bool finished = false;
  std::string task;
  int path = 0;
  nlohmann::json config = nlohmann::json::object();  // TaskConfig::resolved
  std::string config_path;
  std::string prompt_id;                               // "" when the task has no template
  nlohmann::json prompt_template;                      // null when the task has no template
  std::vector<std::string> labels;                     // verbalizer texts used (empty for generation)
  std::vector<std::string> label_names;                // the training split's label names
  nlohmann::json decoding = nlohmann::json::object();  // generation: strategy, max_new_tokens
  std::string firmware_id, firmware_name, firmware_version;
  std::map<std::string, RunDataset> datasets;  // split (train, test) -> file and digest
  int world = 1;
  std::string backend;
  std::string device;  // the last (re)start's, not compared by --resume
  int64_t seed = 0;
  std::string precision;
  std::string m4forge_version, m4forge_revision;
  int64_t started = 0, finished_at = 0;
  int64_t steps = 0;
  double last_loss = 0;
  int64_t trainable_parameters = 0;
  int64_t frozen_parameters = -1;  // -1: not recorded (older records)
  std::map<std::string, double> metrics;

  nlohmann::json to_json() const;
  // Validates every field; all problems in one m4::Error(kBadInput) prefixed with `where`.
  static RunRecord from_json(const nlohmann::json& j, const std::string& where);

  // The template the run trained with, from the record itself (nullopt: none).
  std::optional<PromptTemplate> prompt() const;
  // The task config as trained, rebuilt from the record and its template alone.
  TaskConfig task_config(const std::string& where) const;
};

std::filesystem::path run_record_path(const std::filesystem::path& run_dir);
// Reads and validates RUN_DIR/run.json; errors name the file.
RunRecord read_run_record(const std::filesystem::path& run_dir);
// A finished run's record (export, eval): refuses one still running or interrupted.
RunRecord read_finished_run(const std::filesystem::path& run_dir);
// Writes RUN_DIR/run.json atomically.
void write_run_record(const std::filesystem::path& run_dir, const RunRecord& record);

// What keeps `now` from continuing `before` as the same run: "" when nothing
// does, else one phrase naming the first difference (firmware, config key,
// template, labels, dataset, world size). May differ: train.steps (to extend),
// train.eval_every, data file paths when the bytes are the same, description.
std::string resume_difference(const RunRecord& before, const RunRecord& now);

// "sha256:<hex>" of a file.
std::string file_sha256(const std::filesystem::path& file);
// The task's train and test files that exist, with their digests.
std::map<std::string, RunDataset> dataset_digests(const TaskConfig& task);

}  // namespace m4
