// `m4forge compat`: one row per bundle classifying it against a firmware:
// ok (exact firmware_id), derived (one firmware is the other quantized, or
// both are quantized from one source), retrain (same touched shapes, other
// weights), incompatible (first offending tensor), bad (fails verification).
// A retrain or derived row's canary is run on the firmware: its drift is part
// of the row. A retrain row whose canary drifted is not deployable even with
// --allow-retrain; a derived row (quantization moves every output a little)
// is deployable with --allow-derived unless its canary lost its effect there.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bundle/minisign.h"
#include "export/firmware_binding.h"

namespace m4 {

enum class CompatStatus { kOk, kDerived, kRetrain, kIncompatible, kBad };
const char* compat_status_name(CompatStatus s);

struct CompatRow {
  std::filesystem::path bundle;
  CompatStatus status = CompatStatus::kBad;
  std::string task;         // empty when the bundle is bad
  std::string firmware;     // what the bundle is bound to: "name@version"
  std::string detail;       // why (the offending tensor, the failed check, ...)
  std::vector<std::string> modules;  // ok rows: the firmware modules the bundle depends on
  std::string canary;                // retrain/derived rows with a canary: its verdict here (CanaryResult::describe)
  bool canary_holds = true;          // retrain: the canary is ok here; derived: it runs and keeps its effect
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
struct CompatPolicy {
  bool allow_retrain = false;  // retrain rows whose canary holds
  bool allow_derived = false;  // derived rows whose canary keeps its effect
};
// Whether the row may be deployed under the policy: ok, or an allowed class
// whose canary holds on this firmware.
bool compat_accepted(const CompatRow& row, const CompatPolicy& policy);

}  // namespace m4
