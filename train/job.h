// `m4forge train-many JOB.yaml`: many tasks' adapters trained in one process
// that holds ONE resident copy of the firmware's modules (ModuleCache), each
// task in turn. Under mpirun/srun the tasks are spread over the ranks (task i
// on rank i mod world) and every rank trains its own tasks alone, so ranks
// never wait for each other. Every task config is loaded and validated before
// the first step; a task that fails is recorded and the job goes on; SIGTERM
// checkpoints the running task and stops; `--resume` skips finished tasks and
// continues interrupted ones from their newest checkpoint. Format: docs/jobs.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "firmware/firmware.h"
#include "task/task_config.h"
#include "train/trainer.h"

namespace m4 {

struct JobTask {
  std::string name;                    // its run directory under the run root; unique in the job
  std::filesystem::path config;        // the task config file
  std::vector<std::string> overrides;  // the job's overrides, then the entry's own
  TaskConfig task;                     // loaded and validated by load_job
};

struct Job {
  std::filesystem::path source;    // the job file
  std::filesystem::path repo_root;  // where configs/tasks and prompts/templates are
  std::filesystem::path run_root;   // the job's `run_root` (relative: to the working directory); may be empty
  std::vector<JobTask> tasks;
};

// Reads and validates a job file: its keys, every entry (a task id, or a map
// with `config`, `name`, `overrides`), unique names, and every task config
// with its overrides. All problems go into one m4::Error naming the file.
Job load_job(const std::filesystem::path& file);

// Which ranks train which tasks: task i goes to rank i mod world.
bool task_on_rank(size_t task_index, int rank, int world);

struct JobTaskResult {
  std::string name;
  std::string status;  // done, already_done, failed, preempted, not_started
  std::string error;   // failed: the one-line message
  int64_t steps = 0;
  std::map<std::string, double> metrics;
  double seconds = 0;
  int64_t rss_kib = 0;  // this process's resident memory after the task
  int rank = 0;
};

struct JobOptions {
  std::filesystem::path run_root;  // tasks train into run_root/<name>
  bool resume = false;
  TrainOptions train;              // per-task options; run_dir, repo_root and modules are set per task
};

// Trains this rank's tasks of `job` in order with one ModuleCache for all of
// them. Returns one result per task of this rank (not_started after a stop),
// and appends each to run_root/job-rank<R>.jsonl as it ends.
std::vector<JobTaskResult> run_job(const Firmware& fw, const Job& job, const JobOptions& options, int rank, int world);

}  // namespace m4
