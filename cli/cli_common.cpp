// Shared CLI plumbing.
#include "cli/cli_common.h"

#include <spdlog/spdlog.h>

#include <iostream>

#include "core/cpu_runtime.h"
#include "core/error.h"
#include "data/dataset_format.h"
#include "data/input_file.h"
#include "firmware/module_forward.h"
#include "task/task_config.h"
#include "train/trainer.h"

namespace m4::cli {

void add_common_options(cxxopts::Options& options) {
  options.add_options("common")("h,help", "show this help")(
      "threads", "CPU threads for math (0: all cores)", cxxopts::value<int>()->default_value("0"))(
      "log-level", "trace, debug, info, warn, error, off", cxxopts::value<std::string>()->default_value("info"));
}

bool parse(cxxopts::Options& options, int argc, char** argv, cxxopts::ParseResult* out) {
  try {
    *out = options.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    M4_FAIL(ErrorCode::kInvalidArgument, e.what(), " (see --help)");
  }
  if (out->count("help")) {
    std::cout << options.help() << std::endl;
    return false;
  }
  if (!out->unmatched().empty()) {
    M4_FAIL(ErrorCode::kInvalidArgument, "unexpected argument '", out->unmatched()[0], "' (see --help)");
  }
  return true;
}

void apply_common_options(const cxxopts::ParseResult& r) {
  const std::string level = r["log-level"].as<std::string>();
  auto lv = spdlog::level::from_str(level);
  M4_CHECK(lv != spdlog::level::off || level == "off", ErrorCode::kInvalidArgument, "unknown --log-level '",
           level, "'");
  spdlog::set_level(lv);
  const int threads = r["threads"].as<int>();
  M4_CHECK(threads >= 0, ErrorCode::kInvalidArgument, "--threads must be >= 0, found ", threads);
  CpuRuntime rt = configure_cpu_runtime(threads);
  spdlog::info("cpu: {}", describe(rt));
  if (const std::string note = blas_core_note(); !note.empty()) spdlog::info("cpu: {}", note);
  if (rt.blas_kind == "reference") {
    spdlog::warn("cpu: the reference BLAS is ~40x slower than OpenBLAS (hint: apt-get install libopenblas0-pthread)");
  }
}

std::string required(const cxxopts::ParseResult& r, const std::string& name) {
  M4_CHECK(r.count(name) != 0, ErrorCode::kInvalidArgument, "missing required option --", name, " (see --help)");
  return r[name].as<std::string>();
}

std::filesystem::path repo_root_of(const std::filesystem::path& config) { return find_repo_root(config); }

void add_config_args(cxxopts::Options& o) {
  o.add_options()("args", "CONFIG then dotted overrides key=value", cxxopts::value<std::vector<std::string>>());
  o.parse_positional({"args"});
}

ConfigArgs config_args(const cxxopts::ParseResult& r) {
  M4_CHECK(r.count("args"), ErrorCode::kInvalidArgument, "missing the task config (configs/tasks/<task>.yaml)");
  auto args = r["args"].as<std::vector<std::string>>();
  ConfigArgs out;
  out.config = args.front();
  M4_CHECK(out.config.string().find('=') == std::string::npos || std::filesystem::exists(out.config),
           ErrorCode::kInvalidArgument, "the task config comes first, then key=value overrides; found '", args.front(), "'");
  out.overrides.assign(args.begin() + 1, args.end());
  return out;
}

std::vector<std::string> overrides_of(const cxxopts::ParseResult& r) {
  return r.count("args") ? r["args"].as<std::vector<std::string>>() : std::vector<std::string>{};
}

ModuleInputs module_inputs_of(const std::filesystem::path& file) {
  if (file.extension() == ".safetensors") return read_module_inputs(file);
  const data::Batch b = data::read_input_file(file);
  M4_CHECK(b.texts.empty(), ErrorCode::kInvalidArgument, file.string(),
           ": text is not a module input here (hint: `m4forge firmware tokenize` makes input_ids)");
  ModuleInputs in;
  in.where = file.string();
  for (const auto& [name, t] : b.tensors) in.tensors[name == data::ds::kImage ? "pixels" : name] = t;
  return in;
}

void rethrow_naming_input(const Error& e, const std::filesystem::path& input) {
  const std::string msg = e.what();
  if (e.code() != ErrorCode::kInvalidArgument || msg.find(input.string()) != std::string::npos) throw e;
  M4_FAIL(e.code(), input.string(), ": ", msg);
}

std::filesystem::path firmware_dir_option(const cxxopts::ParseResult& r) {
  if (r.count("firmware")) return r["firmware"].as<std::string>();
  if (const char* env = std::getenv("M4FORGE_FIRMWARE")) return env;
  M4_FAIL(ErrorCode::kInvalidArgument, "no firmware: pass --firmware DIR or set M4FORGE_FIRMWARE");
}

void add_train_loop_options(cxxopts::Options& o) {
  o.add_options()(
      "checkpoint-every", "steps between checkpoints (default: at each evaluation)", cxxopts::value<int64_t>()->default_value("0"))(
      "log-every", "steps between log lines when not on a terminal", cxxopts::value<int64_t>()->default_value("10"))(
      "eval-limit", "test samples for periodic evaluation (0: all)", cxxopts::value<int64_t>()->default_value("256"))(
      "final-eval-limit", "test samples for the final evaluation (0: all)", cxxopts::value<int64_t>()->default_value("0"))(
      "stop-after", "stop as if preempted after N steps (checkpoint, exit 0); for tests",
      cxxopts::value<int64_t>()->default_value("0"));
}

void read_train_loop_options(const cxxopts::ParseResult& r, TrainOptions* to) {
  to->checkpoint_every = r["checkpoint-every"].as<int64_t>();
  to->log_every = std::max<int64_t>(1, r["log-every"].as<int64_t>());
  to->eval_limit = r["eval-limit"].as<int64_t>();
  to->final_eval_limit = r["final-eval-limit"].as<int64_t>();
  to->stop_after = r["stop-after"].as<int64_t>();
}

}  // namespace m4::cli
