// Module digests remembered between runs, so that binding checks (verify
// --firmware, compat, run, serve) need not re-hash gigabytes that have not
// changed. An entry is the digest a module's files gave when they were last
// hashed, keyed by what the kernel says of each file: device, inode, size,
// modification time and change time (ns). The change time cannot be set by a
// user: any write (or a restored mtime) moves it, so a file edited in place
// misses the cache and is hashed again. What the cache trusts: the filesystem
// updating ctime (local filesystems do; some FUSE or network ones may not),
// the clock not being turned back by root, and the cache file itself, which
// lives in the user's cache directory with mode 0600 (who can write it can
// also replace the m4forge binary). `firmware inspect --verify` always hashes
// and refreshes it. Location: $M4FORGE_DIGEST_CACHE, else
// $XDG_CACHE_HOME/m4forge/module-digests.json, else ~/.cache/m4forge/...;
// M4FORGE_DIGEST_CACHE=off disables it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace m4 {

class DigestCache {
 public:
  // The cache at the configured location (empty path: disabled).
  static DigestCache open_default();
  explicit DigestCache(std::filesystem::path file) : file_(std::move(file)) {}

  bool enabled() const { return !file_.empty(); }
  const std::filesystem::path& file() const { return file_; }

  // The key of a module: its description (arch, config, names) and every file's
  // stat identity. nullopt when a file cannot be stat'ed (then nothing is cached).
  static std::optional<std::string> key(const std::string& description, const std::vector<std::filesystem::path>& files);

  // The digest stored under `key`, or "" (no entry, no cache, an unreadable cache).
  std::string lookup(const std::string& key) const;
  // Records `digest` under `key` (atomically; a failure to write is ignored:
  // the cache only ever saves work).
  void store(const std::string& key, const std::string& digest) const;

 private:
  std::filesystem::path file_;
};

}  // namespace m4
