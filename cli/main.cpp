// m4forge: the command-line entry point. Errors are caught only here: one line
// on stderr and an exit code from the error's kind.
#include <c10/util/Exception.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "cli/cli_common.h"
#include "core/build_info.h"
#include "core/cpu_runtime.h"
#include "core/error.h"

namespace {

constexpr const char* kUsage =
    "usage: m4forge <command> [options]   (m4forge <command> --help for details)\n"
    "\n"
    "commands:\n"
    "  firmware init-demo   write the small deterministic demo firmware\n"
    "  firmware import-hf   import Hugging Face checkpoints as a firmware\n"
    "  firmware inspect     show a firmware's modules and firmware_id (--verify recomputes it)\n"
    "  firmware forward     run one module on named input tensors (safetensors in/out)\n"
    "  firmware tokenize    turn text into input_ids/attention_mask (safetensors)\n"
    "  firmware generate    generate text with the backbone (greedy or sampled)\n"
    "  path                 run an execution path (1 encoder->backbone, 2 encoders, 3 backbone)\n"
    "  peft plan|import-hf|export-hf   adapters: which module gets what; HF PEFT interop\n"
    "  data import|inspect  datasets as HDF5: convert raw forms, show counts/labels/provenance\n"
    "  train                train a task's adapter (one process, or under mpirun/srun)\n"
    "  train-many           train many tasks from a job file over one resident firmware (MPI: spread over ranks)\n"
    "  eval                 a task's metric: adapter, zero-shot, and (--from-scratch) a task-specific model\n"
    "  report               write a run's (or a train-many job's) report.html with its curves and evaluations\n"
    "  keygen               an Ed25519 signing key pair (minisign formats)\n"
    "  export               a signed .m4adapter bundle bound to one firmware\n"
    "  verify               check a bundle's signature, digests and (with --firmware) binding\n"
    "  compat               which bundles still fit a firmware (ok / retrain / incompatible / bad)\n"
    "  run                  verify a bundle, load it and predict on one input\n"
    "  serve                one firmware, many verified adapters, a local HTTP/JSON API\n";

}  // namespace

int main(int argc, char** argv) {
  m4::restart_if_blas_misdetected_cpu(argv);
  auto logger = spdlog::stderr_color_mt("m4forge");
  logger->set_pattern("[m4forge] %^%l%$: %v");
  spdlog::set_default_logger(logger);
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  try {
    if (cmd == "--version") {
      std::cout << "m4forge " << m4::m4forge_version() << " (" << m4::m4forge_revision() << ")\n";
      return 0;
    }
    if (cmd == "firmware") return m4::cli::run_firmware(argc - 1, argv + 1);
    if (cmd == "path") return m4::cli::run_path(argc - 1, argv + 1);
    if (cmd == "peft") return m4::cli::run_peft(argc - 1, argv + 1);
    if (cmd == "data") return m4::cli::run_data(argc - 1, argv + 1);
    if (cmd == "train") return m4::cli::run_train(argc - 1, argv + 1);
    if (cmd == "train-many") return m4::cli::run_train_many(argc - 1, argv + 1);
    if (cmd == "eval") return m4::cli::run_eval(argc - 1, argv + 1);
    if (cmd == "report") return m4::cli::run_report(argc - 1, argv + 1);
    if (cmd == "serve") return m4::cli::run_serve(argc - 1, argv + 1);
    if (cmd == "keygen" || cmd == "export" || cmd == "verify" || cmd == "compat" || cmd == "run")
      return m4::cli::run_bundle_verb(cmd, argc - 1, argv + 1);
    std::cerr << "m4forge: error: unknown command '" << cmd << "'\n" << kUsage;
    return 2;
  } catch (const m4::Error& e) {
    std::cerr << "m4forge: error: " << m4::one_line(e.what()) << "\n";
    return static_cast<int>(e.code());
  } catch (const std::filesystem::filesystem_error& e) {
    // Names the path(s) itself; an I/O failure, not a bug.
    std::cerr << "m4forge: error: " << m4::one_line(e.what()) << "\n";
    return static_cast<int>(m4::ErrorCode::kIo);
  } catch (const c10::Error& e) {
    std::cerr << "m4forge: error: " << m4::one_line(e.what_without_backtrace()) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "m4forge: error: " << m4::one_line(e.what()) << "\n";
    return 1;
  }
}
