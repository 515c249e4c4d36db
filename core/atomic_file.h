// Crash-safe file replacement: write a temporary file beside the target, fsync
// it, rename it over the target, fsync the directory. A reader sees the old
// file or the new one, never a half-written one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

namespace m4 {

class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::filesystem::path target);
  ~AtomicFileWriter();  // removes the temporary file unless commit() ran
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t size);
  void write(std::string_view s) { write(s.data(), s.size()); }
  uint64_t bytes_written() const { return written_; }
  // fsync + rename + fsync(dir). After this the target holds the new content.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  int fd_ = -1;
  uint64_t written_ = 0;
  bool committed_ = false;
};

// Convenience: atomically replace `target` with `content`.
void write_file_atomic(const std::filesystem::path& target, std::string_view content);

// Reads a whole (small) file; throws m4::Error naming the file on failure.
std::string read_text_file(const std::filesystem::path& path, size_t max_bytes = 64 << 20);

}  // namespace m4
