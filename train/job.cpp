// Batch jobs: the job file, and the loop that trains one rank's tasks over one
// resident set of firmware modules.
#include "train/job.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <regex>
#include <set>

#include "cluster/communicator.h"
#include "core/cpu_runtime.h"
#include "core/error.h"
#include "core/yaml_json.h"
#include "firmware/module_loader.h"
#include "peft/pattern.h"
#include "report/job_report.h"
#include "task/run_record.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// A list of strings, or a problem naming `where`.
bool string_list(const json& j, const std::string& where, std::vector<std::string>* out, std::vector<std::string>* problems) {
  if (!j.is_array()) {
    problems->push_back(where + " must be a list of key=value strings");
    return false;
  }
  for (const auto& v : j) {
    if (!v.is_string()) {
      problems->push_back(where + " must be a list of key=value strings, not " + v.dump());
      return false;
    }
    out->push_back(v.get<std::string>());
  }
  return true;
}

// A task entry's config file: an id (configs/tasks/<id>.yaml) or a path,
// relative to the repository root.
fs::path entry_config(const json& e, const fs::path& root, const std::string& where, std::vector<std::string>* problems) {
  const std::string text = e.get<std::string>();
  const bool is_id = text.find('/') == std::string::npos && fs::path(text).extension() != ".yaml";
  fs::path p = is_id ? root / "configs" / "tasks" / (text + ".yaml") : fs::path(text);
  if (p.is_relative()) p = root / p;
  if (fs::is_regular_file(p)) return p;
  if (is_id) {
    std::vector<std::string> ids;
    if (fs::is_directory(root / "configs" / "tasks")) {
      for (const auto& t : list_tasks(root / "configs" / "tasks")) ids.push_back(t.id);
    }
    const auto near = nearest_names(text, ids, 3);
    problems->push_back(where + ": unknown task '" + text + "'" + (near.empty() ? "" : " (nearest: " + join(near, ", ") + ")"));
  } else {
    problems->push_back(where + ": no such task config " + p.string());
  }
  return {};
}

}  // namespace

Job load_job(const fs::path& file) {
  const json j = read_yaml_file(file);
  const std::string where = file.string();
  M4_CHECK(j.is_object(), ErrorCode::kBadInput, where, ": a job file is a mapping with `tasks:` (see docs/jobs.md)");
  Job job;
  job.source = file;
  job.repo_root = find_repo_root(file);
  std::vector<std::string> problems;
  for (const auto& [k, v] : j.items()) {
    if (k != "tasks" && k != "overrides" && k != "run_root") problems.push_back("unknown key '" + k + "' (known: tasks, overrides, run_root)");
  }
  std::vector<std::string> common;
  if (j.contains("overrides")) string_list(j["overrides"], "overrides", &common, &problems);
  if (j.contains("run_root")) {
    if (j["run_root"].is_string() && !j["run_root"].get<std::string>().empty()) {
      job.run_root = j["run_root"].get<std::string>();
    } else {
      problems.push_back("run_root must be a directory path");
    }
  }
  if (!j.contains("tasks") || !j["tasks"].is_array() || j["tasks"].empty()) {
    problems.push_back("`tasks` must be a non-empty list of task ids or {config, name, overrides} maps");
  }
  const std::regex safe_name("[A-Za-z0-9_][A-Za-z0-9_.-]*");
  std::map<std::string, size_t> names;
  const json tasks = j.value("tasks", json::array());
  for (size_t i = 0; i < tasks.size() && tasks.is_array(); ++i) {
    const std::string at = "tasks[" + std::to_string(i) + "]";
    const json& e = tasks[i];
    JobTask t;
    t.overrides = common;
    json config_field;
    if (e.is_string()) {
      config_field = e;
    } else if (e.is_object()) {
      bool ok = true;
      for (const auto& [k, v] : e.items()) {
        if (k != "config" && k != "name" && k != "overrides") {
          problems.push_back(at + ": unknown key '" + k + "' (known: config, name, overrides)");
          ok = false;
        }
      }
      if (!e.contains("config") || !e["config"].is_string()) {
        problems.push_back(at + ": needs `config:` (a task id or a config path)");
        continue;
      }
      config_field = e["config"];
      if (e.contains("name")) {
        if (e["name"].is_string()) {
          t.name = e["name"].get<std::string>();
        } else {
          problems.push_back(at + ": name must be a string");
          ok = false;
        }
      }
      if (e.contains("overrides")) ok = string_list(e["overrides"], at + ".overrides", &t.overrides, &problems) && ok;
      if (!ok) continue;
    } else {
      problems.push_back(at + ": a task id or a {config, name, overrides} map, not " + e.dump());
      continue;
    }
    t.config = entry_config(config_field, job.repo_root, at, &problems);
    if (t.config.empty()) continue;
    try {
      t.task = load_task_config(t.config, t.overrides, job.repo_root);
    } catch (const std::exception& ex) {
      problems.push_back(at + ": " + one_line(ex.what()));
      continue;
    }
    if (t.name.empty()) t.name = t.task.task;
    if (!std::regex_match(t.name, safe_name)) {
      problems.push_back(at + ": name '" + t.name + "' must be letters, digits, '_', '.', '-' (it names the run directory)");
      continue;
    }
    if (auto [it, fresh] = names.emplace(t.name, i); !fresh) {
      problems.push_back(at + ": name '" + t.name + "' is already used by tasks[" + std::to_string(it->second) +
                         "] (give one of them a `name:`)");
      continue;
    }
    job.tasks.push_back(std::move(t));
  }
  M4_CHECK(problems.empty(), ErrorCode::kBadInput, where, ": ", join(problems, "; "));
  return job;
}

namespace {

// RUN_ROOT/report.html from every rank's log so far; failing to write it is
// logged, never fails the job.
void write_report(const fs::path& run_root, const Job& job) {
  std::vector<std::string> names;
  for (const JobTask& t : job.tasks) names.push_back(t.name);
  try {
    write_job_report(run_root, names);
  } catch (const std::exception& e) {
    spdlog::warn("job report not written: {}", e.what());
  }
}

}  // namespace

bool task_on_rank(size_t task_index, int rank, int world) {
  return world <= 1 || static_cast<int>(task_index % static_cast<size_t>(world)) == rank;
}

std::vector<JobTaskResult> run_job(const Firmware& fw, const Job& job, const JobOptions& options, int rank, int world) {
  install_stop_handlers();  // a SIGTERM between two tasks must stop the job too
  ModuleCache modules(fw);  // the one resident copy every task of this rank uses
  auto alone = make_single_process();
  fs::create_directories(options.run_root);
  std::ofstream log(options.run_root / ("job-rank" + std::to_string(rank) + ".jsonl"), std::ios::app);
  std::vector<JobTaskResult> results;
  for (size_t i = 0; i < job.tasks.size(); ++i) {
    if (!task_on_rank(i, rank, world)) continue;
    const JobTask& t = job.tasks[i];
    JobTaskResult r;
    r.name = t.name;
    r.rank = rank;
    const fs::path dir = options.run_root / t.name;
    const auto t0 = std::chrono::steady_clock::now();
    // A finished run of this exact config on this firmware is done; a record
    // that cannot be read fails the task with its message (nothing is overwritten).
    std::optional<RunRecord> done;
    std::string unreadable;
    if (options.resume && fs::exists(run_record_path(dir))) {
      try {
        done = read_run_record(dir);
      } catch (const std::exception& ex) {
        unreadable = one_line(ex.what());
      }
    }
    if (stop_requested()) {
      r.status = "not_started";
    } else if (!unreadable.empty()) {
      r.status = "failed";
      r.error = unreadable;
    } else if (done && done->finished && done->config == t.task.resolved && done->firmware_id == fw.id()) {
      r.status = "already_done";
      r.steps = done->steps;
      r.metrics = done->metrics;
    } else if (done && done->finished) {
      r.status = "failed";
      r.error = run_record_path(dir).string() + " holds a finished run of a different " +
                (done->firmware_id != fw.id() ? "firmware" : "config") +
                "; not overwritten (remove it or give the task another name)";
    } else {
      spdlog::info("job {}: task {} ({}/{}) on rank {}", job.source.filename().string(), t.name, i + 1, job.tasks.size(), rank);
      TrainOptions to = options.train;
      to.run_dir = dir;
      to.repo_root = job.repo_root;
      to.resume = options.resume;
      to.modules = &modules;
      try {
        const TrainSummary s = train_task(fw, t.task, to, *alone);
        r.status = s.preempted ? "preempted" : "done";
        if (s.preempted) request_stop();  // a preempted job stops; --resume continues it
        r.steps = s.steps;
        r.metrics = s.metrics;
      } catch (const std::exception& ex) {
        r.status = "failed";
        r.error = one_line(ex.what());
      }
    }
    if (r.status == "failed") spdlog::error("task {}: {}", t.name, r.error);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.rss_kib = process_memory().rss_kib;
    log << json({{"task", r.name}, {"rank", rank}, {"status", r.status}, {"error", r.error}, {"steps", r.steps},
                 {"metrics", r.metrics}, {"seconds", r.seconds}, {"rss_kib", r.rss_kib}, {"modules_loaded", modules.loads()}})
               .dump()
        << "\n";
    log.flush();
    results.push_back(std::move(r));
    write_report(options.run_root, job);
  }
  write_report(options.run_root, job);  // also when this rank had no task
  return results;
}

}  // namespace m4
