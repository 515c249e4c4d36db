// The manifest of a .m4adapter bundle (docs/bundle-format.md): what the adapter
// is for, which firmware content it binds to, and the digests that pin its bytes.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace m4 {

// Every name the writer and the reader must agree on, declared once.
namespace bundlekeys {
inline constexpr const char* kFormatTag = "m4forge-bundle/1";
// Archive entries, in the order the writer stores them.
inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kAdapterFile = "adapter.safetensors";
inline constexpr const char* kCanaryFile = "canary.safetensors";  // export/canary.h; absent from bundles made before it
inline constexpr const char* kSignatureFile = "manifest.json.minisig";
// Entry size limits the reader enforces before touching any data.
inline constexpr uint64_t kMaxManifestBytes = 1ULL << 20;
inline constexpr uint64_t kMaxAdapterBytes = 4ULL << 30;
inline constexpr uint64_t kMaxSignatureBytes = 4096;
inline constexpr uint64_t kMaxCanaryBytes = 64ULL << 20;
// manifest.json keys
inline constexpr const char* kFormat = "format";
inline constexpr const char* kCreated = "created";  // unix seconds; also every tar entry's mtime
inline constexpr const char* kTask = "task";
inline constexpr const char* kTaskName = "name";
inline constexpr const char* kTaskPath = "path";
inline constexpr const char* kTaskConfig = "config";
inline constexpr const char* kPeft = "peft";
inline constexpr const char* kPrompt = "prompt";
inline constexpr const char* kPromptId = "id";
inline constexpr const char* kPromptTemplate = "template";
inline constexpr const char* kPromptLabels = "labels";
inline constexpr const char* kFirmware = "firmware";
inline constexpr const char* kFirmwareId = "firmware_id";
inline constexpr const char* kFirmwareName = "name";
inline constexpr const char* kFirmwareVersion = "version";
inline constexpr const char* kModuleDigests = "module_digests";
inline constexpr const char* kTouched = "touched";
// The firmware's own derived_from record (firmware.json), when it is derived
// from another (quantized): so compat can name the relation from either side.
inline constexpr const char* kDerivedFrom = "derived_from";
inline constexpr const char* kAdapter = "adapter";
inline constexpr const char* kSha256 = "sha256";
inline constexpr const char* kSize = "size";
inline constexpr const char* kTensors = "tensors";
inline constexpr const char* kName = "name";
inline constexpr const char* kShape = "shape";
inline constexpr const char* kDtype = "dtype";
inline constexpr const char* kCanary = "canary";  // {name, sha256, size, probes, seed, output, tolerance, effect}
inline constexpr const char* kCanaryProbes = "probes";
inline constexpr const char* kCanarySeed = "seed";
inline constexpr const char* kCanaryOutput = "output";        // what the probe outputs are, in words
inline constexpr const char* kCanaryTolerance = "tolerance";  // max |diff| accepted against the expected outputs
inline constexpr const char* kCanaryEffect = "effect";        // max |adapter - no adapter| at export
inline constexpr const char* kProvenance = "provenance";
inline constexpr const char* kDatasetDigests = "dataset_digests";
inline constexpr const char* kTraining = "training";
inline constexpr const char* kMetrics = "metrics";
inline constexpr const char* kM4forge = "m4forge";
inline constexpr const char* kVersion = "version";
inline constexpr const char* kRevision = "revision";
// The trusted comment: "m4forge bundle task=<t> firmware_id=<id> timestamp=<created>".
inline constexpr const char* kCommentPrefix = "m4forge bundle";
inline constexpr const char* kCommentFirmwareId = "firmware_id=";
}  // namespace bundlekeys

struct BundleTensor {
  std::string name;
  std::string dtype;  // adapter tensors only ("F32"); empty for firmware tensors
  std::vector<int64_t> shape;
};

struct BundleManifest {
  int64_t created = 0;
  std::string task;
  int path = 0;
  nlohmann::json task_config = nlohmann::json::object();  // the resolved task config
  nlohmann::json peft = nlohmann::json::object();         // PeftConfig::to_json()
  std::string prompt_id;                                  // template id ("" when the task has none)
  nlohmann::json prompt_template;                         // PromptTemplate::to_json(), null when the task has none
  std::vector<std::string> labels;                        // verbalizer texts, label id order
  std::string firmware_id, firmware_name, firmware_version;
  nlohmann::json firmware_derived_from;               // the firmware's derived_from record; null when none
  std::map<std::string, std::string> module_digests;  // modules the adapter touches
  std::vector<BundleTensor> touched;                  // firmware tensors, sorted by name
  std::string adapter_sha256;                         // "sha256:<hex>"
  uint64_t adapter_size = 0;
  std::vector<BundleTensor> adapter_tensors;  // what adapter.safetensors holds, sorted by name
  nlohmann::json provenance = nlohmann::json::object();
  // The canary entry (docs/bundle-format.md); null in bundles made before canaries.
  struct Canary {
    std::string sha256;
    uint64_t size = 0;
    int64_t probes = 0;
    uint64_t seed = 0;
    std::string output;
    double tolerance = 0, effect = 0;
  };
  std::optional<Canary> canary;

  nlohmann::json to_json() const;
  // Validates types and required keys, every problem in one m4::Error naming `where`.
  static BundleManifest from_json(const nlohmann::json& j, const std::string& where);
  // The bytes that are signed: deterministic (sorted keys, fixed indent), newline-terminated.
  std::string serialize() const;
  std::string trusted_comment() const;
};

// "[8, 2048]"
std::string shape_str(const std::vector<int64_t>& shape);
// The firmware_id named in a trusted comment, or "" when it names none.
std::string firmware_id_in_comment(const std::string& trusted_comment);

}  // namespace m4
