// Evaluation of an adapter against its baselines (see eval_request.h).
#include "train/eval_request.h"

#include "bundle/bundle_manifest.h"
#include "core/error.h"
#include "data/dataset_reader.h"
#include "firmware/firmware.h"
#include "prompts/prompt_template.h"
#include "task/evaluate.h"
#include "task/run_record.h"
#include "task/task_model.h"
#include "train/scratch_model.h"

namespace m4 {
namespace fs = std::filesystem;
using json = nlohmann::json;

EvalRequest eval_request_from_run(const fs::path& dir) {
  const RunRecord run = read_finished_run(dir);
  EvalRequest req;
  req.task = run.task_config(run_record_path(dir).string());
  req.prompt = run.prompt();
  req.label_names = run.label_names;
  req.adapter_file = dir / runkeys::kAdapterFile;
  req.trained_on = run.firmware_id;
  req.source = dir.string();
  return req;
}

EvalRequest eval_request_from_bundle(const BundleManifest& m, const std::string& where, const std::string& test_split) {
  const std::string w = where + ": manifest.json";
  M4_CHECK(m.prompt_template.is_object() && !m.prompt_id.empty(), ErrorCode::kBadInput, w, ": no prompt template (a model needs one)");
  EvalRequest req;
  req.prompt = parse_prompt_template(m.prompt_template, m.prompt_id, w);
  req.task = task_config_from_json(m.task_config, *req.prompt, w);
  if (!test_split.empty()) req.task.data.test = test_split;
  // The labels as the bundle runs them (open_bundle_model's): label ids are positions in them.
  req.label_names = m.labels;
  req.trained_on = m.firmware_id;
  req.source = where;
  if (req.prompt->labels_from_dataset && fs::exists(req.task.data.test)) {
    const auto names = data::DatasetReader::open(req.task.data.test)->attributes().label_names;
    M4_CHECK(names.empty() || names == m.labels, ErrorCode::kMismatch, req.task.data.test, ": its label_names are not the ",
             m.labels.size(), " labels ", where, " was trained with (label ids would mean other labels)");
  }
  return req;
}

EvalRequest eval_request_from_config(const fs::path& config, const std::vector<std::string>& overrides) {
  EvalRequest req;
  const fs::path root = find_repo_root(config);
  req.task = load_task_config(config, overrides, root);
  if (!req.task.prompt.empty()) req.prompt = load_prompt_template(root, req.task.prompt);
  req.source = config.string();
  return req;
}

bool eval_needs_firmware(const EvalRequest& r) { return !r.adapter_file.empty() || r.zero_shot; }

json evaluate_request(const EvalRequest& req, const Firmware* fw) {
  const TaskConfig& task = req.task;
  M4_CHECK(req.scratch_steps >= 0, ErrorCode::kInvalidArgument, "--scratch-steps must be >= 0, found ", req.scratch_steps);
  M4_CHECK(eval_needs_firmware(req) || req.from_scratch, ErrorCode::kInvalidArgument,
           "nothing to evaluate: --no-baseline without --adapter or --from-scratch");
  auto split = [&](const std::string& file, const char* which) {
    M4_CHECK(!file.empty() && fs::exists(file), ErrorCode::kIo, file, ": no ", which, " split for task ", task.task,
             task.data.prepare.empty() ? "" : " (hint: `" + task.data.prepare + "`)");
    return data::DatasetReader::open(file);
  };
  auto test = split(task.data.test, "test");
  json out = {{"task", task.task}, {"samples_limit", req.limit}};
  if (eval_needs_firmware(req)) {
    M4_CHECK(fw != nullptr, ErrorCode::kInternal, "evaluate_request: a firmware is needed");
    out["firmware"] = fw->label();
    M4_CHECK(req.trained_on.empty() || req.trained_on == fw->id(), ErrorCode::kMismatch, req.source,
             ": the run trained on firmware_id ", req.trained_on, " but ", fw->dir().string(), " is ", fw->id());
    const std::vector<std::string> label_names = req.label_names.value_or(test->attributes().label_names);
    const PromptTemplate tmpl = req.prompt.value_or(PromptTemplate{});
    auto row = [&](const EvalResult& e) { return json{{"metric", e.metric}, {"value", e.value}, {"samples", e.samples}}; };
    if (!req.adapter_file.empty()) {
      TaskModel m(*fw, task, tmpl, label_names, req.adapter_file);
      out["adapter"] = row(evaluate(m, test, req.limit));
    }
    if (req.zero_shot) {
      // Zero-shot: the same path and prompt with untrained adapter parts (LoRA's B
      // is zero, so LoRA-only tasks run the firmware unchanged).
      TaskModel m(*fw, task, tmpl, label_names);
      out["zero_shot"] = row(evaluate(m, test, req.limit));
    }
  }
  if (req.from_scratch) {
    ScratchOptions so;
    so.steps = req.scratch_steps;
    so.eval_limit = req.limit;
    const ScratchResult e = train_scratch_baseline(task, split(task.data.train, "training"), test, so);
    out["from_scratch"] = {{"metric", e.metric}, {"value", e.value},          {"samples", e.samples},
                           {"steps", e.steps},   {"model", e.model},          {"parameters", e.parameters},
                           {"lr", e.lr},         {"last_loss", e.losses.back()}};
  }
  return out;
}

}  // namespace m4
