// `m4forge compat`: one row per bundle classifying it against a firmware:
// ok (exact firmware_id), retrain (same touched shapes, other weights),
// incompatible (first offending tensor), bad (fails verification). A retrain
// row's canary is run on the firmware: its drift is part of the row, and a
// bundle whose canary drifted is not deployable even with --allow-retrain.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bundle/minisign.h"
#include "export/firmware_binding.h"

namespace m4 {

enum class CompatStatus { kOk, kRetrain, kIncompatible, kBad };
const char* compat_status_name(CompatStatus s);

struct CompatRow {
  std::filesystem::path bundle;
  CompatStatus status = CompatStatus::kBad;
  std::string task;         // empty when the bundle is bad
  std::string firmware;     // what the bundle is bound to: "name@version"
  std::string detail;       // why (the offending tensor, the failed check, ...)
  std::vector<std::string> modules;  // ok rows: the firmware modules the bundle depends on
  std::string canary;                // retrain rows with a canary: its verdict on this firmware (CanaryResult::describe)
  bool canary_holds = true;          // false: the canary drifted or lost its effect here
  nlohmann::json to_json() const;
};

// Never throws for a bad bundle: its error becomes the row's detail.
CompatRow classify_bundle(const std::filesystem::path& bundle, const minisign::PublicKey* key, const Firmware& fw,
                          const FirmwareShapes& shapes);
// Every bundle against `fw`, with the shapes read once; then the modules the
// ok rows depend on are re-hashed, once each (binding means content): a
// firmware whose bytes changed since import is an m4::Error naming the module,
// never a table of ok rows.
std::vector<CompatRow> classify_bundles(const std::vector<std::filesystem::path>& bundles, const minisign::PublicKey* key,
                                        const Firmware& fw);
// Whether the row may be deployed under the policy: ok, or (allow_retrain)
// retrain with a canary that holds on this firmware.
bool compat_accepted(const CompatRow& row, bool allow_retrain);

}  // namespace m4
