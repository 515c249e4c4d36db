// Read-only whole-file mmap.
#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace m4 {

void check_regular_file(const std::filesystem::path& path, const char* noun) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  M4_CHECK(std::filesystem::exists(st), ErrorCode::kIo, path.string(), ": no such ", noun);
  M4_CHECK(std::filesystem::is_regular_file(st), ErrorCode::kIo, path.string(), ": not a regular file (",
           std::filesystem::is_directory(st) ? "a directory" : "a device, FIFO or socket", ")");
}

std::shared_ptr<const MappedFile> MappedFile::open(const std::filesystem::path& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  M4_CHECK(fd >= 0, ErrorCode::kIo, path.string(), ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    M4_FAIL(ErrorCode::kIo, path.string(), ": not a regular file");
  }
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  m->size_ = static_cast<uint64_t>(st.st_size);
  if (m->size_ > 0) {
    void* p = ::mmap(nullptr, m->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    ::close(fd);
    M4_CHECK(p != MAP_FAILED, ErrorCode::kIo, path.string(), ": mmap failed: ", std::strerror(err));
    m->data_ = static_cast<const uint8_t*>(p);
  } else {
    ::close(fd);
  }
  return m;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::prefetch() const {
  if (data_ != nullptr) ::madvise(const_cast<uint8_t*>(data_), size_, MADV_WILLNEED);
}

MemoryFile::MemoryFile(std::string_view bytes) {
  fd_ = ::memfd_create("m4forge-bytes", MFD_CLOEXEC);
  M4_CHECK(fd_ >= 0, ErrorCode::kIo, "memfd_create failed: ", std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    M4_CHECK(n > 0, ErrorCode::kIo, "cannot buffer ", bytes.size(), " bytes in memory: ", std::strerror(errno));
    done += static_cast<size_t>(n);
  }
}

MemoryFile::~MemoryFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::filesystem::path MemoryFile::path() const { return "/proc/self/fd/" + std::to_string(fd_); }

Error MemoryFile::renamed(const Error& e, const std::string& where) const {
  std::string msg = e.what();
  const std::string fd = path().string();
  for (size_t at = msg.find(fd); at != std::string::npos; at = msg.find(fd, at + where.size())) msg.replace(at, fd.size(), where);
  return Error(e.code(), msg);
}

}  // namespace m4
