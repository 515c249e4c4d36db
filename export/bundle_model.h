// A task's model built from a verified bundle alone, as a device builds it:
// signature and digests checked, the binding to this exact firmware checked,
// then the model made from the bundle's own config, template and labels with
// the adapter loaded fail-closed from the bundle's bytes (no file extracted).
#pragma once

#include <filesystem>
#include <memory>

#include "bundle/bundle_reader.h"
#include "bundle/minisign.h"
#include "task/task_model.h"

namespace m4 {

class Firmware;

struct BundleModel {
  VerifiedBundle bundle;
  std::unique_ptr<TaskModel> model;
};

BundleModel open_bundle_model(const Firmware& fw, const std::filesystem::path& bundle, const minisign::PublicKey& key);

}  // namespace m4
