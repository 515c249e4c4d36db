// The module digest cache (see digest_cache.h).
#include "firmware/digest_cache.h"

#include <sys/stat.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/sha256.h"

namespace m4 {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormat = "m4forge-digest-cache/1";
constexpr uint64_t kMaxBytes = 16ULL << 20;
constexpr size_t kMaxEntries = 4096;  // beyond this the cache starts over

json read_entries(const fs::path& file) {
  std::error_code ec;
  if (file.empty() || !fs::is_regular_file(file, ec) || fs::file_size(file, ec) > kMaxBytes) return json::object();
  try {
    const json j = json::parse(read_text_file(file, kMaxBytes), nullptr, false);
    if (j.is_object() && j.value("format", std::string()) == kFormat && j.contains("entries") && j["entries"].is_object())
      return j["entries"];
  } catch (const std::exception&) {
  }
  return json::object();  // unreadable or malformed: as if empty (it is rewritten on the next store)
}

}  // namespace

DigestCache DigestCache::open_default() {
  if (const char* p = std::getenv("M4FORGE_DIGEST_CACHE")) {
    const std::string v = p;
    return DigestCache(v == "off" || v.empty() ? fs::path() : fs::path(v));
  }
  fs::path base;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) base = x;
  else if (const char* h = std::getenv("HOME"); h && *h) base = fs::path(h) / ".cache";
  return DigestCache(base.empty() ? fs::path() : base / "m4forge" / "module-digests.json");
}

std::optional<std::string> DigestCache::key(const std::string& description, const std::vector<fs::path>& files) {
  json ids = json::array();
  for (const auto& f : files) {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    ids.push_back({fs::absolute(f).lexically_normal().string(), static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                   static_cast<int64_t>(st.st_size), static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                   static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec});
  }
  return to_hex(sha256(json({{"module", description}, {"files", ids}}).dump()));
}

std::string DigestCache::lookup(const std::string& key) const {
  if (!enabled()) return "";
  const json e = read_entries(file_);
  return e.contains(key) && e[key].is_string() ? e[key].get<std::string>() : "";
}

void DigestCache::store(const std::string& key, const std::string& digest) const {
  if (!enabled()) return;
  try {
    json e = read_entries(file_);
    if (e.size() >= kMaxEntries) e = json::object();
    e[key] = digest;
    std::error_code ec;
    fs::create_directories(file_.parent_path(), ec);
    write_file_atomic(file_, json({{"format", kFormat}, {"entries", e}}).dump() + "\n");  // mode 0600 (mkstemp)
  } catch (const std::exception&) {
    // A cache that cannot be written only costs a re-hash next time.
  }
}

}  // namespace m4
