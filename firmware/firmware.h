// A firmware directory: `firmware.json` (format tag, name, semver version, the
// modules with their arch config and files) beside the weight files, and its
// content identity `firmware_id` (see docs/firmware-format.md).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "firmware/weight_set.h"

namespace m4 {

class Tokenizer;
class ClipTokenizer;
class LlamaImpl;
struct LlamaLoadOptions;

// Names that writer and reader must agree on, declared once.
namespace fwkeys {
inline constexpr const char* kFormat = "m4forge.firmware/1";
inline constexpr const char* kIdFormat = "m4forge.firmware-id/1";
inline constexpr const char* kManifestFile = "firmware.json";
inline constexpr const char* kBackbone = "backbone";
inline constexpr const char* kArchLlama = "llama";
inline constexpr const char* kDerivedFrom = "derived_from";
}  // namespace fwkeys

struct FirmwareModule {
  std::string arch;                     // a ModuleArch name: "llama", "imu", ...
  nlohmann::json config;                // normalised arch config
  std::vector<std::string> weights;     // weight files, relative to the firmware dir
  std::map<std::string, std::string> assets;   // tokenizer files: HF file name -> relative path
  std::map<std::string, uint64_t> file_sizes;  // every file above -> its size at import
  std::string digest;                   // "sha256:<hex>" over the module's canonical description
};

struct FirmwareManifest {
  std::string name;
  std::string version;      // semver X.Y.Z[-pre][+build]
  std::string firmware_id;  // "sha256:<hex>"
  std::string created_by;   // "m4forge <version> (<rev>)"
  nlohmann::json provenance = nlohmann::json::object();  // where the modules came from
  std::map<std::string, FirmwareModule> modules;
  // A firmware made from another (quantized): {firmware_id, name, version,
  // method, bits, group_size, modules} of the source; null otherwise. Part of
  // firmware_id, so the lineage cannot be edited without changing the id.
  nlohmann::json derived_from;

  nlohmann::json to_json() const;
  static FirmwareManifest from_json(const nlohmann::json& j, const std::string& where);
};

// Per-tensor record hashed into a module digest.
struct TensorDigest {
  std::string name;  // module-internal name (e.g. "layers.0.self_attn.q_proj.weight")
  std::string dtype;
  std::vector<int64_t> shape;
  std::string sha256;  // hex of the tensor's bytes
};

struct FirmwareIdentity {
  std::string firmware_id;
  std::map<std::string, std::string> module_digests;
};

class Firmware {
 public:
  // Reads and validates firmware.json and checks that every listed file exists
  // with its recorded size (a cheap guard against files changed after import;
  // `verify()` recomputes the digests). Throws m4::Error naming the problem.
  static Firmware open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  const FirmwareManifest& manifest() const { return manifest_; }
  const std::string& id() const { return manifest_.firmware_id; }
  // "firmware NAME@VERSION", for messages.
  std::string label() const { return "firmware " + manifest_.name + "@" + manifest_.version; }
  bool has(const std::string& module) const { return manifest_.modules.count(module) != 0; }
  const FirmwareModule& module(const std::string& name) const;

  WeightSet weights(const std::string& module) const;
  // Builds an encoder module (Config/Impl pair, e.g. WhisperEncoderConfig /
  // WhisperEncoderImpl) from its normalised config and zero-copy weights.
  template <typename Config, typename Impl>
  std::shared_ptr<Impl> load_module(const std::string& name) const {
    const std::string where = (dir_ / fwkeys::kManifestFile).string() + " module " + name;
    return std::make_shared<Impl>(Config::from_json(module(name).config, where), weights(name),
                                  (dir_ / module(name).weights[0]).string());
  }
  std::shared_ptr<LlamaImpl> load_backbone(const LlamaLoadOptions& options) const;
  Tokenizer tokenizer(const std::string& module = fwkeys::kBackbone) const;
  // A CLIP text module's byte-level BPE tokenizer (its vocab.json + merges.txt).
  ClipTokenizer clip_tokenizer(const std::string& module = "txt_enc") const;

  // Recomputes every digest from the files (mmap, no copy) and the id.
  FirmwareIdentity compute_identity(int threads = 0) const;
  // Throws m4::Error(kMismatch) naming the first module whose content changed.
  // Always hashes; refreshes the digest cache (firmware/digest_cache.h).
  void verify(int threads = 0) const;
  // The same for some modules only: their files re-hashed and compared with
  // the digests firmware.json records (which firmware_id covers). What a
  // bundle depends on is checked this way before it is trusted to bind. A
  // module whose files are unchanged since they last hashed to its recorded
  // digest (the digest cache) is not hashed again.
  void verify_modules(const std::vector<std::string>& names, int threads = 0) const;
  // The digest cache's key for a module: what it is and the stat identity of
  // each file it hashes (nullopt when a file cannot be stat'ed).
  std::optional<std::string> digest_cache_key(const std::string& module) const;

 private:
  std::filesystem::path dir_;
  FirmwareManifest manifest_;
};

// Hashes one module's tensors (in parallel over `threads`, 0 = hardware) as
// stored, with names mapped to the module's internal names (tensors the arch
// does not claim are left out).
std::vector<TensorDigest> digest_tensors(const std::string& arch, const WeightSet& weights, int threads);
// The canonical description of a module (its digest is the SHA-256 of dump()).
nlohmann::json module_description(const FirmwareModule& m, const std::vector<TensorDigest>& tensors,
                                  const std::map<std::string, std::string>& asset_sha256);
std::string firmware_id_of(const std::map<std::string, FirmwareModule>& modules,
                           const nlohmann::json& derived_from = nullptr);
// "FW is SRC quantized to N bits (group G)": the derived_from record in words.
std::string describe_derivation(const nlohmann::json& derived_from);

// Semver and name checks shared by import and init-demo.
void check_firmware_name_version(const std::string& name, const std::string& version);

// Writes a new firmware directory atomically: `populate` fills a staging
// directory with module files and returns the module entries (arch, config,
// weights, tokenizer); digests, sizes and firmware.json are computed here and
// the staging directory is renamed to `out` last. `out` must not exist or be empty.
using ModulePopulator = std::function<std::map<std::string, FirmwareModule>(const std::filesystem::path& staging)>;
FirmwareManifest create_firmware(const std::filesystem::path& out, const std::string& name,
                                 const std::string& version, const nlohmann::json& provenance,
                                 const ModulePopulator& populate, const nlohmann::json& derived_from = nullptr);

// `firmware import-hf`: brings HF checkpoint directories in as modules. Each
// directory's config.json, weights (model.safetensors or shards) and tokenizer
// files are validated first; weight files whose every tensor belongs to the
// module are copied as-is, others (a whole WhisperForConditionalGeneration for
// the encoder) are rewritten with the module's tensors only.
struct ImportHfOptions {
  std::filesystem::path out;
  std::string name;
  std::string version;
  std::optional<std::filesystem::path> backbone;   // LlamaForCausalLM
  std::optional<std::filesystem::path> img_enc;    // CLIPVisionModel(WithProjection) or a whole CLIPModel
  std::optional<std::filesystem::path> txt_enc;    // CLIPTextModel(WithProjection) or a whole CLIPModel, + vocab.json, merges.txt
  std::optional<std::filesystem::path> aud_i_enc;  // WhisperModel / WhisperForConditionalGeneration
  std::optional<std::filesystem::path> aud_b_enc;  // ASTModel / ASTForAudioClassification
  std::optional<std::filesystem::path> imu_enc;    // m4forge IMU encoder (config.json + model.safetensors)
  // Slot -> directory, in slot order; derived from the fields above.
  std::map<std::string, std::filesystem::path> sources() const;
};
FirmwareManifest import_hf(const ImportHfOptions& options);

}  // namespace m4
