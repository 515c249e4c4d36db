// The run record: its json form, validation, and the same-run check of --resume.
#include "task/run_record.h"

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_file.h"
#include "core/mapped_file.h"
#include "core/sha256.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
namespace k = runkeys;

// Reads typed fields, collecting every problem instead of stopping at the first.
struct Fields {
  const json& j;
  std::vector<std::string>& problems;
  std::string prefix;

  const json* get(const char* key, json::value_t type, bool required = true) {
    if (!j.is_object() || !j.contains(key)) {
      if (required) problems.push_back(prefix + key + " is missing");
      return nullptr;
    }
    const json& v = j.at(key);
    const bool ok = type == json::value_t::number_float ? v.is_number()
                    : type == json::value_t::number_integer ? v.is_number_integer()
                                                            : v.type() == type;
    if (!ok) {
      problems.push_back(prefix + key + " has the wrong type (" + std::string(v.type_name()) + ")");
      return nullptr;
    }
    return &v;
  }
  std::string str(const char* key, bool required = true) {
    const json* v = get(key, json::value_t::string, required);
    return v ? v->get<std::string>() : std::string();
  }
  int64_t integer(const char* key, bool required = true) {
    const json* v = get(key, json::value_t::number_integer, required);
    return v ? v->get<int64_t>() : 0;
  }
  double number(const char* key) {
    const json* v = get(key, json::value_t::number_float);
    return v ? v->get<double>() : 0.0;
  }
  std::vector<std::string> strings(const char* key) {
    const json* v = get(key, json::value_t::array);
    std::vector<std::string> out;
    if (!v) return out;
    for (const auto& e : *v) {
      if (!e.is_string()) {
        problems.push_back(prefix + key + " must hold strings only");
        return {};
      }
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  Fields sub(const char* key) {
    const json* v = get(key, json::value_t::object);
    static const json kEmpty = json::object();
    return Fields{v ? *v : kEmpty, problems, prefix + key + "."};
  }
};

// The first key path where a and b differ ("optim.lr"), or "" when equal.
std::string first_difference(const json& a, const json& b, const std::string& at) {
  if (a.is_object() && b.is_object()) {
    for (const auto& [key, v] : a.items()) {
      const std::string here = at.empty() ? key : at + "." + key;
      if (!b.contains(key)) return here;
      if (auto d = first_difference(v, b.at(key), here); !d.empty()) return d;
    }
    for (const auto& [key, v] : b.items()) {
      if (!a.contains(key)) return at.empty() ? key : at + "." + key;
    }
    return "";
  }
  return a == b ? "" : (at.empty() ? "(whole)" : at);
}

const json* at_path(const json& j, const std::string& dotted) {
  const json* cur = &j;
  size_t start = 0;
  while (cur && start <= dotted.size()) {
    const size_t dot = dotted.find('.', start);
    const std::string key = dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    cur = cur->is_object() && cur->contains(key) ? &cur->at(key) : nullptr;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return cur;
}

// The config without the keys a resumed run may change.
json comparable_config(json c) {
  if (c.is_object()) {
    c.erase("description");
    if (c.contains("train") && c["train"].is_object()) {
      c["train"].erase("steps");       // extending a run is continuing it
      c["train"].erase("eval_every");  // when to evaluate does not change the trajectory
      c["train"].erase("device");      // a preempted run may resume on another device (checkpoints are CPU tensors)
    }
    // Data are compared by their bytes (datasets), not by where they lie.
    c.erase("data");
  }
  return c;
}

std::string shown(const json* v) { return v ? v->dump() : std::string("(absent)"); }

}  // namespace

json RunRecord::to_json() const {
  json ds = json::object();
  for (const auto& [split, d] : datasets) ds[split] = {{k::kDatasetFile, d.file}, {k::kDatasetSha256, d.sha256}};
  return {
      {k::kFormat, k::kFormatTag},
      {k::kStatus, finished ? k::kStatusFinished : k::kStatusRunning},
      {k::kTask, task},
      {k::kPath, path},
      {k::kConfig, config},
      {k::kConfigPath, config_path},
      {k::kPrompt,
       {{k::kPromptId, prompt_id}, {k::kPromptTemplate, prompt_template}, {k::kLabels, labels}, {k::kLabelNames, label_names}}},
      {k::kDecoding, decoding},
      {k::kFirmware, {{k::kFirmwareId, firmware_id}, {k::kFirmwareName, firmware_name}, {k::kFirmwareVersion, firmware_version}}},
      {k::kDatasets, ds},
      {k::kTraining,
       {{k::kWorld, world},
        {k::kBackend, backend},
        {k::kDevice, device},
        {k::kSeed, seed},
        {k::kPrecision, precision},
        {k::kSteps, steps},
        {k::kLastLoss, last_loss},
        {k::kTrainableParameters, trainable_parameters},
        {k::kFrozenParameters, frozen_parameters}}},
      {k::kMetrics, metrics},
      {k::kM4forge, {{k::kVersion, m4forge_version}, {k::kRevision, m4forge_revision}}},
      {k::kStarted, started},
      {k::kFinished, finished_at},
  };
}

RunRecord RunRecord::from_json(const json& j, const std::string& where) {
  M4_CHECK(j.is_object(), ErrorCode::kBadInput, where, ": a run record is a JSON object");
  std::vector<std::string> problems;
  Fields f{j, problems, ""};
  RunRecord r;
  const std::string format = f.str(k::kFormat);
  if (!format.empty() && format != k::kFormatTag) {
    M4_FAIL(ErrorCode::kBadInput, where, ": format '", format, "' is not ", k::kFormatTag,
            " (hint: a run from another m4forge version; retrain it)");
  }
  const std::string status = f.str(k::kStatus);
  if (!status.empty() && status != k::kStatusRunning && status != k::kStatusFinished)
    problems.push_back(std::string("status '") + status + "' is not running or finished");
  r.finished = status == k::kStatusFinished;
  r.task = f.str(k::kTask);
  r.path = static_cast<int>(f.integer(k::kPath));
  if (const json* c = f.get(k::kConfig, json::value_t::object)) r.config = *c;
  r.config_path = f.str(k::kConfigPath, false);
  Fields p = f.sub(k::kPrompt);
  r.prompt_id = p.str(k::kPromptId);
  if (p.j.contains(k::kPromptTemplate)) r.prompt_template = p.j.at(k::kPromptTemplate);
  if (!r.prompt_id.empty() && !r.prompt_template.is_object())
    problems.push_back("prompt.template must be the template of '" + r.prompt_id + "'");
  r.labels = p.strings(k::kLabels);
  r.label_names = p.strings(k::kLabelNames);
  if (const json* d = f.get(k::kDecoding, json::value_t::object)) r.decoding = *d;
  Fields fw = f.sub(k::kFirmware);
  r.firmware_id = fw.str(k::kFirmwareId);
  r.firmware_name = fw.str(k::kFirmwareName);
  r.firmware_version = fw.str(k::kFirmwareVersion);
  if (const json* ds = f.get(k::kDatasets, json::value_t::object)) {
    for (const auto& [split, v] : ds->items()) {
      Fields d{v, problems, std::string(k::kDatasets) + "." + split + "."};
      r.datasets[split] = {d.str(k::kDatasetFile), d.str(k::kDatasetSha256)};
    }
  }
  Fields t = f.sub(k::kTraining);
  r.world = static_cast<int>(t.integer(k::kWorld));
  r.backend = t.str(k::kBackend);
  r.device = t.str(k::kDevice, /*required=*/false);
  r.seed = t.integer(k::kSeed);
  r.precision = t.str(k::kPrecision);
  r.steps = t.integer(k::kSteps);
  r.last_loss = t.number(k::kLastLoss);
  r.trainable_parameters = t.integer(k::kTrainableParameters);
  r.frozen_parameters = t.integer(k::kFrozenParameters, /*required=*/false);
  if (!t.j.contains(k::kFrozenParameters)) r.frozen_parameters = -1;
  if (const json* m = f.get(k::kMetrics, json::value_t::object)) {
    for (const auto& [name, v] : m->items()) {
      if (v.is_number()) {
        r.metrics[name] = v.get<double>();
      } else {
        problems.push_back("metrics." + name + " must be a number");
      }
    }
  }
  Fields m4 = f.sub(k::kM4forge);
  r.m4forge_version = m4.str(k::kVersion);
  r.m4forge_revision = m4.str(k::kRevision);
  r.started = f.integer(k::kStarted);
  r.finished_at = f.integer(k::kFinished);
  if (r.world < 1 && problems.empty()) problems.push_back("training.world must be >= 1");
  check_problems(problems, where);
  return r;
}

std::optional<PromptTemplate> RunRecord::prompt() const {
  if (prompt_id.empty()) return std::nullopt;
  return parse_prompt_template(prompt_template, prompt_id, "run record template '" + prompt_id + "'");
}

TaskConfig RunRecord::task_config(const std::string& where) const {
  // With no template the config names none, so nothing is read from a repository.
  if (auto t = prompt()) return task_config_from_json(config, *t, where);
  return task_config_from_json(config, {}, {}, where);
}

fs::path run_record_path(const fs::path& run_dir) { return run_dir / k::kFile; }

RunRecord read_run_record(const fs::path& run_dir) {
  const fs::path file = run_record_path(run_dir);
  M4_CHECK(fs::exists(file), ErrorCode::kIo, file.string(), ": no run record (is ", run_dir.string(),
           " a run directory? `m4forge train` writes it)");
  check_regular_file(file, "run record");
  return RunRecord::from_json(read_json_file(file, k::kMaxBytes), file.string());
}

RunRecord read_finished_run(const fs::path& run_dir) {
  RunRecord r = read_run_record(run_dir);
  const json* planned = at_path(r.config, "train.steps");
  M4_CHECK(r.finished, ErrorCode::kMismatch, run_record_path(run_dir).string(), ": the run has not finished (", r.steps,
           " of ", planned ? planned->dump() : std::string("?"), " steps recorded; continue it with `m4forge train ... --resume`)");
  return r;
}

void write_run_record(const fs::path& run_dir, const RunRecord& record) {
  write_file_atomic(run_record_path(run_dir), record.to_json().dump(1) + "\n");
}

std::string resume_difference(const RunRecord& before, const RunRecord& now) {
  if (before.firmware_id != now.firmware_id) {
    return "the firmware: the run trained on " + before.firmware_name + "@" + before.firmware_version + " (" +
           before.firmware_id + "), this is " + now.firmware_name + "@" + now.firmware_version + " (" + now.firmware_id + ")";
  }
  if (before.task != now.task) return "the task: " + before.task + " -> " + now.task;
  const json a = comparable_config(before.config), b = comparable_config(now.config);
  if (const std::string d = first_difference(a, b, ""); !d.empty()) {
    return "the config at " + d + ": " + shown(at_path(a, d)) + " -> " + shown(at_path(b, d));
  }
  if (before.prompt_id != now.prompt_id || before.prompt_template != now.prompt_template) {
    return "the prompt template '" + now.prompt_id + "' (its content changed since the run started)";
  }
  if (before.labels != now.labels) return "the labels (verbalizer)";
  for (const auto& [split, d] : before.datasets) {
    const auto it = now.datasets.find(split);
    const std::string other = it == now.datasets.end() ? "(none)" : it->second.file + " " + it->second.sha256;
    if (it == now.datasets.end() || it->second.sha256 != d.sha256) {
      return "the " + split + " dataset: " + d.file + " " + d.sha256 + " -> " + other;
    }
  }
  for (const auto& [split, d] : now.datasets) {
    if (!before.datasets.count(split)) return "the " + split + " dataset: (none) -> " + d.file;
  }
  if (before.world != now.world) {
    return "the world size: " + std::to_string(before.world) + " -> " + std::to_string(now.world) +
           " ranks (each rank's data shard and dropout stream depend on it, so the run would not continue exactly)";
  }
  return "";
}

std::string file_sha256(const fs::path& file) { return "sha256:" + to_hex(sha256_file(file)); }

std::map<std::string, RunDataset> dataset_digests(const TaskConfig& task) {
  std::map<std::string, RunDataset> out;
  for (const auto& [split, file] : {std::pair<std::string, std::string>{"train", task.data.train}, {"test", task.data.test}}) {
    if (!file.empty() && fs::is_regular_file(file)) out[split] = {file, file_sha256(file)};
  }
  return out;
}

}  // namespace m4
