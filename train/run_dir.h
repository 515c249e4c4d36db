// A run directory as the trainer keeps it: held by one process at a time (an
// flock on RUN_DIR/.lock, released by the kernel when the process dies, so a
// kill -9 never leaves it blocked), never started afresh over earlier work,
// and tidied on resume: temporaries of a killed writer removed, metrics rows
// after the checkpoint dropped (the resumed run logs those steps again).
#pragma once

#include <cstdint>
#include <filesystem>

namespace m4 {

class RunDirLock {
 public:
  // Creates `run_dir` if needed and takes the lock without waiting; a
  // directory another process holds is m4::Error(kMismatch) naming it and,
  // when known, that process.
  explicit RunDirLock(const std::filesystem::path& run_dir);
  ~RunDirLock();
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;

  static constexpr const char* kFile = ".lock";

 private:
  int fd_ = -1;
};

// A run directory holding anything but its lock holds earlier work: starting
// afresh there (no --resume) is refused, with one m4::Error(kMismatch) naming it.
void check_fresh_run_dir(const std::filesystem::path& run_dir);

// Removes what a writer killed mid-write leaves: `.NAME.tmp.XXXXXX` files
// (write_file_atomic) in the run directory and checkpoints/, and
// `checkpoints/step-N.tmp` directories. Only under the lock.
void remove_stale_temporaries(const std::filesystem::path& run_dir);

// Keeps the rows of RUN_DIR/metrics.jsonl whose step is <= `step` (rewritten
// atomically); a torn last line from a killed writer is dropped too.
void truncate_metrics(const std::filesystem::path& metrics_file, int64_t step);

}  // namespace m4
