// Shared CLI plumbing.
#include "cli/cli_common.h"

#include <spdlog/spdlog.h>

#include <iostream>

#include "firmware/cpu_runtime.h"
#include "firmware/error.h"

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
  spdlog::info("cpu: BLAS {} ({}), {} torch threads{}", rt.blas, rt.blas_kind, rt.torch_threads,
               rt.blas_threads >= 0 ? ", " + std::to_string(rt.blas_threads) + " OpenBLAS threads" : "");
  if (rt.blas_kind == "reference") {
    spdlog::warn("cpu: the reference BLAS is ~40x slower than OpenBLAS (hint: apt-get install libopenblas0-pthread)");
  }
}

std::string required(const cxxopts::ParseResult& r, const std::string& name) {
  M4_CHECK(r.count(name) != 0, ErrorCode::kInvalidArgument, "missing required option --", name, " (see --help)");
  return r[name].as<std::string>();
}

std::filesystem::path repo_root_of(const std::filesystem::path& config) {
  namespace fs = std::filesystem;
  for (fs::path p = fs::absolute(config).parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path()) {
    if (fs::is_directory(p / "prompts" / "templates")) return p;
  }
  return fs::current_path();
}

}  // namespace m4::cli
