// A task's model built from a verified bundle alone, as a device builds it:
// signature and digests checked, the binding to this exact firmware checked,
// then the model made from the bundle's own config, template and labels with
// the adapter loaded fail-closed from the bundle's bytes (no file extracted),
// and its canary re-run: an adapter that drifted or has no effect is refused.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include "bundle/bundle_reader.h"
#include "bundle/minisign.h"
#include "export/canary.h"
#include "task/task_model.h"

namespace m4 {

class Firmware;
class ModuleCache;

struct BundleModel {
  VerifiedBundle bundle;
  std::unique_ptr<TaskModel> model;
  std::optional<CanaryResult> canary;  // unset: a bundle made before canaries
};

BundleModel open_bundle_model(const Firmware& fw, const std::filesystem::path& bundle, const minisign::PublicKey& key);
// The same from a bundle already verified and bound to `fw` (check_binding).
// With `modules`, the model runs on those resident firmware modules (a host
// of many adapters) instead of loading its own.
BundleModel open_bound_bundle_model(const Firmware& fw, VerifiedBundle bundle, ModuleCache* modules = nullptr);
// The model alone, the canary not run (compat runs it on firmware the bundle
// is not bound to, to measure the drift).
BundleModel build_bundle_model(const Firmware& fw, VerifiedBundle bundle, ModuleCache* modules = nullptr);

}  // namespace m4
