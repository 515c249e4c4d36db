// The training loop: sharded data, one flat gradient all-reduce per step,
// AdamW with warmup + schedule, clipping, accumulation, atomic checkpoints,
// exact resume, preemption by signal, metrics JSONL and progress lines.
#include "train/trainer.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <thread>

#include "core/autocast.h"
#include "core/build_info.h"
#include "core/cpu_runtime.h"
#include "core/device.h"
#include "core/error.h"
#include "data/dataset_reader.h"
#include "data/loader.h"
#include "prompts/prompt_template.h"
#include "report/run_report.h"
#include "task/evaluate.h"
#include "task/run_record.h"
#include "task/task_model.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/run_dir.h"
#include "train/schedule.h"

namespace m4 {
namespace {

// The run's report.html: failing to write it is logged, never fails the run.
void write_report(const std::filesystem::path& run_dir) {
  try {
    spdlog::info("report: {}", write_run_report(run_dir).html.string());
  } catch (const std::exception& e) {
    spdlog::warn("report not written: {}", e.what());
  }
}
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};

extern "C" void on_signal(int) { g_stop.store(true); }

std::shared_ptr<data::DatasetReader> open_split(const TaskConfig& task, const std::string& file, const char* split) {
  M4_CHECK(!file.empty(), ErrorCode::kInvalidArgument, task.source.string(), ": data.", split, " is not set");
  M4_CHECK(fs::exists(file), ErrorCode::kIo, file, ": no such dataset (", split, " split of task ", task.task, ")",
           task.data.prepare.empty() ? (task.data.user_supplied ? std::string(" (hint: this task needs user-supplied data: ") + task.data.note + ")" : std::string())
                                     : " (hint: build it with `" + task.data.prepare + "`)");
  return data::DatasetReader::open(file);
}

// Gradients of all trainable tensors, flattened into one bucket with one extra
// slot (the stop flag), all-reduced, averaged, and written back.
bool reduce_gradients(const std::vector<at::Tensor>& params, Communicator& comm, bool stop) {
  if (comm.world() == 1) return stop;  // nothing to sum: skip the per-step copy in and out of the bucket
  std::vector<at::Tensor> flat;
  for (const auto& p : params) {
    flat.push_back(p.grad().defined() ? p.grad().reshape({-1}) : at::zeros({p.numel()}, p.options()));
  }
  flat.push_back(at::full({1}, stop ? 1.0f : 0.0f, params.front().options()));
  at::Tensor bucket = at::cat(flat).contiguous();
  comm.allreduce_sum(bucket);
  const float any_stop = bucket[bucket.numel() - 1].item<float>();
  bucket.div_(static_cast<double>(comm.world()));
  int64_t off = 0;
  at::NoGradGuard ng;
  for (auto& p : params) {
    const int64_t n = p.numel();
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    p.mutable_grad().copy_(bucket.narrow(0, off, n).view(p.sizes()));
    off += n;
  }
  return any_stop > 0;
}

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  double total = 0;
  for (const auto& p : params) {
    if (p.grad().defined()) total += p.grad().to(at::kDouble).pow(2).sum().item<double>();
  }
  total = std::sqrt(total);
  if (max_norm > 0 && total > max_norm) {
    const double scale = max_norm / (total + 1e-6);  // torch.nn.utils.clip_grad_norm_
    at::NoGradGuard ng;
    for (const auto& p : params) {
      if (p.grad().defined()) p.grad().mul_(scale);
    }
  }
  return total;
}

// The record of this run as it starts: everything export, eval and --resume
// later read instead of the repository, the config file or the datasets.
RunRecord start_record(const Firmware& fw, const TaskConfig& task, const PromptTemplate* prompt, TaskModel& model,
                       const std::vector<std::string>& label_names, const Communicator& comm, const Adapter& adapter) {
  RunRecord r;
  r.task = task.task;
  r.path = task.path;
  r.config = task.resolved;
  if (!task.source.empty()) r.config_path = fs::absolute(task.source).lexically_normal().string();
  if (prompt) {
    r.prompt_id = prompt->id;
    r.prompt_template = prompt->to_json();
  }
  r.labels = model.labels();
  r.label_names = label_names;
  if (prompt && prompt->answer != AnswerRule::kNone)
    r.decoding = {{"strategy", "greedy"}, {"max_new_tokens", model.max_new_tokens()}};
  r.firmware_id = fw.id();
  r.firmware_name = fw.manifest().name;
  r.firmware_version = fw.manifest().version;
  r.datasets = dataset_digests(task);
  r.world = comm.world();
  r.backend = comm.backend();
  r.seed = task.train.seed;
  r.precision = task.train.precision;
  r.device = model.device().str();
  r.m4forge_version = m4forge_version();
  r.m4forge_revision = m4forge_revision();
  r.started = static_cast<int64_t>(std::time(nullptr));
  r.trainable_parameters = adapter.trainable_count();
  r.frozen_parameters = adapter.total_count() - adapter.trainable_count();
  return r;
}

// --resume continues the same run or refuses: the record it started with must
// match this one in everything that shapes the trajectory.
void check_same_run(const fs::path& run_dir, RunRecord* now) {
  if (!fs::exists(run_record_path(run_dir))) {
    M4_CHECK(!latest_checkpoint(run_dir), ErrorCode::kMismatch, run_dir.string(),
             " holds checkpoints but no run record (", run_record_path(run_dir).string(),
             "), so --resume cannot tell it is the same run (hint: start a new run directory)");
    return;
  }
  const RunRecord before = read_run_record(run_dir);
  const std::string diff = resume_difference(before, *now);
  M4_CHECK(diff.empty(), ErrorCode::kMismatch, run_dir.string(), ": --resume would not continue the same run; it differs in ",
           diff, " (hint: give a new --run-dir for a new run)");
  now->started = before.started;
}

}  // namespace

void request_stop() { g_stop.store(true); }
bool stop_requested() { return g_stop.load(); }
void install_stop_handlers() {
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
}

TrainSummary train_task(const Firmware& fw, const TaskConfig& task, const TrainOptions& opt, Communicator& comm) {
  const int rank = comm.rank(), world = comm.world();
  const bool lead = rank == 0;
  const int64_t accum = task.train.grad_accum;
  M4_CHECK(task.train.batch_size % (world * accum) == 0, ErrorCode::kInvalidArgument, task.source.string(),
           ": train.batch_size ", task.train.batch_size, " must be a multiple of world (", world, ") x grad_accum (", accum,
           ")");
  const int64_t per_rank = task.train.batch_size / (world * accum);
  // The device (train.device), chosen before anything is read or written.
  const c10::Device device = choose_device(task.train.device, task.source.string() + ": train.device");
  M4_CHECK(comm.backend() != "nccl" || device.is_cuda(), ErrorCode::kInvalidArgument, task.source.string(),
           ": train.device is ", task.train.device, ", but --backend nccl reduces CUDA tensors (use train.device=cuda or "
           "auto, or --backend mpi)");
  install_stop_handlers();
  // One process holds the run directory for the whole run (rank 0 writes it):
  // a second `train` into it fails here, before it reads or writes anything.
  std::optional<RunDirLock> lock;
  if (lead) {
    lock.emplace(opt.run_dir);
    if (!opt.resume) check_fresh_run_dir(opt.run_dir);
    remove_stale_temporaries(opt.run_dir);
  }

  auto train_data = open_split(task, task.data.train, "train");
  std::shared_ptr<data::DatasetReader> test_data;
  if (!task.data.test.empty() && fs::exists(task.data.test)) test_data = data::DatasetReader::open(task.data.test);
  std::optional<PromptTemplate> prompt;
  if (!task.prompt.empty()) prompt = load_prompt_template(opt.repo_root, task.prompt);
  const std::string init_from = task.peft.value("init_from", std::string());
  const std::vector<std::string> label_names = train_data->attributes().label_names;
  TaskModel model(fw, task, prompt.value_or(PromptTemplate{}), label_names, init_from, opt.modules);
  check_dataset_fields(model, *train_data, /*training=*/true);
  if (test_data) check_dataset_fields(model, *test_data, /*training=*/false);
  // The frozen modules and the adapter move to the device once, before the
  // optimizer takes the adapter's tensors; checkpoints and the adapter file
  // are written from CPU copies (write_safetensors).
  model.to(device);
  // The thread policy of the kernels the steps run in (core/cpu_runtime.h);
  // evaluations run in f32 and switch to its policy while they run.
  const bool bf16 = task.train.precision == "bf16";
  const MathKernels step_kernels = bf16 ? MathKernels::kBf16 : MathKernels::kF32;
  const CpuRuntime rt = configure_cpu_runtime_for(step_kernels);
  if (bf16) {
    if (lead) spdlog::info("cpu: {} for bf16 steps", describe(rt));
    const int64_t bytes = model.keep_bf16_weights();
    if (lead) spdlog::info("bf16: frozen Linear weights copied to bf16 once ({:.1f} MB)", static_cast<double>(bytes) / 1e6);
  }
  Adapter& adapter = model.adapter();
  const std::vector<at::Tensor> params = adapter.trainable_tensors();
  AdamWOptions ao;
  ao.lr = task.optim.lr;
  ao.beta1 = task.optim.beta1;
  ao.beta2 = task.optim.beta2;
  ao.eps = task.optim.eps;
  ao.weight_decay = task.optim.weight_decay;
  AdamW optimizer(params, ao);

  RunRecord record = start_record(fw, task, prompt ? &*prompt : nullptr, model, label_names, comm, adapter);
  if (lead && opt.resume) check_same_run(opt.run_dir, &record);
  comm.barrier();  // every rank past the checks before anyone trains

  CheckpointState state;
  if (opt.resume) {
    if (auto ckpt = latest_checkpoint(opt.run_dir)) {
      state = read_checkpoint(*ckpt, adapter, optimizer);
      if (lead) spdlog::info("resumed from {} (step {})", ckpt->string(), state.step);
    } else if (lead) {
      spdlog::info("--resume: no checkpoint in {}, starting fresh", opt.run_dir.string());
    }
  }
  data::LoaderOptions lo;
  lo.batch_size = per_rank;
  lo.rank = rank;
  lo.world = world;
  lo.seed = static_cast<uint64_t>(task.train.seed);
  lo.prefetch = 2;
  lo.pin_memory = device.is_cuda();  // pinned on the prefetch thread, copied asynchronously in TaskModel::loss
  data::Loader loader(train_data, lo, state.loader);

  if (lead) {
    record.steps = state.step;
    write_run_record(opt.run_dir, record);
    // Rows logged after the checkpoint are logged again by this run.
    truncate_metrics(opt.run_dir / runkeys::kMetricsFile, state.step);
    spdlog::info("task {} on {}: {} ranks ({}) on {}, global batch {} = {} x {} x {}; trainable params: {} || all params: {} "
                 "|| trainable%: {:.4f}",
                 task.task, fw.label(), world, comm.backend(), describe_device(device), task.train.batch_size, per_rank, world, accum,
                 adapter.trainable_count(), adapter.total_count(),
                 100.0 * static_cast<double>(adapter.trainable_count()) / static_cast<double>(adapter.total_count()));
  }
  adapter.check_frozen();
  std::ofstream metrics;
  if (lead) metrics.open(opt.run_dir / runkeys::kMetricsFile, std::ios::app);
  const bool tty = lead && ::isatty(STDERR_FILENO);
  const auto t0 = Clock::now();
  const int64_t first_step = state.step;
  TrainSummary summary;

  auto save = [&] {
    state.loader = loader.state();
    state.rng_state_hex = cpu_rng_state();
    if (lead) {
      write_checkpoint(opt.run_dir, adapter, optimizer, state);
      record.steps = state.step;
      record.last_loss = state.last_loss;
      write_run_record(opt.run_dir, record);
    }
    comm.barrier();
  };
  auto eval_now = [&](int64_t limit) -> std::optional<EvalResult> {
    if (!test_data) return std::nullopt;
    if (bf16) configure_cpu_runtime_for(MathKernels::kF32);
    std::optional<EvalResult> r = evaluate(model, test_data, limit);
    if (bf16) configure_cpu_runtime_for(step_kernels);
    return r;
  };

  // Fault injection for the multi-process tests: M4FORGE_FAULT=kill:RANK:STEP
  // (SIGKILL, as a node loss) or hang:RANK:STEP (as a stuck rank).
  std::string fault_kind;
  int64_t fault_rank = -1, fault_step = -1;
  if (const char* f = std::getenv("M4FORGE_FAULT")) {
    char kind[8] = {0};
    long long fr = -1, fs_ = -1;
    if (std::sscanf(f, "%7[a-z]:%lld:%lld", kind, &fr, &fs_) == 3) fault_kind = kind, fault_rank = fr, fault_step = fs_;
  }

  bool stopped = false;
  while (state.step < task.train.steps) {
    const auto step_t0 = Clock::now();
    if (rank == fault_rank && state.step == fault_step) {
      spdlog::warn("rank {}: M4FORGE_FAULT {} at step {}", rank, fault_kind, state.step);
      if (fault_kind == "kill") std::raise(SIGKILL);
      if (fault_kind == "hang") std::this_thread::sleep_for(std::chrono::hours(24));
    }
    // Dropout draws from a generator seeded by (seed, rank, step): every rank's
    // stream is reproducible, so a resumed run continues exactly, at any world.
    at::manual_seed(static_cast<uint64_t>(task.train.seed) * 1000003ull + static_cast<uint64_t>(rank) * 7919ull +
                    static_cast<uint64_t>(state.step));
    double loss_sum = 0;
    for (int64_t micro = 0; micro < accum; ++micro) {
      std::optional<data::Batch> b = loader.next();
      if (!b) b = loader.next();  // epoch boundary
      M4_CHECK(b.has_value(), ErrorCode::kMismatch, task.data.train, ": too few samples for one batch of ", per_rank,
               " per rank");
      at::Tensor loss;
      {
        // train.precision bf16: the forward and loss under autocast (trainable
        // tensors, gradients and AdamW stay f32). Evaluation runs in f32.
        Bf16Autocast mixed(bf16);
        loss = model.loss(*b).to(at::kFloat) / static_cast<double>(accum);
      }
      loss.backward();
      loss_sum += loss.item<double>();
    }
    const bool stop_here = g_stop.load() || (opt.stop_after > 0 && state.step + 1 - first_step >= opt.stop_after);
    const bool any_stop = reduce_gradients(params, comm, stop_here);
    const double gnorm = clip_grad_norm(params, task.optim.clip_grad_norm);
    const double lr = scheduled_lr(task.optim.schedule, task.optim.lr, state.step, task.optim.warmup_steps, task.train.steps);
    optimizer.step(lr);
    optimizer.zero_grad();
    adapter.check_frozen();
    ++state.step;
    state.last_loss = loss_sum;
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const double step_secs = std::chrono::duration<double>(Clock::now() - step_t0).count();
    const double sps = static_cast<double>((state.step - first_step) * task.train.batch_size) / std::max(secs, 1e-9);
    if (lead) {
      metrics << nlohmann::json({{"step", state.step}, {"loss", loss_sum}, {"lr", lr}, {"grad_norm", gnorm}, {"samples_per_s", sps},
                              {"step_time_s", step_secs}}).dump()
              << "\n";
      metrics.flush();
      const double eta = static_cast<double>(task.train.steps - state.step) * secs / static_cast<double>(state.step - first_step);
      if (tty) {
        std::fprintf(stderr, "\rstep %lld/%lld  loss %.4f  %.1f samples/s  ETA %.0f s   ", (long long)state.step,
                     (long long)task.train.steps, loss_sum, sps, eta);
        std::fflush(stderr);
      } else if (state.step % opt.log_every == 0 || state.step == task.train.steps) {
        spdlog::info("step {}/{} loss {:.4f} lr {:.2e} grad_norm {:.3f} {:.1f} samples/s ETA {:.0f} s", state.step,
                     task.train.steps, loss_sum, lr, gnorm, sps, eta);
      }
    }
    if (any_stop) {
      save();
      if (lead) spdlog::info("stop requested: checkpoint at step {} written; resume with --resume", state.step);
      stopped = true;
      break;
    }
    const bool eval_step = task.train.eval_every > 0 && state.step % task.train.eval_every == 0 && state.step < task.train.steps;
    if (eval_step) {
      if (auto r = eval_now(opt.eval_limit); r && lead) {
        if (tty) std::fprintf(stderr, "\n");
        spdlog::info("step {}: {} {:.4f} on {} test samples", state.step, r->metric, r->value, r->samples);
        metrics << nlohmann::json({{"step", state.step}, {"eval_" + r->metric, r->value}, {"eval_samples", r->samples}}).dump() << "\n";
      }
    }
    if ((opt.checkpoint_every > 0 && state.step % opt.checkpoint_every == 0) || (opt.checkpoint_every == 0 && eval_step)) save();
  }
  if (tty) std::fprintf(stderr, "\n");
  summary.steps = state.step;
  summary.last_loss = state.last_loss;
  summary.preempted = stopped;
  if (stopped) {
    if (lead) {
      metrics.close();
      write_report(opt.run_dir);
    }
    return summary;
  }

  save();
  if (auto r = eval_now(opt.final_eval_limit)) {
    summary.metrics[r->metric] = r->value;
    if (lead) {
      spdlog::info("final: {} {:.4f} on {} test samples", r->metric, r->value, r->samples);
      metrics << nlohmann::json({{"step", state.step}, {"eval_" + r->metric, r->value}, {"eval_samples", r->samples}}).dump() << "\n";
    }
  }
  if (lead) {
    adapter.save(opt.run_dir / runkeys::kAdapterFile);
    record.finished = true;
    record.finished_at = static_cast<int64_t>(std::time(nullptr));
    record.steps = state.step;
    record.last_loss = state.last_loss;
    record.metrics = summary.metrics;
    write_run_record(opt.run_dir, record);  // last: a finished record means the adapter is there
    metrics.close();
    write_report(opt.run_dir);
    spdlog::info("wrote {}", (opt.run_dir / "adapter.safetensors").string());
  }
  comm.barrier();
  return summary;
}

}  // namespace m4
