// How a bundle's recorded firmware (id, touched tensor shapes) relates to an
// actual firmware: the exact binding verify/run require and the classes compat reports.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bundle/bundle_manifest.h"

namespace m4 {

class Firmware;

// Full dotted internal names ("backbone.layers.0.self_attn.q_proj.weight") ->
// shape, for every tensor of every module; read from headers only.
using FirmwareShapes = std::map<std::string, std::vector<int64_t>>;
FirmwareShapes firmware_shapes(const Firmware& fw);

// The first touched tensor (in name order) that `shapes` lacks or has with
// another shape, described in one phrase; nullopt when all fit.
std::optional<std::string> first_touched_difference(const BundleManifest& m, const FirmwareShapes& shapes,
                                                    const std::string& fw_label);

// How the bundle's firmware and `fw` derive from one another (one is the
// other quantized, or both are quantized from one source), by their
// derived_from records, in one phrase starting "derived: "; nullopt when
// neither does. Only ids are compared: the records are covered by the ids.
std::optional<std::string> derivation_between(const BundleManifest& m, const Firmware& fw);

// The firmware modules a bundle depends on: those its adapter touches and
// those on its task's path, sorted.
std::vector<std::string> bundle_modules(const BundleManifest& m);

// verify --firmware / run: the manifest's firmware_id must be `fw`'s, every
// touched tensor present with its recorded shape, and (binding means content)
// the bytes of every module the bundle depends on re-hashed to the digests the
// firmware_id covers: a firmware edited in place binds nothing. Throws naming `where`.
void check_binding(const BundleManifest& m, const Firmware& fw, const std::string& where);

}  // namespace m4
