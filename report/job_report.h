// The report of a `train-many` job: RUN_ROOT/report.html, one table of every
// task (status, metric, steps, time, rank, error) with a link to each task's
// own report (report/run_report.h). Built from the ranks' job-rank<R>.jsonl
// logs, so any rank (or `m4forge report RUN_ROOT`) can write it at any time.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace m4 {

struct JobReport {
  std::filesystem::path html;
  size_t tasks = 0, failed = 0;
};

// True when `dir` holds job-rank<R>.jsonl logs (a train-many run root).
bool is_job_root(const std::filesystem::path& dir);

// Writes RUN_ROOT/report.html. `task_names` (the job's order) lists tasks no
// rank has logged yet as "pending"; empty: the tasks the logs name, in the
// order they first appear. A task logged twice (a resumed job) shows its last
// line. Lines that are not task rows are counted in a warning, not fatal.
JobReport write_job_report(const std::filesystem::path& run_root, const std::vector<std::string>& task_names = {});

}  // namespace m4
