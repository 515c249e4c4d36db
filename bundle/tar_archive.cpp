// ustar writer and strict reader (see tar_archive.h). Field offsets follow the
// POSIX header: name 0, mode 100, uid 108, gid 116, size 124, mtime 136,
// chksum 148, typeflag 156, linkname 157, magic 257, version 263, prefix 345.
#include "bundle/tar_archive.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"

namespace m4 {
namespace {

constexpr size_t kBlock = 512;

void put_octal(char* field, size_t width, uint64_t v) {
  // width-1 digits, then NUL (what GNU and bsdtar write).
  std::string s(width - 1, '0');
  for (size_t i = width - 1; i-- > 0 && v;) {
    s[i] = static_cast<char>('0' + (v & 7));
    v >>= 3;
  }
  M4_CHECK(v == 0, ErrorCode::kInvalidArgument, "tar: value does not fit a ", width, "-byte octal field");
  std::memcpy(field, s.data(), width - 1);
  field[width - 1] = '\0';
}

uint32_t header_sum(const unsigned char* h) {
  uint32_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : h[i];
  return sum;
}

// Octal digits, optionally space/NUL padded on either side; GNU base-256 (high bit)
// for sizes over 8 GiB. Returns false when the field is neither.
bool parse_number(const unsigned char* f, size_t width, uint64_t* out) {
  if (f[0] & 0x80) {
    // base-256: the remaining bits, big-endian; anything over 64 bits saturates.
    uint64_t v = f[0] & 0x3f;
    for (size_t i = 1; i < width; ++i) {
      if (v >> 56) {
        *out = UINT64_MAX;
        return true;
      }
      v = (v << 8) | f[i];
    }
    *out = v;
    return true;
  }
  size_t i = 0;
  while (i < width && f[i] == ' ') ++i;
  uint64_t v = 0;
  size_t digits = 0;
  for (; i < width && f[i] >= '0' && f[i] <= '7'; ++i, ++digits) v = (v << 3) | (f[i] - '0');
  for (; i < width; ++i) {
    if (f[i] != ' ' && f[i] != '\0') return false;
  }
  *out = v;
  return digits > 0;
}

std::string field_string(const unsigned char* f, size_t width) {
  const auto* end = static_cast<const unsigned char*>(std::memchr(f, 0, width));
  return std::string(reinterpret_cast<const char*>(f), end ? end - f : width);
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

std::string printable(const std::string& s) {
  std::string o;
  for (unsigned char c : s.substr(0, 120)) o += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  return o;
}

}  // namespace

std::string tar_header(const std::string& name, uint64_t size, int64_t mtime, char typeflag, const std::string& linkname) {
  M4_CHECK(!name.empty() && name.size() < 100 && linkname.size() < 100, ErrorCode::kInvalidArgument,
           "tar: entry name must be 1..99 bytes: '", name, "'");
  std::string h(kBlock, '\0');
  std::memcpy(&h[0], name.data(), name.size());
  put_octal(&h[100], 8, 0644);
  put_octal(&h[108], 8, 0);
  put_octal(&h[116], 8, 0);
  put_octal(&h[124], 12, size);
  put_octal(&h[136], 12, static_cast<uint64_t>(std::max<int64_t>(mtime, 0)));
  h[156] = typeflag;
  std::memcpy(&h[157], linkname.data(), linkname.size());
  std::memcpy(&h[257], "ustar", 6);  // with its NUL
  std::memcpy(&h[263], "00", 2);
  std::memcpy(&h[265], "root", 4);
  std::memcpy(&h[297], "root", 4);
  // Six octal digits, NUL, space: the traditional layout every tar reads.
  char sum[8];
  std::snprintf(sum, sizeof sum, "%06o", header_sum(reinterpret_cast<const unsigned char*>(h.data())));
  std::memcpy(&h[148], sum, 6);
  h[154] = '\0';
  h[155] = ' ';
  return h;
}

void TarWriter::add(const std::string& name, std::string_view data) {
  out_.write(tar_header(name, data.size(), mtime_));
  out_.write(data);
  static const char zeros[kBlock] = {};
  if (data.size() % kBlock) out_.write(zeros, kBlock - data.size() % kBlock);
}

void TarWriter::finish() {
  static const char zeros[2 * kBlock] = {};
  out_.write(zeros, sizeof zeros);
}

std::vector<TarEntry> read_tar(std::string_view archive, const std::map<std::string, uint64_t>& limits,
                               const std::string& where) {
  const std::string w = where + ": tar: ";
  std::vector<TarEntry> entries;
  std::set<std::string> seen;
  uint64_t pos = 0;
  const uint64_t total = archive.size();
  while (true) {
    M4_CHECK(total - pos >= kBlock, ErrorCode::kBadInput, w, "truncated archive (",
             pos == total ? "no end-of-archive blocks" : "partial header", " at offset ", pos, ")");
    const auto* h = reinterpret_cast<const unsigned char*>(archive.data() + pos);
    if (all_zero(archive.substr(pos, kBlock))) {
      M4_CHECK(total - pos >= 2 * kBlock, ErrorCode::kBadInput, w, "truncated archive (one end-of-archive block of two)");
      M4_CHECK(all_zero(archive.substr(pos)), ErrorCode::kBadInput, w, "non-zero bytes after the end-of-archive blocks (offset ",
               pos, ")");
      break;
    }
    uint64_t stored_sum = 0;
    M4_CHECK(parse_number(h + 148, 8, &stored_sum) && stored_sum == header_sum(h), ErrorCode::kBadInput, w,
             "header checksum mismatch at offset ", pos, " (corrupt or not a tar file)");
    M4_CHECK(std::memcmp(h + 257, "ustar\0" "00", 8) == 0, ErrorCode::kBadInput, w,
             "header at offset ", pos, " is not POSIX ustar (magic/version)");
    const std::string name = field_string(h, 100);
    const std::string prefix = field_string(h + 345, 155);
    const std::string full = prefix.empty() ? name : prefix + "/" + name;
    const std::string shown = "entry '" + printable(full) + "'";
    M4_CHECK(!full.empty(), ErrorCode::kBadInput, w, "entry with an empty name at offset ", pos);
    M4_CHECK(full[0] != '/', ErrorCode::kBadInput, w, shown, " has an absolute path");
    M4_CHECK(full != ".." && full.find("../") == std::string::npos && full.find("/..") == std::string::npos,
             ErrorCode::kBadInput, w, shown, " has a '..' path");
    M4_CHECK(full.find('/') == std::string::npos, ErrorCode::kBadInput, w, shown, " has a path with '/' (only flat names)");
    const char type = static_cast<char>(h[156]);
    M4_CHECK(type != '1', ErrorCode::kBadInput, w, shown, " is a hard link (only regular files are allowed)");
    M4_CHECK(type != '2', ErrorCode::kBadInput, w, shown, " is a symbolic link (only regular files are allowed)");
    M4_CHECK(type == '0' || type == '\0', ErrorCode::kBadInput, w, shown, " has type '", printable(std::string(1, type)),
             "' (only regular files are allowed)");
    uint64_t mode = 0;
    M4_CHECK(parse_number(h + 100, 8, &mode), ErrorCode::kBadInput, w, shown, " has a malformed mode field");
    // One mode for every entry (what the writer stores): no setuid, executable or writable-by-others bits on extraction.
    if (mode != 0644) {
      char octal[24];
      std::snprintf(octal, sizeof octal, "%llo", static_cast<unsigned long long>(mode));
      M4_FAIL(ErrorCode::kBadInput, w, shown, " has mode ", octal, " (entries are 0644: docs/bundle-format.md)");
    }
    const auto lim = limits.find(full);
    if (lim == limits.end()) {
      std::string expected;
      for (const auto& [n, _] : limits) expected += (expected.empty() ? "" : ", ") + n;
      M4_FAIL(ErrorCode::kBadInput, w, "unexpected ", shown, " (a bundle holds only: ", expected, ")");
    }
    M4_CHECK(seen.insert(full).second, ErrorCode::kBadInput, w, shown, " appears twice");
    uint64_t size = 0;
    M4_CHECK(parse_number(h + 124, 12, &size), ErrorCode::kBadInput, w, shown, " has a malformed size field");
    M4_CHECK(size <= lim->second, ErrorCode::kBadInput, w, shown, " claims ", size, " bytes, over its limit of ", lim->second);
    const uint64_t data = pos + kBlock;
    M4_CHECK(size <= total - data, ErrorCode::kBadInput, w, shown, " claims ", size, " bytes but only ", total - data,
             " follow its header (truncated archive)");
    entries.push_back({full, data, size, archive.substr(data, size)});
    const uint64_t padded = (size + kBlock - 1) / kBlock * kBlock;
    M4_CHECK(padded <= total - data, ErrorCode::kBadInput, w, shown, " is truncated (its padding is missing)");
    // Padding is not covered by any digest: require zeros so no byte of a bundle goes unchecked.
    M4_CHECK(all_zero(archive.substr(data + size, padded - size)), ErrorCode::kBadInput, w, shown,
             " has non-zero padding after its data");
    pos = data + padded;
  }
  return entries;
}

}  // namespace m4
