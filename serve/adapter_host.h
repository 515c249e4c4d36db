// The device side of M4: one firmware resident once and many apps' verified
// adapters beside it. Every adapter's model is built over the same loaded
// firmware modules (one ModuleCache: the weights are mapped once, never copied
// per adapter); a request lends the modules to its adapter for the time it
// runs (the adapter's hooks are set, the model runs, the hooks are removed),
// so requests for different adapters interleave without reloading anything.
// Requests are serialized on the shared modules; loading verifies the bundle
// with the trusted keys, binds it to the firmware and re-runs its canary.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bundle/minisign.h"
#include "data/loader.h"

namespace m4 {

class Firmware;
class ModuleCache;
struct BundleModel;

struct HostedAdapter {
  std::string name;
  std::filesystem::path bundle;
  std::string task, modality;  // modality: image, audio, imu, or text
  int path = 0;
  uint64_t adapter_bytes = 0;
  std::string canary;  // its verdict when loaded
  int64_t loaded_at = 0;
  nlohmann::json to_json() const;
};

struct HostPrediction {
  std::string text;
  int64_t label = -1;
  std::vector<float> scores;
};

class AdapterHost {
 public:
  // `fw` must outlive the host. Bundles must be signed by one of `keys`.
  AdapterHost(const Firmware& fw, std::vector<minisign::PublicKey> keys);
  ~AdapterHost();
  AdapterHost(const AdapterHost&) = delete;
  AdapterHost& operator=(const AdapterHost&) = delete;

  // Verifies (signature by a trusted key, picked by the signature's key id; digests), binds (firmware_id and
  // content), builds the model on the shared modules and re-runs the canary;
  // then `name` serves it. m4::Error naming the bundle on any failure (and
  // nothing changes); kInvalidArgument when `name` is taken or malformed.
  HostedAdapter load(const std::string& name, const std::filesystem::path& bundle);
  // False when no adapter has that name. A request already running finishes.
  bool unload(const std::string& name);
  std::vector<HostedAdapter> list() const;
  // One prediction on `input` (a batch of one). kNotFound-like: m4::Error
  // (kInvalidArgument) "no adapter 'x'" when unknown; the model's errors otherwise.
  HostPrediction predict(const std::string& name, const data::Batch& input);
  bool has(const std::string& name) const;

  const Firmware& firmware() const { return fw_; }

 private:
  struct Entry;
  const Firmware& fw_;
  std::vector<minisign::PublicKey> keys_;
  std::unique_ptr<ModuleCache> modules_;
  std::mutex run_;                   // the shared modules: one adapter at a time
  mutable std::mutex table_;         // the adapter table
  std::map<std::string, std::shared_ptr<Entry>> adapters_;
};

}  // namespace m4
