// The canary in every bundle: a few seeded probe inputs of the task's modality
// and the outputs the adapter gave on them on the exact firmware it was
// exported for, plus the outputs with its hooks removed. Whoever loads the bundle
// re-runs the probes and refuses an adapter whose outputs moved beyond the
// stated tolerance (drift: another numeric implementation, a base that is not
// quite the one trained on) or fell back to the firmware's own (no effect: an
// adapter that loads and does nothing). canary.safetensors is pinned by the
// manifest's digest and so covered by the signature (docs/bundle-format.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bundle/bundle_manifest.h"

namespace m4 {

class TaskModel;

// Tensor names and metadata keys inside canary.safetensors, declared once.
namespace canarykeys {
inline constexpr int64_t kProbes = 4;
inline constexpr uint64_t kSeed = 0x6d34636e;  // "m4cn"
inline constexpr const char* kInputPrefix = "input.";          // input.image, input.audio, input.imu, input.input_ids
inline constexpr const char* kExpected = "expected.adapter";  // (probes, K) f32: with the adapter
inline constexpr const char* kBase = "expected.base";         // (probes, K) f32: the same model, the adapter's hooks removed
inline constexpr const char* kTextsMetadata = "texts";        // JSON {variable: [probes strings]}
// The tolerance: this fraction of the largest expected |output| (at least 1).
inline constexpr double kRelativeTolerance = 1e-3;
}  // namespace canarykeys

struct Canary {
  std::string bytes;               // canary.safetensors
  BundleManifest::Canary entry;    // what the manifest pins and states
};

// At export: the probes through `trained` (the adapter loaded), then through
// the same model with the adapter's hooks removed (LoRA, prefixes, a soft
// prompt: what an adapter that loads and is never applied gives; a projector
// or head, which the path cannot run without, stays). Leaves the adapter detached.
Canary make_canary(TaskModel& trained);

enum class CanaryVerdict { kOk, kDrift, kNoEffect };

struct CanaryResult {
  CanaryVerdict verdict = CanaryVerdict::kOk;
  double max_diff = 0;   // max |now - expected with the adapter|
  double base_diff = 0;  // max |now - expected without it|: the effect left
  double tolerance = 0;
  double effect = 0;     // the effect at export
  // "ok: max |diff| 0 <= tolerance 0.0143 (effect 2.31 at export)", "drift: ...", "no effect: ..."
  std::string describe() const;
};

// Re-runs the canary on `model` (the bundle's adapter on some firmware).
// A malformed canary is m4::Error(kBadInput) naming `where`.
CanaryResult run_canary(TaskModel& model, std::string_view canary_bytes, const BundleManifest::Canary& entry,
                        const std::string& where);
// run_canary, and m4::Error(kMismatch) "<where>: canary: drift: ..." or
// "...: no effect: ..." unless the verdict is ok.
CanaryResult check_canary(TaskModel& model, std::string_view canary_bytes, const BundleManifest::Canary& entry,
                          const std::string& where);

}  // namespace m4
