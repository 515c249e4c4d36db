// `m4forge eval`: a task's metric on its test split with the adapter, against
// zero-shot (the same path and prompt, untrained adapter parts) and, on
// request, a small task-specific model trained from scratch on the training
// split (as the paper compares with TS-models). From a run, everything comes
// from its record (task/run_record.h): config, template, label names, adapter.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "prompts/prompt_template.h"
#include "task/task_config.h"

namespace m4 {

class Firmware;
struct BundleManifest;

struct EvalRequest {
  TaskConfig task;
  std::optional<PromptTemplate> prompt;
  std::optional<std::vector<std::string>> label_names;  // a run's; unset: the test split's
  std::filesystem::path adapter_file;                   // empty: no adapter row
  std::string trained_on;                               // a run's firmware_id; "" when unknown
  std::string source;                                   // the run directory or config, for messages
  bool zero_shot = true, from_scratch = false;
  int64_t limit = 0;          // test samples (0: all)
  int64_t scratch_steps = 0;  // 0: the task's train.steps
};

// A finished run, as it trained.
EvalRequest eval_request_from_run(const std::filesystem::path& run_dir);
// A verified bundle's manifest, as a device runs it: the task config, template
// and labels from the manifest alone; `test_split` (a file) replaces the
// config's data.test when given. The caller sets adapter_file (the bundle's
// adapter bytes as a file). `where` names the bundle in errors.
EvalRequest eval_request_from_bundle(const BundleManifest& manifest, const std::string& where, const std::string& test_split);
// A task config (overrides applied) and its template as they are now.
EvalRequest eval_request_from_config(const std::filesystem::path& config, const std::vector<std::string>& overrides);

// True when the request runs a model on the firmware (adapter or zero-shot rows).
bool eval_needs_firmware(const EvalRequest& request);

// {"task", "samples_limit", "firmware", "adapter", "zero_shot", "from_scratch"}:
// each row {metric, value, samples} (from_scratch also steps, model,
// parameters, lr, last_loss). `fw` may be null when no row needs it.
nlohmann::json evaluate_request(const EvalRequest& request, const Firmware* fw);

}  // namespace m4
