// A deliberately small POSIX ustar (POSIX.1-1988, "pax" spec, ustar Interchange
// Format): regular files only, flat names, written reproducibly and read from memory.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace m4 {

class AtomicFileWriter;

// Writes entries as they come: 512-byte header (mode 0644, uid/gid 0, the given
// mtime) + data padded to 512, then two zero blocks. Same input, same bytes.
class TarWriter {
 public:
  TarWriter(AtomicFileWriter& out, int64_t mtime) : out_(out), mtime_(mtime) {}
  void add(const std::string& name, std::string_view data);
  void finish();

 private:
  AtomicFileWriter& out_;
  int64_t mtime_;
};

// The 512-byte header TarWriter writes (exposed for tests that forge archives).
std::string tar_header(const std::string& name, uint64_t size, int64_t mtime, char typeflag = '0',
                       const std::string& linkname = "");

struct TarEntry {
  std::string name;
  uint64_t offset = 0;  // of the data, in the archive
  uint64_t size = 0;
  std::string_view data;  // into the archive's bytes
};

// Parses `archive` (all of it in memory or mapped), accepting only regular-file
// entries whose names are keys of `limits` (name -> max size), each at most once,
// with valid checksums and ustar magic, sizes inside the archive, and zero blocks
// at the end. Allocates nothing sized by the input. Throws m4::Error(kBadInput)
// "<where>: tar: <what>" on the first problem.
std::vector<TarEntry> read_tar(std::string_view archive, const std::map<std::string, uint64_t>& limits,
                               const std::string& where);

}  // namespace m4
