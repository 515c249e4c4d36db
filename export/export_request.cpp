// Export requests from a run record or from an adapter and a task config.
#include "export/export_request.h"

#include <cstdlib>
#include <ctime>

#include "core/error.h"
#include "data/dataset_reader.h"
#include "task/run_record.h"

namespace m4 {
namespace fs = std::filesystem;
using json = nlohmann::json;

ExportRequest export_request_from_run(const fs::path& run_dir) {
  const RunRecord run = read_finished_run(run_dir);
  const std::string where = run_record_path(run_dir).string();
  ExportRequest req;
  req.adapter_file = run_dir / runkeys::kAdapterFile;
  M4_CHECK(fs::is_regular_file(req.adapter_file), ErrorCode::kIo, req.adapter_file.string(),
           ": the run's adapter is missing (", where, " says the run finished)");
  req.prompt = run.prompt();
  req.task = run.task_config(where);
  req.labels = run.labels;
  req.trained_on = run.firmware_id;
  for (const auto& [split, d] : run.datasets) req.dataset_digests[split] = d.sha256;
  const json record = run.to_json();
  req.training = record.at(runkeys::kTraining);
  req.training["optim"] = run.config.value("optim", json::object());
  req.training["train"] = run.config.value("train", json::object());
  req.training["decoding"] = run.decoding;
  req.training["run_revision"] = run.m4forge_revision;
  req.metrics = run.metrics;
  return req;
}

namespace {
// The verbalizer: the template's texts, or the datasets' label names when the template defers to them.
std::vector<std::string> labels_from_datasets(const TaskConfig& task, const PromptTemplate& t) {
  if (!t.labels_from_dataset) return t.labels;  // empty for generation tasks
  for (const auto& f : {task.data.train, task.data.test}) {
    if (!f.empty() && fs::is_regular_file(f)) return t.labels_for(data::DatasetReader::open(f)->attributes().label_names);
  }
  M4_FAIL(ErrorCode::kInvalidArgument, "template '", t.id, "' takes its labels from the dataset, but ", task.data.train,
          " is missing (hint: build it with: ", task.data.prepare, ", or export the run with --run)");
}
}  // namespace

ExportRequest export_request_from_config(const fs::path& adapter_file, const fs::path& config,
                                         const std::vector<std::string>& overrides) {
  ExportRequest req;
  req.adapter_file = adapter_file;
  const fs::path root = find_repo_root(config);
  req.task = load_task_config(config, overrides, root);
  if (!req.task.prompt.empty()) {
    req.prompt = load_prompt_template(root, req.task.prompt);
    req.labels = labels_from_datasets(req.task, *req.prompt);
  }
  for (const auto& [split, d] : dataset_digests(req.task)) req.dataset_digests[split] = d.sha256;
  req.training = {{"optim", req.task.resolved.value("optim", json::object())},
                  {"train", req.task.resolved.value("train", json::object())}};
  return req;
}

int64_t bundle_creation_time() {
  if (const char* e = std::getenv("SOURCE_DATE_EPOCH")) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(e, &end, 10);
    M4_CHECK(end && end != e && *end == '\0' && v >= 0 && errno == 0, ErrorCode::kInvalidArgument, "SOURCE_DATE_EPOCH='",
             e, "' is not a non-negative integer");
    return v;
  }
  return static_cast<int64_t>(std::time(nullptr));
}

}  // namespace m4
