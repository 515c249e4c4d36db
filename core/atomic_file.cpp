// Crash-safe file replacement (temp + fsync + rename + fsync dir).
#include "core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/error.h"

namespace m4 {
namespace fs = std::filesystem;

AtomicFileWriter::AtomicFileWriter(fs::path target) : target_(std::move(target)) {
  fs::path dir = target_.parent_path().empty() ? fs::path(".") : target_.parent_path();
  std::string templ = (dir / ("." + target_.filename().string() + ".tmp.XXXXXX")).string();
  fd_ = ::mkstemp(templ.data());
  M4_CHECK(fd_ >= 0, ErrorCode::kIo, target_.string(),
           ": cannot create temporary file in ", dir.string(), ": ", std::strerror(errno));
  temp_ = templ;
  ::fchmod(fd_, 0644);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_.empty()) {
    std::error_code ec;
    fs::remove(temp_, ec);
  }
}

void AtomicFileWriter::write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    M4_CHECK(n > 0, ErrorCode::kIo, target_.string(), ": write failed: ", std::strerror(errno));
    p += n;
    size -= static_cast<size_t>(n);
    written_ += static_cast<uint64_t>(n);
  }
}

void AtomicFileWriter::commit() {
  M4_CHECK(!committed_, ErrorCode::kInternal, target_.string(), ": commit() called twice");
  M4_CHECK(::fsync(fd_) == 0, ErrorCode::kIo, target_.string(), ": fsync failed: ",
           std::strerror(errno));
  ::close(fd_);
  fd_ = -1;
  M4_CHECK(::rename(temp_.c_str(), target_.c_str()) == 0, ErrorCode::kIo, target_.string(),
           ": cannot rename temporary file into place: ", std::strerror(errno));
  committed_ = true;
  fs::path dir = target_.parent_path().empty() ? fs::path(".") : target_.parent_path();
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const fs::path& target, std::string_view content) {
  AtomicFileWriter w(target);
  w.write(content);
  w.commit();
}

std::string read_text_file(const fs::path& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  M4_CHECK(fd >= 0, ErrorCode::kIo, path.string(), ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    M4_FAIL(ErrorCode::kIo, path.string(), ": not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    M4_FAIL(ErrorCode::kBadInput, path.string(), ": file is ", st.st_size,
            " bytes, more than the ", max_bytes, " bytes allowed for it");
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  M4_CHECK(got == out.size(), ErrorCode::kIo, path.string(), ": short read");
  return out;
}

}  // namespace m4
