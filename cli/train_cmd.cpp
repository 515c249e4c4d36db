// `m4forge train` and `m4forge eval`: one task config, one process or an
// MPI job (mpirun -np N m4forge train ...).
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iostream>

#include "cli/cli_common.h"
#include "cluster/communicator.h"
#include "data/dataset_reader.h"
#include "firmware/error.h"
#include "firmware/firmware.h"
#include "prompts/prompt_template.h"
#include "prompts/task_config.h"
#include "train/evaluate.h"
#include "train/task_model.h"
#include "train/trainer.h"

namespace m4::cli {
namespace {
namespace fs = std::filesystem;

fs::path firmware_dir(const cxxopts::ParseResult& r) {
  if (r.count("firmware")) return r["firmware"].as<std::string>();
  if (const char* env = std::getenv("M4FORGE_FIRMWARE")) return env;
  M4_FAIL(ErrorCode::kInvalidArgument, "no firmware: pass --firmware DIR or set M4FORGE_FIRMWARE");
}

// Positional arguments after the config are dotted overrides (key=value).
std::pair<fs::path, std::vector<std::string>> config_and_overrides(const cxxopts::ParseResult& r) {
  M4_CHECK(r.count("args"), ErrorCode::kInvalidArgument, "missing the task config (configs/tasks/<task>.yaml)");
  auto args = r["args"].as<std::vector<std::string>>();
  fs::path cfg = args.front();
  args.erase(args.begin());
  return {cfg, args};
}

int train_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge train", "Train a task's adapter on a firmware: `m4forge train CONFIG [key=value ...]`,\n"
                                      "or `mpirun -np N m4forge train CONFIG ...` (train.batch_size is the global batch).");
  o.add_options()("args", "CONFIG then dotted overrides", cxxopts::value<std::vector<std::string>>())(
      "firmware", "firmware directory (default: $M4FORGE_FIRMWARE)", cxxopts::value<std::string>())(
      "run-dir", "run directory (default: runs/<task>)", cxxopts::value<std::string>())(
      "resume", "continue from the newest complete checkpoint in the run directory")(
      "checkpoint-every", "steps between checkpoints (default: at each evaluation)", cxxopts::value<int64_t>()->default_value("0"))(
      "log-every", "steps between log lines when not on a terminal", cxxopts::value<int64_t>()->default_value("10"))(
      "eval-limit", "test samples for periodic evaluation (0: all)", cxxopts::value<int64_t>()->default_value("256"))(
      "collective-timeout", "seconds a gradient all-reduce may take before the job is aborted",
      cxxopts::value<int64_t>()->default_value("300"))(
      "stop-after", "stop as if preempted after N steps (checkpoint, exit 0); for tests",
      cxxopts::value<int64_t>()->default_value("0"));
  o.parse_positional({"args"});
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  CommunicatorOptions co;
  co.collective_timeout = std::chrono::seconds(r["collective-timeout"].as<int64_t>());
  auto comm = make_communicator(co);
  if (comm->rank() != 0 && !r.count("log-level")) spdlog::set_level(spdlog::level::warn);  // rank 0 logs
  apply_common_options(r);
  try {
    auto [cfg, overrides] = config_and_overrides(r);
    const fs::path root = repo_root_of(cfg);
    TaskConfig task = load_task_config(cfg, overrides, root);
    Firmware fw = Firmware::open(firmware_dir(r));
    TrainOptions to;
    to.run_dir = r.count("run-dir") ? fs::path(r["run-dir"].as<std::string>()) : fs::path("runs") / task.task;
    to.repo_root = root;
    to.resume = r.count("resume") > 0;
    to.checkpoint_every = r["checkpoint-every"].as<int64_t>();
    to.log_every = std::max<int64_t>(1, r["log-every"].as<int64_t>());
    to.eval_limit = r["eval-limit"].as<int64_t>();
    to.stop_after = r["stop-after"].as<int64_t>();
    TrainSummary s = train_task(fw, task, to, *comm);
    if (comm->rank() == 0) {
      std::cout << (s.preempted ? "stopped" : "trained") << " " << task.task << ": " << s.steps << " steps, last loss "
                << s.last_loss;
      for (const auto& [m, v] : s.metrics) std::cout << ", " << m << " " << v;
      std::cout << (s.preempted ? " (checkpointed; continue with --resume)" : "") << "\n";
    }
    return 0;
  } catch (const std::exception& e) {
    if (comm->world() == 1) throw;
    // One rank failing must end the job, not leave the others in a collective.
    const auto* me = dynamic_cast<const Error*>(&e);
    std::string msg = e.what();
    for (char& c : msg) c = (c == '\n') ? ' ' : c;
    std::cerr << "m4forge: error: rank " << comm->rank() << ": " << msg << "\n";
    comm->abort(me ? static_cast<int>(me->code()) : 1, "rank failed");
  }
  return 1;  // not reached: abort() ends the process
}

int eval_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge eval", "A task's metric on its test split with an adapter, and zero-shot (no adapter)\n"
                                     "as the baseline: `m4forge eval CONFIG --adapter A [key=value ...]`.");
  o.add_options()("args", "CONFIG then dotted overrides", cxxopts::value<std::vector<std::string>>())(
      "firmware", "firmware directory (default: $M4FORGE_FIRMWARE)", cxxopts::value<std::string>())(
      "adapter", "adapter .safetensors (a run's adapter.safetensors)", cxxopts::value<std::string>())(
      "limit", "evaluate the first N samples (0: all)", cxxopts::value<int64_t>()->default_value("0"))(
      "no-baseline", "skip the zero-shot baseline")(
      "json", "print JSON");
  o.parse_positional({"args"});
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  auto [cfg, overrides] = config_and_overrides(r);
  const fs::path root = repo_root_of(cfg);
  TaskConfig task = load_task_config(cfg, overrides, root);
  Firmware fw = Firmware::open(firmware_dir(r));
  M4_CHECK(!task.data.test.empty() && fs::exists(task.data.test), ErrorCode::kIo, task.data.test,
           ": no test split for task ", task.task, task.data.prepare.empty() ? "" : " (hint: `" + task.data.prepare + "`)");
  auto test = data::DatasetReader::open(task.data.test);
  const PromptTemplate prompt = load_prompt_template(root, task.prompt);
  const int64_t limit = r["limit"].as<int64_t>();
  nlohmann::json out = {{"task", task.task}, {"firmware", fw.label()}, {"samples_limit", limit}};
  if (r.count("adapter")) {
    TaskModel m(fw, task, prompt, test->attributes().label_names, r["adapter"].as<std::string>());
    EvalResult e = evaluate(m, test, limit);
    out["adapter"] = {{"metric", e.metric}, {"value", e.value}, {"samples", e.samples}};
  }
  if (!r.count("no-baseline")) {
    // Zero-shot: the same path and prompt with untrained adapter parts (LoRA's B
    // is zero, so LoRA-only tasks run the firmware unchanged).
    TaskModel m(fw, task, prompt, test->attributes().label_names);
    EvalResult e = evaluate(m, test, limit);
    out["zero_shot"] = {{"metric", e.metric}, {"value", e.value}, {"samples", e.samples}};
  }
  if (r.count("json")) {
    std::cout << out.dump(1) << "\n";
  } else {
    for (const char* k : {"adapter", "zero_shot"}) {
      if (!out.contains(k)) continue;
      std::cout << task.task << " " << k << ": " << out[k]["metric"].get<std::string>() << " " << out[k]["value"].get<double>()
                << " on " << out[k]["samples"].get<int64_t>() << " samples\n";
    }
  }
  return 0;
}

}  // namespace

int run_train(int argc, char** argv) { return train_cmd(argc, argv); }
int run_eval(int argc, char** argv) { return eval_cmd(argc, argv); }

}  // namespace m4::cli
