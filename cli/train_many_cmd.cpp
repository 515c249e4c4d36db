// `m4forge train-many JOB.yaml`: many tasks over one resident firmware; under
// mpirun/srun the tasks are spread over the ranks (train/job.h).
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/cli_common.h"
#include "cluster/communicator.h"
#include "core/cpu_runtime.h"
#include "core/error.h"
#include "firmware/firmware.h"
#include "task/run_record.h"
#include "train/job.h"

namespace m4::cli {
namespace {
namespace fs = std::filesystem;

std::string metrics_text(const std::map<std::string, double>& m) {
  std::string out;
  for (const auto& [k, v] : m) out += ", " + k + " " + std::to_string(v);
  return out;
}

int train_many_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge train-many",
                     "Train every task of a job file in one process that holds one resident copy of the firmware:\n"
                     "`m4forge train-many JOB.yaml`, or `mpirun -np N m4forge train-many JOB.yaml` (task i on rank i mod N).\n"
                     "A failed task is reported and the others still train; rerun with --resume after a preemption.");
  o.add_options()("job", "the job file (docs/jobs.md)", cxxopts::value<std::string>())(
      "firmware", "firmware directory (default: $M4FORGE_FIRMWARE)", cxxopts::value<std::string>())(
      "run-root", "where each task's run directory goes (default: the job's run_root, else runs/<job>)",
      cxxopts::value<std::string>())(
      "resume", "skip finished tasks and continue interrupted ones from their newest checkpoint")(
      "list", "print which rank trains which task into which directory, and exit");
  add_train_loop_options(o);
  o.parse_positional({"job"});
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  auto comm = make_communicator();  // rank and world only: ranks never wait for each other
  if (comm->rank() != 0 && !r.count("log-level")) spdlog::set_level(spdlog::level::warn);
  apply_common_options(r);
  M4_CHECK(r.count("job"), ErrorCode::kInvalidArgument, "missing the job file (m4forge train-many JOB.yaml)");
  const fs::path job_file = r["job"].as<std::string>();
  const Job job = load_job(job_file);
  JobOptions jo;
  jo.run_root = r.count("run-root") ? fs::path(r["run-root"].as<std::string>())
                : !job.run_root.empty() ? job.run_root
                                        : fs::path("runs") / job_file.stem();
  jo.resume = r.count("resume") > 0;
  read_train_loop_options(r, &jo.train);
  const int rank = comm->rank(), world = comm->world();
  if (r.count("list")) {
    if (rank == 0) {
      for (size_t i = 0; i < job.tasks.size(); ++i) {
        const auto& t = job.tasks[i];
        std::cout << t.name << "\trank " << i % static_cast<size_t>(world) << "\t" << t.config.string() << "\t"
                  << (jo.run_root / t.name).string() << "\n";
      }
    }
    return 0;
  }
  const Firmware fw = Firmware::open(firmware_dir_option(r));
  const auto results = run_job(fw, job, jo, rank, world);
  int failed = 0, stopped = 0;
  std::string first_failure;
  for (const auto& t : results) {
    std::cout << t.status << " " << t.name << " (rank " << t.rank << "): " << t.steps << " steps" << metrics_text(t.metrics)
              << ", " << static_cast<int64_t>(t.seconds) << " s, RSS " << t.rss_kib / 1024 << " MiB"
              << (t.error.empty() ? "" : ": " + t.error) << "\n";
    if (t.status == "failed") {
      ++failed;
      if (first_failure.empty()) first_failure = t.name + ": " + t.error;
    }
    if (t.status == "preempted" || t.status == "not_started") ++stopped;
  }
  std::cout << "rank " << rank << ": " << results.size() << " tasks, " << failed << " failed, " << stopped
            << " stopped; peak RSS " << process_memory().peak_kib / 1024 << " MiB"
            << (stopped ? " (continue with --resume)" : "") << "\n";
  std::cout << "report: " << (jo.run_root / runkeys::kReportFile).string() << "\n";
  std::cout.flush();
  M4_CHECK(failed == 0, ErrorCode::kMismatch, job_file.string(), ": ", failed, " of ", results.size(),
           " tasks on rank ", rank, " failed (first: ", first_failure, ")");
  return 0;
}

}  // namespace

int run_train_many(int argc, char** argv) { return train_many_cmd(argc, argv); }

}  // namespace m4::cli
