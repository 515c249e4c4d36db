// A read-only memory mapping of a whole file (PROT_READ, MAP_PRIVATE), shared
// by every tensor that points into it; unmapped when the last user goes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace m4 {

class Error;

// Refuses, as m4::Error(kIo) naming `path`, a path that does not exist ("no such
// <noun>") or is not a regular file (saying whether it is a directory or a
// device, FIFO or socket): nothing may open a FIFO and wait on it.
void check_regular_file(const std::filesystem::path& path, const char* noun = "file");

// Bytes as a file without touching the disk: an anonymous memfd, named through
// /proc/self/fd, which any file reader (the mapper, safetensors) opens as usual.
class MemoryFile {
 public:
  explicit MemoryFile(std::string_view bytes);
  ~MemoryFile();
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  std::filesystem::path path() const;
  // `e` (from a reader that opened path()) with that path replaced by `where`:
  // the message names what the bytes are, not a file descriptor.
  Error renamed(const Error& e, const std::string& where) const;

 private:
  int fd_ = -1;
};

class MappedFile {
 public:
  // Throws m4::Error (kIo) naming the file if it cannot be opened or mapped.
  static std::shared_ptr<const MappedFile> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  // Ask the kernel to read the mapping ahead (MADV_WILLNEED); a hint only.
  void prefetch() const;

 private:
  MappedFile() = default;
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace m4
