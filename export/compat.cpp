// Bundle-vs-firmware classification (see compat.h).
#include "export/compat.h"

#include <set>

#include "bundle/bundle_reader.h"
#include "core/error.h"
#include "export/bundle_model.h"
#include "export/canary.h"
#include "firmware/firmware.h"

namespace m4 {

const char* compat_status_name(CompatStatus s) {
  switch (s) {
    case CompatStatus::kOk: return "ok";
    case CompatStatus::kDerived: return "derived";
    case CompatStatus::kRetrain: return "retrain";
    case CompatStatus::kIncompatible: return "incompatible";
    case CompatStatus::kBad: return "bad";
  }
  return "bad";
}

nlohmann::json CompatRow::to_json() const {
  nlohmann::json j = {{"bundle", bundle.string()}, {"status", compat_status_name(status)}, {"task", task},
                      {"firmware", firmware},      {"detail", detail}};
  if (!canary.empty()) j["canary"] = canary;
  return j;
}

bool compat_accepted(const CompatRow& row, const CompatPolicy& policy) {
  return row.status == CompatStatus::kOk ||
         (policy.allow_retrain && row.status == CompatStatus::kRetrain && row.canary_holds) ||
         (policy.allow_derived && row.status == CompatStatus::kDerived && row.canary_holds);
}

CompatRow classify_bundle(const std::filesystem::path& bundle, const minisign::PublicKey* key, const Firmware& fw,
                          const FirmwareShapes& shapes) {
  CompatRow row;
  row.bundle = bundle;
  VerifiedBundle v;
  try {
    v = verify_bundle(bundle, key);
  } catch (const Error& e) {
    row.detail = e.what();
    // The row already names the bundle; keep only the failed check.
    const std::string prefix = bundle.string() + ": ";
    if (row.detail.rfind(prefix, 0) == 0) row.detail = row.detail.substr(prefix.size());
    return row;
  }
  const BundleManifest& m = v.manifest;
  row.task = m.task;
  row.firmware = m.firmware_name + "@" + m.firmware_version;
  if (m.firmware_id == fw.id()) {
    if (const auto diff = first_touched_difference(m, shapes, fw.label())) {
      // Same id but a missing tensor means the firmware directory was altered after import.
      row.status = CompatStatus::kIncompatible;
      row.detail = *diff;
      return row;
    }
    row.status = CompatStatus::kOk;
    row.detail = "bound to this firmware (" + fw.id() + ")";
    row.modules = bundle_modules(m);
    return row;
  }
  if (const auto diff = first_touched_difference(m, shapes, fw.label())) {
    row.status = CompatStatus::kIncompatible;
    row.detail = *diff;
    return row;
  }
  if (const auto relation = derivation_between(m, fw)) {
    row.status = CompatStatus::kDerived;
    row.detail = *relation;
    row.modules = bundle_modules(m);  // deployable under a policy: its modules are re-hashed as an ok row's
  } else {
    row.status = CompatStatus::kRetrain;
    bool same_modules = !m.module_digests.empty();
    for (const auto& [mod, digest] : m.module_digests) {
      same_modules = same_modules && fw.has(mod) && fw.module(mod).digest == digest;
    }
    row.detail = same_modules ? "other firmware_id, but the touched modules' weights are identical; retrain or re-export to bind"
                              : "all " + std::to_string(m.touched.size()) +
                                    " touched tensors have the same shapes but the weights differ: retrain on " + fw.label();
  }
  // What the adapter does on this firmware, measured: its canary.
  if (m.canary) {
    const BundleManifest::Canary entry = *m.canary;  // `m` goes with `v`
    try {
      BundleModel bm = build_bundle_model(fw, std::move(v));
      const CanaryResult r = run_canary(*bm.model, bm.bundle.canary, entry, bundle.string());
      row.canary = r.describe();
      row.canary_holds = r.verdict == CanaryVerdict::kOk ||
                         (row.status == CompatStatus::kDerived && r.verdict == CanaryVerdict::kDrift);
    } catch (const Error& e) {
      row.canary = std::string("does not run here: ") + e.what();
      row.canary_holds = false;
    }
  }
  return row;
}

std::vector<CompatRow> classify_bundles(const std::vector<std::filesystem::path>& bundles, const minisign::PublicKey* key,
                                        const Firmware& fw) {
  const FirmwareShapes shapes = firmware_shapes(fw);
  std::vector<CompatRow> rows;
  std::set<std::string> needed;
  for (const auto& b : bundles) {
    rows.push_back(classify_bundle(b, key, fw, shapes));
    needed.insert(rows.back().modules.begin(), rows.back().modules.end());
  }
  fw.verify_modules({needed.begin(), needed.end()});
  return rows;
}

}  // namespace m4
