// `m4forge train`: one task's adapter trained on one process or many (MPI).
// Global batch = per-rank batch x world x grad_accum = train.batch_size, so the
// same config gives the same run at any world size. Rank 0 writes checkpoints,
// metrics and the final adapter; SIGTERM/SIGINT checkpoint and exit cleanly.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "cluster/communicator.h"
#include "firmware/firmware.h"
#include "task/task_config.h"

namespace m4 {

class ModuleCache;

struct TrainOptions {
  std::filesystem::path run_dir;   // checkpoints/, metrics.jsonl, adapter.safetensors, run.json (task/run_record.h)
  std::filesystem::path repo_root;  // prompts/templates
  bool resume = false;              // continue the same run from its newest complete checkpoint (else: refused)
  int64_t checkpoint_every = 0;     // steps; 0: at each eval and at the end
  int64_t log_every = 10;
  int64_t eval_limit = 256;         // samples of the test split for periodic evaluation (0: all)
  int64_t final_eval_limit = 0;     // samples of the test split for the final evaluation (0: all)
  int64_t stop_after = 0;           // testing aid: stop (as if preempted) after this many steps; 0: never
  ModuleCache* modules = nullptr;   // resident firmware modules shared with other tasks (train-many); null: load
};

struct TrainSummary {
  int64_t steps = 0;
  double last_loss = 0;
  bool preempted = false;
  std::map<std::string, double> metrics;  // final evaluation
};

// Holds options.run_dir for the whole run (a second process is refused at
// once), refuses to start afresh over earlier work, and with `resume`
// refuses a run that would differ from the one recorded (task/run_record.h).
TrainSummary train_task(const Firmware& fw, const TaskConfig& task, const TrainOptions& options, Communicator& comm);

// SIGTERM/SIGINT set a stop request (train_task installs the handlers); the
// running task checkpoints at its next step and returns preempted. The request
// stays set, so a caller running several tasks stops too.
void install_stop_handlers();
void request_stop();
bool stop_requested();

}  // namespace m4
