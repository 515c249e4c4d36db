// Run directories: the lock, the fresh-start check, and tidying on resume.
#include "train/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/atomic_file.h"
#include "core/error.h"

namespace m4 {
namespace fs = std::filesystem;

RunDirLock::RunDirLock(const fs::path& run_dir) {
  fs::create_directories(run_dir);
  const fs::path file = run_dir / kFile;
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  M4_CHECK(fd_ >= 0, ErrorCode::kIo, file.string(), ": cannot open the run directory's lock: ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char holder[32] = {0};
    const ssize_t n = ::pread(fd_, holder, sizeof(holder) - 1, 0);
    ::close(fd_);
    fd_ = -1;
    M4_CHECK(err != EWOULDBLOCK, ErrorCode::kMismatch, run_dir.string(), " is in use by another m4forge process",
             n > 0 ? " (pid " + std::string(holder, static_cast<size_t>(n)) + ")" : std::string(),
             "; one run directory holds one run at a time (hint: wait for it, or give another --run-dir)");
    M4_FAIL(ErrorCode::kIo, file.string(), ": cannot lock: ", std::strerror(err));
  }
  // Who holds it, for the message another process prints.
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t w = ::pwrite(fd_, pid.data(), pid.size(), 0);
  }
}

RunDirLock::~RunDirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock; the file stays (removing it would race a new holder)
}

void check_fresh_run_dir(const fs::path& dir) {
  bool fresh = true;
  if (fs::is_directory(dir)) {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().filename() != RunDirLock::kFile) fresh = false;
    }
  }
  M4_CHECK(fresh, ErrorCode::kMismatch, dir.string(),
           " already holds a run; not overwritten (continue it with --resume, or remove it)");
}

namespace {
bool is_temporary(const fs::path& p) {
  const std::string n = p.filename().string();
  return (n.size() > 1 && n[0] == '.' && n.find(".tmp.") != std::string::npos) ||
         (n.size() > 4 && n.compare(n.size() - 4, 4, ".tmp") == 0);
}
}  // namespace

void remove_stale_temporaries(const fs::path& run_dir) {
  for (const fs::path& dir : {run_dir, run_dir / "checkpoints"}) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (is_temporary(e.path())) fs::remove_all(e.path());
    }
  }
}

void truncate_metrics(const fs::path& file, int64_t step) {
  if (!fs::exists(file)) return;
  std::ifstream in(file);
  M4_CHECK(in.good(), ErrorCode::kIo, file.string(), ": cannot open");
  std::string kept, line;
  bool changed = false;
  while (std::getline(in, line)) {
    const bool complete = !in.eof();  // the last line of a killed writer has no newline
    nlohmann::json row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const bool has_step = row.is_object() && row.contains("step") && row["step"].is_number_integer();
    if (complete && has_step && row["step"].get<int64_t>() <= step) {
      kept += line + "\n";
    } else {
      changed = true;
    }
  }
  if (changed) write_file_atomic(file, kept);
}

}  // namespace m4
