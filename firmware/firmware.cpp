// Firmware directories: manifest, identity, import (see firmware.h).
#include "firmware/firmware.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <regex>
#include <set>
#include <thread>

#include "core/atomic_file.h"
#include "core/build_info.h"
#include "core/error.h"
#include "core/json_file.h"
#include "core/safetensors.h"
#include "core/sha256.h"
#include "firmware/clip_tokenizer.h"
#include "firmware/digest_cache.h"
#include "firmware/llama.h"
#include "firmware/module_arch.h"
#include "firmware/quantized_weight.h"
#include "firmware/tokenizer.h"
#include "firmware/weight_set.h"

namespace m4 {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string rel_ok(const std::string& rel, const std::string& where) {
  // Files named by firmware.json must stay inside the firmware directory.
  fs::path p(rel);
  M4_CHECK(!rel.empty() && p.is_relative(), ErrorCode::kBadInput, where, ": file path '", rel,
           "' must be relative to the firmware directory");
  for (const auto& part : p) {
    M4_CHECK(part != "..", ErrorCode::kBadInput, where, ": file path '", rel, "' leaves the firmware directory");
  }
  return rel;
}


}  // namespace

json FirmwareManifest::to_json() const {
  json mods = json::object();
  for (const auto& [n, m] : modules) {
    mods[n] = {{"arch", m.arch},   {"config", m.config}, {"weights", m.weights},
               {"assets", m.assets}, {"files", m.file_sizes}, {"digest", m.digest}};
  }
  json j = {{"format", fwkeys::kFormat}, {"name", name},       {"version", version},
            {"firmware_id", firmware_id}, {"created_by", created_by}, {"provenance", provenance},
            {"modules", mods}};
  if (!derived_from.is_null()) j[fwkeys::kDerivedFrom] = derived_from;
  return j;
}

namespace {

// The derived_from record's fields and their checks, problems appended.
void check_derived_from(const json& d, const std::map<std::string, FirmwareModule>& modules,
                        std::vector<std::string>* problems) {
  const std::string ctx = std::string("'") + fwkeys::kDerivedFrom + "'";
  if (!d.is_object()) {
    problems->push_back(ctx + " must be an object");
    return;
  }
  static const std::set<std::string> kFields = {"firmware_id", "name", "version", "method", "bits", "group_size", "modules"};
  for (auto f = d.begin(); f != d.end(); ++f) {
    if (!kFields.count(f.key())) problems->push_back(ctx + ": unknown field '" + f.key() + "'");
  }
  for (const char* k : {"firmware_id", "name", "version", "method"}) {
    if (!d.contains(k) || !d[k].is_string()) problems->push_back(ctx + ": missing string field '" + k + "'");
  }
  if (d.contains("firmware_id") && d["firmware_id"].is_string() && d["firmware_id"].get<std::string>().rfind("sha256:", 0) != 0)
    problems->push_back(ctx + ": firmware_id is not a sha256: digest");
  if (!d.contains("bits") || !d["bits"].is_number_integer() || (d["bits"] != 8 && d["bits"] != 4))
    problems->push_back(ctx + ": 'bits' must be 8 or 4");
  if (!d.contains("group_size") || !d["group_size"].is_number_integer() || d["group_size"].get<int64_t>() < 0)
    problems->push_back(ctx + ": 'group_size' must be an integer >= 0 (0: per channel)");
  if (!d.contains("modules") || !d["modules"].is_array() || d["modules"].empty()) {
    problems->push_back(ctx + ": missing non-empty list 'modules'");
  } else {
    for (const auto& m : d["modules"]) {
      if (!m.is_string() || !modules.count(m.get<std::string>()))
        problems->push_back(ctx + ": 'modules' lists " + m.dump() + ", which is not a module of this firmware");
    }
  }
}

}  // namespace

std::string describe_derivation(const json& d) {
  if (!d.is_object()) return "";
  std::string mods;
  if (d.contains("modules") && d["modules"].is_array()) {
    for (const auto& m : d["modules"]) {
      if (m.is_string()) mods += (mods.empty() ? "" : ", ") + m.get<std::string>();
    }
  }
  // A bundle carries this record unchecked but signed: read it without trusting its types.
  const auto num = [&](const char* k) { return d.contains(k) && d[k].is_number_integer() ? d[k].get<int64_t>() : 0; };
  const auto str = [&](const char* k) { return d.contains(k) && d[k].is_string() ? d[k].get<std::string>() : "?"; };
  const int64_t bits = num("bits"), g = num("group_size");
  return std::string(bits == 8 ? "an " : "a ") + std::to_string(bits) + "-bit quantization (" + mods + ", " +
         (g == 0 ? std::string("per-channel scales") : "groups of " + std::to_string(g)) + ") of " + str("name") + "@" +
         str("version");
}

FirmwareManifest FirmwareManifest::from_json(const json& j, const std::string& where) {
  std::vector<std::string> problems;
  auto str = [&](const json& o, const char* key, std::string* out, const std::string& ctx) {
    if (!o.contains(key) || !o[key].is_string()) problems.push_back(ctx + "missing string field '" + key + "'");
    else *out = o[key].get<std::string>();
  };
  M4_CHECK(j.is_object(), ErrorCode::kBadInput, where, ": must be a JSON object");
  std::string format;
  str(j, "format", &format, "");
  if (!format.empty() && format != fwkeys::kFormat)
    M4_FAIL(ErrorCode::kBadInput, where, ": format '", format, "' is not ", fwkeys::kFormat,
            " (hint: made by another m4forge version?)");
  FirmwareManifest m;
  str(j, "name", &m.name, "");
  str(j, "version", &m.version, "");
  str(j, "firmware_id", &m.firmware_id, "");
  if (j.contains("created_by") && j["created_by"].is_string()) m.created_by = j["created_by"];
  if (j.contains("provenance")) m.provenance = j["provenance"];
  if (j.contains(fwkeys::kDerivedFrom)) m.derived_from = j[fwkeys::kDerivedFrom];
  if (!j.contains("modules") || !j["modules"].is_object() || j["modules"].empty()) {
    problems.push_back("missing non-empty object 'modules'");
  } else {
    for (auto it = j["modules"].begin(); it != j["modules"].end(); ++it) {
      const std::string ctx = "module '" + it.key() + "': ";
      const json& e = it.value();
      if (!e.is_object()) {
        problems.push_back(ctx + "must be an object");
        continue;
      }
      FirmwareModule mod;
      static const std::set<std::string> kFields = {"arch", "config", "weights", "assets", "files", "digest"};
      for (auto f = e.begin(); f != e.end(); ++f) {
        if (!kFields.count(f.key())) problems.push_back(ctx + "unknown field '" + f.key() + "'");
      }
      str(e, "arch", &mod.arch, ctx);
      str(e, "digest", &mod.digest, ctx);
      if (!e.contains("config") || !e["config"].is_object()) problems.push_back(ctx + "missing object 'config'");
      else mod.config = e["config"];
      if (!e.contains("weights") || !e["weights"].is_array() || e["weights"].empty()) {
        problems.push_back(ctx + "missing non-empty list 'weights'");
      } else {
        for (const auto& w : e["weights"]) {
          if (!w.is_string()) problems.push_back(ctx + "'weights' must list file names");
          else mod.weights.push_back(rel_ok(w.get<std::string>(), where));
        }
      }
      if (e.contains("assets")) {
        if (!e["assets"].is_object()) {
          problems.push_back(ctx + "'assets' must map file names to paths");
        } else {
          for (auto a = e["assets"].begin(); a != e["assets"].end(); ++a) {
            if (!a.value().is_string()) problems.push_back(ctx + "assets['" + a.key() + "'] must be a path");
            else mod.assets[a.key()] = rel_ok(a.value().get<std::string>(), where);
          }
        }
      }
      if (!e.contains("files") || !e["files"].is_object()) {
        problems.push_back(ctx + "missing object 'files'");
      } else {
        for (auto f = e["files"].begin(); f != e["files"].end(); ++f) {
          if (!f.value().is_number_integer() || f.value().get<int64_t>() < 0)
            problems.push_back(ctx + "files['" + f.key() + "'] must be a size");
          else mod.file_sizes[rel_ok(f.key(), where)] = f.value().get<uint64_t>();
        }
      }
      if (!mod.arch.empty()) {
        try {
          module_arch(mod.arch);
        } catch (const Error& err) {
          problems.push_back(ctx + err.what());
        }
      }
      m.modules[it.key()] = std::move(mod);
    }
  }
  if (!m.derived_from.is_null()) check_derived_from(m.derived_from, m.modules, &problems);
  check_problems(problems, where);
  return m;
}

void check_firmware_name_version(const std::string& name, const std::string& version) {
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  static const std::regex kSemver(
      "(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\\+[0-9A-Za-z.-]+)?");
  M4_CHECK(std::regex_match(name, kName), ErrorCode::kInvalidArgument, "firmware name '", name,
           "' must be 1-128 characters of letters, digits, '.', '_' or '-'");
  M4_CHECK(std::regex_match(version, kSemver), ErrorCode::kInvalidArgument, "firmware version '", version,
           "' is not a semantic version X.Y.Z (e.g. 1.0.0)");
}

std::vector<TensorDigest> digest_tensors(const std::string& arch, const WeightSet& weights, int threads) {
  const ModuleArch& a = module_arch(arch);
  // A quantized weight's scales are hashed under the weight's internal name + "_scale".
  auto internal = [&](const std::string& stored) -> std::string {
    const std::string base = quantized_weight_of_scale(weights, stored);
    if (base.empty()) return a.internal_name(stored);
    const std::string w = a.internal_name(base);
    return w.empty() ? "" : w + quantkeys::kScaleSuffix;
  };
  std::vector<std::string> names;
  for (const auto& n : weights.names()) {
    if (!internal(n).empty()) names.push_back(n);
  }
  std::vector<TensorDigest> out(names.size());
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = std::min<int>(threads, static_cast<int>(std::max<size_t>(1, names.size())));
  // Largest tensors first so the threads finish together.
  std::vector<size_t> order(names.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return weights.info(names[a]).nbytes() > weights.info(names[b]).nbytes();
  });
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < order.size();) {
      const size_t i = order[k];
      const TensorInfo& info = weights.info(names[i]);
      std::string_view bytes = weights.file_of(names[i]).bytes(info);
      out[i] = {internal(names[i]), dtype_name(info.dtype), info.shape,
                to_hex(sha256(bytes.data(), bytes.size()))};
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

json module_description(const FirmwareModule& m, const std::vector<TensorDigest>& tensors,
                        const std::map<std::string, std::string>& asset_sha256) {
  json t = json::array();
  for (const auto& d : tensors) t.push_back({d.name, d.dtype, d.shape, d.sha256});
  return {{"arch", m.arch}, {"config", m.config}, {"tensors", t}, {"assets_sha256", asset_sha256}};
}

std::string firmware_id_of(const std::map<std::string, FirmwareModule>& modules, const json& derived_from) {
  json mods = json::object();
  for (const auto& [n, m] : modules) mods[n] = m.digest;
  // nlohmann::json objects are key-sorted and dump() is deterministic: canonical.
  json canon = {{"format", fwkeys::kIdFormat}, {"modules", mods}};
  if (!derived_from.is_null()) canon[fwkeys::kDerivedFrom] = derived_from;
  return "sha256:" + to_hex(sha256(canon.dump()));
}

namespace {

std::string compute_module_digest(const fs::path& dir, const FirmwareModule& m, int threads) {
  std::vector<fs::path> files;
  for (const auto& w : m.weights) files.push_back(dir / w);
  WeightSet ws = WeightSet::open(files);
  auto tensors = digest_tensors(m.arch, ws, threads);
  std::map<std::string, std::string> assets;
  for (const auto& [role, rel] : m.assets) assets[role] = to_hex(sha256_file(dir / rel));
  return "sha256:" + to_hex(sha256(module_description(m, tensors, assets).dump()));
}

// Config against weights (shapes, missing, unexpected), without touching data.
void check_module(const fs::path& dir, const FirmwareModule& m) {
  std::vector<fs::path> files;
  for (const auto& w : m.weights) files.push_back(dir / w);
  module_arch(m.arch).validate(m.config, WeightSet::open(files), (dir / m.weights[0]).string());
}

}  // namespace

Firmware Firmware::open(const fs::path& dir) {
  Firmware f;
  f.dir_ = dir;
  const fs::path mpath = dir / fwkeys::kManifestFile;
  M4_CHECK(fs::is_directory(dir), ErrorCode::kIo, dir.string(), ": not a firmware directory (does not exist)");
  M4_CHECK(fs::exists(mpath), ErrorCode::kIo, dir.string(), ": no ", fwkeys::kManifestFile,
           " (hint: create one with `m4forge firmware import-hf` or `init-demo`)");
  f.manifest_ = FirmwareManifest::from_json(read_json_file(mpath), mpath.string());
  for (const auto& [name, m] : f.manifest_.modules) {
    std::vector<std::string> listed = m.weights;
    for (const auto& [role, rel] : m.assets) listed.push_back(rel);
    for (const auto& rel : listed) {
      auto it = m.file_sizes.find(rel);
      M4_CHECK(it != m.file_sizes.end(), ErrorCode::kBadInput, mpath.string(), ": module '", name,
               "' lists ", rel, " without its size in 'files'");
      const fs::path p = dir / rel;
      M4_CHECK(fs::exists(p), ErrorCode::kMismatch, p.string(), ": missing (module '", name,
               "' of firmware ", f.manifest_.name, "@", f.manifest_.version, ")");
      const uint64_t size = fs::file_size(p);
      M4_CHECK(size == it->second, ErrorCode::kMismatch, p.string(), ": ", size, " bytes but ",
               it->second, " at import (hint: the firmware directory was changed after import)");
    }
  }
  // The recorded id must be the one its recorded module digests give.
  M4_CHECK(firmware_id_of(f.manifest_.modules, f.manifest_.derived_from) == f.manifest_.firmware_id,
           ErrorCode::kMismatch, mpath.string(),
           ": firmware_id does not match the module digests and derived_from record it lists (hint: "
           "firmware.json was edited by hand)");
  return f;
}

const FirmwareModule& Firmware::module(const std::string& name) const {
  auto it = manifest_.modules.find(name);
  if (it == manifest_.modules.end()) {
    std::string have;
    for (const auto& [n, _] : manifest_.modules) have += (have.empty() ? "" : ", ") + n;
    M4_FAIL(ErrorCode::kMismatch, dir_.string(), ": firmware ", manifest_.name, "@", manifest_.version,
            " has no module '", name, "' (it has: ", have, ")");
  }
  return it->second;
}

WeightSet Firmware::weights(const std::string& name) const {
  std::vector<fs::path> files;
  for (const auto& w : module(name).weights) files.push_back(dir_ / w);
  return WeightSet::open(files);
}

std::shared_ptr<LlamaImpl> Firmware::load_backbone(const LlamaLoadOptions& options) const {
  const FirmwareModule& m = module(fwkeys::kBackbone);
  M4_CHECK(m.arch == fwkeys::kArchLlama, ErrorCode::kMismatch, dir_.string(), ": backbone arch '", m.arch,
           "' is not llama");
  const std::string where = (dir_ / fwkeys::kManifestFile).string();
  LlamaConfig c = LlamaConfig::from_json(m.config, where + " module backbone");
  return std::make_shared<LlamaImpl>(c, weights(fwkeys::kBackbone), (dir_ / m.weights[0]).string(), options);
}

Tokenizer Firmware::tokenizer(const std::string& name) const {
  const FirmwareModule& m = module(name);
  auto it = m.assets.find("tokenizer.model");
  M4_CHECK(it != m.assets.end(), ErrorCode::kMismatch, dir_.string(), ": module '", name,
           "' has no tokenizer (hint: import a checkpoint with tokenizer.model, or pass token ids)");
  return Tokenizer::load(dir_ / it->second);
}

ClipTokenizer Firmware::clip_tokenizer(const std::string& name) const {
  const FirmwareModule& m = module(name);
  M4_CHECK(m.assets.count("vocab.json") && m.assets.count("merges.txt"), ErrorCode::kMismatch, dir_.string(), ": module '", name,
           "' has no vocab.json/merges.txt to encode texts with (hint: pass input_ids instead)");
  return ClipTokenizer::load(dir_ / m.assets.at("vocab.json"), dir_ / m.assets.at("merges.txt"));
}

FirmwareIdentity Firmware::compute_identity(int threads) const {
  FirmwareIdentity id;
  std::map<std::string, FirmwareModule> mods = manifest_.modules;
  for (auto& [name, m] : mods) {
    m.digest = compute_module_digest(dir_, m, threads);
    id.module_digests[name] = m.digest;
  }
  id.firmware_id = firmware_id_of(mods, manifest_.derived_from);
  return id;
}

std::optional<std::string> Firmware::digest_cache_key(const std::string& name) const {
  const FirmwareModule& m = module(name);
  std::vector<fs::path> files;
  for (const auto& w : m.weights) files.push_back(dir_ / w);
  for (const auto& [role, rel] : m.assets) files.push_back(dir_ / rel);
  return DigestCache::key(json({{"arch", m.arch}, {"config", m.config}, {"weights", m.weights}, {"assets", m.assets}}).dump(), files);
}

void Firmware::verify_modules(const std::vector<std::string>& names, int threads) const {
  const DigestCache cache = DigestCache::open_default();
  for (const auto& name : names) {
    M4_CHECK(manifest_.modules.count(name), ErrorCode::kMismatch, dir_.string(), ": no module '", name, "' in ", label());
    const FirmwareModule& m = manifest_.modules.at(name);
    // Files unchanged since they last hashed to the recorded digest (digest_cache.h): no re-hash.
    const auto key = cache.enabled() ? digest_cache_key(name) : std::nullopt;
    if (key && cache.lookup(*key) == m.digest) continue;
    const std::string digest = compute_module_digest(dir_, m, threads);
    M4_CHECK(digest == m.digest, ErrorCode::kMismatch, dir_.string(), ": module '", name,
             "' content changed since import (digest ", digest, ", recorded ", m.digest,
             "): its bytes are not the firmware_id's (hint: re-import the firmware, or `firmware inspect --verify`)");
    if (key) cache.store(*key, digest);
  }
}

void Firmware::verify(int threads) const {
  // Keys before hashing: a file changed while it is hashed has another key next time.
  const DigestCache cache = DigestCache::open_default();
  std::map<std::string, std::optional<std::string>> keys;
  if (cache.enabled()) {
    for (const auto& [name, m] : manifest_.modules) keys[name] = digest_cache_key(name);
  }
  FirmwareIdentity id = compute_identity(threads);
  for (const auto& [name, digest] : id.module_digests) {
    M4_CHECK(digest == manifest_.modules.at(name).digest, ErrorCode::kMismatch, dir_.string(), ": module '",
             name, "' content changed since import (digest ", digest, ", recorded ",
             manifest_.modules.at(name).digest, ")");
  }
  M4_CHECK(id.firmware_id == manifest_.firmware_id, ErrorCode::kMismatch, dir_.string(),
           ": recomputed firmware_id ", id.firmware_id, " differs from the recorded ", manifest_.firmware_id);
  for (const auto& [name, key] : keys) {  // every module hashed to its recorded digest: refresh the cache
    if (key) cache.store(*key, id.module_digests.at(name));
  }
  // The bytes are the recorded ones; they must also be numbers. A NaN or an
  // infinity in a weight (an imported checkpoint that diverged) makes every
  // output NaN, whatever adapter rides on it.
  for (const auto& [name, m] : manifest_.modules) {
    std::vector<fs::path> files;
    for (const auto& w : m.weights) files.push_back(dir_ / w);
    const WeightSet ws = WeightSet::open(files);
    for (const auto& t : ws.names()) {
      const at::Tensor x = ws.tensor(t);
      if (!at::isFloatingType(x.scalar_type()) || x.numel() == 0 || at::isfinite(x).all().item<bool>()) continue;
      M4_FAIL(ErrorCode::kBadInput, dir_.string(), ": module '", name, "' tensor '", t, "' holds NaN or infinite values (",
              at::isnan(x).sum().item<int64_t>(), " NaN, ", at::isinf(x).sum().item<int64_t>(), " infinite of ", x.numel(),
              ")");
    }
  }
}

FirmwareManifest create_firmware(const fs::path& out, const std::string& name, const std::string& version,
                                 const json& provenance, const ModulePopulator& populate, const json& derived_from) {
  check_firmware_name_version(name, version);
  if (fs::exists(out)) {
    M4_CHECK(fs::is_directory(out) && fs::is_empty(out), ErrorCode::kInvalidArgument, out.string(),
             ": already exists and is not an empty directory (refusing to overwrite; choose another --out)");
    fs::remove(out);
  }
  const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  fs::create_directories(parent);
  std::string staging_name(1, '.');  // appended piecewise: GCC 12 misreads "." + std::string as an overflow
  staging_name.append(out.filename().string()).append(".staging-").append(std::to_string(::getpid()));
  const fs::path staging = parent / staging_name;
  fs::remove_all(staging);
  fs::create_directories(staging);
  struct Cleanup {
    fs::path p;
    bool armed = true;
    ~Cleanup() {
      std::error_code ec;
      if (armed) fs::remove_all(p, ec);
    }
  } cleanup{staging};

  FirmwareManifest m;
  m.name = name;
  m.version = version;
  m.created_by = std::string("m4forge ") + m4forge_version() + " (" + m4forge_revision() + ")";
  m.provenance = provenance;
  m.modules = populate(staging);
  for (auto& [mod_name, mod] : m.modules) {
    check_module(staging, mod);
    std::vector<std::string> files = mod.weights;
    for (const auto& [role, rel] : mod.assets) files.push_back(rel);
    for (const auto& rel : files) mod.file_sizes[rel] = fs::file_size(staging / rel);
    mod.digest = compute_module_digest(staging, mod, 0);
  }
  m.derived_from = derived_from;
  if (!derived_from.is_null()) {
    std::vector<std::string> problems;
    check_derived_from(derived_from, m.modules, &problems);
    check_problems(problems, "derived_from of " + out.string());
  }
  m.firmware_id = firmware_id_of(m.modules, m.derived_from);
  write_file_atomic(staging / fwkeys::kManifestFile, m.to_json().dump(1) + "\n");
  fs::rename(staging, out);
  cleanup.armed = false;
  return m;
}

std::map<std::string, fs::path> ImportHfOptions::sources() const {
  std::map<std::string, fs::path> m;
  if (backbone) m["backbone"] = *backbone;
  if (img_enc) m["img_enc"] = *img_enc;
  if (txt_enc) m["txt_enc"] = *txt_enc;
  if (aud_i_enc) m["aud_i_enc"] = *aud_i_enc;
  if (aud_b_enc) m["aud_b_enc"] = *aud_b_enc;
  if (imu_enc) m["imu_enc"] = *imu_enc;
  return m;
}

namespace {

// What import-hf learned about one source directory before copying anything.
struct ImportPlan {
  const ModuleArch* arch = nullptr;
  fs::path src;
  json config;                       // normalised
  std::vector<std::string> files;    // weight files (names in src)
  bool filter = false;               // some tensors are not the module's: rewrite
  std::vector<std::string> assets;   // tokenizer files present in src
  bool preprocessor = false;         // preprocessor_config.json read into the config
};

constexpr const char* kPreprocessorFile = "preprocessor_config.json";

ImportPlan plan_import(const std::string& slot, const fs::path& src) {
  ImportPlan p;
  p.arch = &arch_for_slot(slot);
  p.src = src;
  M4_CHECK(fs::is_directory(src), ErrorCode::kIo, src.string(), ": not a directory (--", slot, ")");
  const fs::path cfg = src / "config.json";
  p.config = p.arch->normalize(read_json_file(cfg), cfg.string());
  const fs::path pre = src / kPreprocessorFile;
  if (p.arch->with_preprocessor != nullptr && fs::exists(pre)) {
    p.config = p.arch->with_preprocessor(p.config, read_json_file(pre), pre.string());
    p.preprocessor = true;
  }
  WeightSet ws = WeightSet::open_hf_dir(src);
  p.arch->validate(p.config, ws, src.string());
  for (const auto& f : ws.files()) p.files.push_back(f.path().filename().string());
  for (const auto& n : ws.names()) p.filter = p.filter || p.arch->internal_name(n).empty();
  for (const auto& a : p.arch->assets) {
    if (fs::exists(src / a)) p.assets.push_back(a);
  }
  if (!p.assets.empty() && p.assets.size() != p.arch->assets.size()) {
    std::string all;
    for (const auto& a : p.arch->assets) all += (all.empty() ? "" : " and ") + a;
    M4_FAIL(ErrorCode::kIo, src.string(), ": has ", p.assets[0], " but not all of ", all,
            " (the tokenizer needs every one)");
  }
  if (std::find(p.assets.begin(), p.assets.end(), "vocab.json") != p.assets.end()) {
    ClipTokenizer::load(src / "vocab.json", src / "merges.txt");  // must parse
  }
  if (std::find(p.assets.begin(), p.assets.end(), "tokenizer.model") != p.assets.end()) {
    Tokenizer::load(src / "tokenizer.model");  // must parse
  }
  return p;
}

FirmwareModule stage_module(const std::string& slot, const ImportPlan& p, const fs::path& staging) {
  FirmwareModule m;
  m.arch = p.arch->name;
  m.config = p.config;
  fs::create_directories(staging / slot);
  if (p.filter) {
    // Keep only the module's tensors (as stored); the views come straight from
    // the source mapping, so this writes each byte once and copies none twice.
    WeightSet ws = WeightSet::open_hf_dir(p.src);
    NamedTensors keep;
    for (const auto& n : ws.names()) {
      if (!p.arch->internal_name(n).empty()) keep.emplace_back(n, ws.tensor(n));
    }
    write_safetensors(staging / slot / "model.safetensors", keep, {{"format", "pt"}});
    m.weights.push_back(slot + "/model.safetensors");
  } else {
    for (const auto& f : p.files) {
      fs::copy_file(p.src / f, staging / slot / f);
      m.weights.push_back(slot + "/" + f);
    }
  }
  fs::copy_file(p.src / "config.json", staging / slot / "config.json");
  // Informational, as config.json: what it set is in the (hashed) normalised config.
  if (p.preprocessor) fs::copy_file(p.src / kPreprocessorFile, staging / slot / kPreprocessorFile);
  for (const auto& a : p.assets) {
    fs::copy_file(p.src / a, staging / slot / a);
    m.assets[a] = slot + "/" + a;
  }
  return m;
}

}  // namespace

FirmwareManifest import_hf(const ImportHfOptions& o) {
  const auto sources = o.sources();
  M4_CHECK(!sources.empty(), ErrorCode::kInvalidArgument,
           "import-hf needs at least one module directory (--backbone, --img-enc, --txt-enc, --aud-i-enc, --aud-b-enc, --imu-enc)");
  check_firmware_name_version(o.name, o.version);
  // Validate every source before copying anything.
  std::map<std::string, ImportPlan> plans;
  json provenance = json::object();
  for (const auto& [slot, src] : sources) {
    plans[slot] = plan_import(slot, src);
    provenance[slot] = {{"source", fs::absolute(src).string()}, {"arch", plans[slot].arch->name},
                        {"filtered", plans[slot].filter}};
    if (plans[slot].arch->with_preprocessor != nullptr)
      provenance[slot]["front_end"] = plans[slot].preprocessor ? std::string(kPreprocessorFile) + " of the source"
                                                               : std::string("HF's defaults (no ") + kPreprocessorFile + ")";
  }
  return create_firmware(o.out, o.name, o.version, provenance, [&](const fs::path& staging) {
    std::map<std::string, FirmwareModule> mods;
    for (const auto& [slot, p] : plans) mods[slot] = stage_module(slot, p, staging);
    return mods;
  });
}

}  // namespace m4
