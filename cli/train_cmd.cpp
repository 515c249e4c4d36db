// `m4forge train` and `m4forge eval`: one task config, one process or an
// MPI job (mpirun -np N m4forge train ...).
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <optional>

#include "cli/cli_common.h"
#include "cluster/communicator.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "export/bundle_model.h"
#include "firmware/firmware.h"
#include "report/run_report.h"
#include "task/task_config.h"
#include "train/eval_request.h"
#include "train/trainer.h"

namespace m4::cli {
namespace {
namespace fs = std::filesystem;

int train_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge train", "Train a task's adapter on a firmware: `m4forge train CONFIG [key=value ...]`,\n"
                                      "or `mpirun -np N m4forge train CONFIG ...` (train.batch_size is the global batch).");
  add_config_args(o);
  o.add_options()("firmware", "firmware directory (default: $M4FORGE_FIRMWARE)", cxxopts::value<std::string>())(
      "run-dir", "run directory (default: runs/<task>)", cxxopts::value<std::string>())(
      "resume", "continue from the newest complete checkpoint in the run directory")(
      "collective-timeout", "seconds a gradient all-reduce may take before the job is aborted",
      cxxopts::value<int64_t>()->default_value("300"))(
      "backend", "gradient all-reduce: auto (MPI under mpirun/srun, else one process), single, mpi, nccl",
      cxxopts::value<std::string>()->default_value("auto"));
  add_train_loop_options(o);
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  CommunicatorOptions co;
  co.collective_timeout = std::chrono::seconds(r["collective-timeout"].as<int64_t>());
  co.backend = r["backend"].as<std::string>();
  auto comm = make_communicator(co);
  if (comm->rank() != 0 && !r.count("log-level")) spdlog::set_level(spdlog::level::warn);  // rank 0 logs
  apply_common_options(r);
  try {
    auto [cfg, overrides] = config_args(r);
    const fs::path root = repo_root_of(cfg);
    TaskConfig task = load_task_config(cfg, overrides, root);
    Firmware fw = Firmware::open(firmware_dir_option(r));
    TrainOptions to;
    to.run_dir = r.count("run-dir") ? fs::path(r["run-dir"].as<std::string>()) : fs::path("runs") / task.task;
    to.repo_root = root;
    to.resume = r.count("resume") > 0;
    read_train_loop_options(r, &to);
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
    const std::string msg = one_line(e.what());
    // One write(2): std::cerr writes each piece apart, and mpirun's own abort
    // banner would land inside the line.
    const std::string line = "m4forge: error: rank " + std::to_string(comm->rank()) + ": " + msg + "\n";
    [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
    comm->abort(me ? static_cast<int>(me->code()) : 1, "rank failed");
  }
  return 1;  // not reached: abort() ends the process
}

int eval_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge eval", "A task's metric on its test split with an adapter, zero-shot (no adapter) as the\n"
                                     "baseline and, with --from-scratch, a small task-specific model trained from random\n"
                                     "init on the training split: `m4forge eval --run RUN_DIR` (the run's record alone:\n"
                                     "config, template, labels, adapter), `m4forge eval --bundle B.m4adapter --pubkey K.pub [--data TEST.h5]`\n"
                                     "(the bundle alone, as a device runs it) or `m4forge eval CONFIG --adapter A [key=value ...]`.");
  add_config_args(o);
  o.add_options()("firmware", "firmware directory (default: $M4FORGE_FIRMWARE)", cxxopts::value<std::string>())(
      "run", "a finished training run directory (instead of CONFIG and --adapter)", cxxopts::value<std::string>())(
      "bundle", "a signed .m4adapter, evaluated as a device runs it (verified, bound, canary re-run; needs --pubkey)",
      cxxopts::value<std::string>())(
      "pubkey", "minisign public key for --bundle", cxxopts::value<std::string>())(
      "data", "with --bundle: the test split to evaluate on (default: the bundle config's data.test)",
      cxxopts::value<std::string>())(
      "adapter", "adapter .safetensors (a run's adapter.safetensors)", cxxopts::value<std::string>())(
      "limit", "evaluate the first N samples (0: all)", cxxopts::value<int64_t>()->default_value("0"))(
      "no-baseline", "skip the zero-shot baseline")(
      "from-scratch", "also train and evaluate a small task-specific model from scratch (train.seed, train.batch_size)")(
      "scratch-steps", "steps for --from-scratch (0: the task's train.steps)",
      cxxopts::value<int64_t>()->default_value("0"))(
      "json", "print JSON");
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  // From a run: its record alone (the template and labels it trained with);
  // else the config and template as they are now.
  EvalRequest req;
  std::optional<MemoryFile> bundle_adapter;  // a bundle's adapter bytes as a file, for the evaluation
  std::optional<Firmware> fw;
  if (r.count("bundle")) {
    M4_CHECK(!r.count("args") && !r.count("adapter") && !r.count("run"), ErrorCode::kInvalidArgument,
             "--bundle evaluates a bundle as it is: give no CONFIG, overrides, --adapter or --run with it");
    M4_CHECK(r.count("pubkey"), ErrorCode::kInvalidArgument, "--bundle needs --pubkey (the key it was signed with)");
    const std::filesystem::path bundle = r["bundle"].as<std::string>();
    fw.emplace(Firmware::open(firmware_dir_option(r)));
    // As a device loads it: signature, digests, binding to this firmware, canary.
    const BundleModel bm = open_bundle_model(*fw, bundle, minisign::read_public_key(r["pubkey"].as<std::string>()));
    req = eval_request_from_bundle(bm.bundle.manifest, bundle.string(), r.count("data") ? r["data"].as<std::string>() : "");
    bundle_adapter.emplace(bm.bundle.adapter);
    req.adapter_file = bundle_adapter->path();
  } else if (r.count("run")) {
    M4_CHECK(!r.count("args") && !r.count("adapter"), ErrorCode::kInvalidArgument,
             "--run evaluates a run as it trained: give no CONFIG, overrides or --adapter with it");
    req = eval_request_from_run(r["run"].as<std::string>());
  } else {
    auto [cfg, overrides] = config_args(r);
    req = eval_request_from_config(cfg, overrides);
    if (r.count("adapter")) req.adapter_file = r["adapter"].as<std::string>();
  }
  req.zero_shot = !r.count("no-baseline");
  req.from_scratch = r.count("from-scratch") > 0;
  req.limit = r["limit"].as<int64_t>();
  req.scratch_steps = r["scratch-steps"].as<int64_t>();
  M4_CHECK(!r.count("data") || r.count("bundle"), ErrorCode::kInvalidArgument,
           "--data goes with --bundle (a run or a config names its own test split)");
  // The firmware only for the models that run on it.
  if (!fw && eval_needs_firmware(req)) fw.emplace(Firmware::open(firmware_dir_option(r)));
  const nlohmann::json out = evaluate_request(req, fw ? &*fw : nullptr);
  // A run keeps every evaluation made of it; its report shows them.
  std::string report;
  if (r.count("run")) {
    const std::filesystem::path run_dir = r["run"].as<std::string>();
    try {  // a read-only run directory still gets its figures printed
      append_evaluation(run_dir, out);
      report = write_run_report(run_dir).html.string();
    } catch (const std::exception& e) {
      spdlog::warn("evaluation not recorded in {}: {}", run_dir.string(), e.what());
    }
  }
  const TaskConfig& task = req.task;
  if (r.count("json")) {
    std::cout << out.dump(1) << "\n";
  } else {
    for (const char* k : {"adapter", "zero_shot", "from_scratch"}) {
      if (!out.contains(k)) continue;
      std::cout << task.task << " " << k << ": " << out[k]["metric"].get<std::string>() << " " << out[k]["value"].get<double>()
                << " on " << out[k]["samples"].get<int64_t>() << " samples";
      if (out[k].contains("steps")) {
        std::cout << " (" << out[k]["steps"].get<int64_t>() << " steps)\n  from-scratch model: "
                  << out[k]["model"].get<std::string>() << " (" << out[k]["parameters"].get<int64_t>()
                  << " parameters, all trained)";
      }
      std::cout << "\n";
    }
    if (!report.empty()) std::cout << "report: " << report << "\n";
  }
  return 0;
}

}  // namespace

int run_train(int argc, char** argv) { return train_cmd(argc, argv); }
int run_eval(int argc, char** argv) { return eval_cmd(argc, argv); }

}  // namespace m4::cli
