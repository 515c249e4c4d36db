// Firmware binding checks (see firmware_binding.h).
#include "export/firmware_binding.h"

#include <set>

#include "core/error.h"
#include "firmware/firmware.h"
#include "firmware/module_arch.h"
#include "firmware/quantized_weight.h"

namespace m4 {

FirmwareShapes firmware_shapes(const Firmware& fw) {
  FirmwareShapes out;
  for (const auto& [name, mod] : fw.manifest().modules) {
    const ModuleArch& arch = module_arch(mod.arch);
    const WeightSet ws = fw.weights(name);
    for (const auto& stored : ws.names()) {
      if (!quantized_weight_of_scale(ws, stored).empty()) continue;  // part of its weight
      const std::string internal = arch.internal_name(stored);
      if (internal.empty()) continue;
      // A quantized weight has the shape it dequantizes to: an adapter fits it as it fits the source.
      const TensorInfo& info = ws.info(stored);
      out[name + "." + internal] = is_quantized_weight(ws, stored) ? quantized_logical_shape(info) : info.shape;
    }
  }
  return out;
}

std::optional<std::string> first_touched_difference(const BundleManifest& m, const FirmwareShapes& shapes,
                                                    const std::string& fw_label) {
  for (const auto& t : m.touched) {
    const auto it = shapes.find(t.name);
    if (it == shapes.end()) return "tensor '" + t.name + "' " + shape_str(t.shape) + " is missing from " + fw_label;
    if (it->second != t.shape)
      return "tensor '" + t.name + "' has shape " + shape_str(it->second) + " in " + fw_label + " but the bundle needs " +
             shape_str(t.shape);
  }
  return std::nullopt;
}

std::optional<std::string> derivation_between(const BundleManifest& m, const Firmware& fw) {
  const nlohmann::json& here = fw.manifest().derived_from;
  const nlohmann::json& theirs = m.firmware_derived_from;
  const auto source = [](const nlohmann::json& d) -> std::string {
    return d.is_object() && d.contains("firmware_id") && d["firmware_id"].is_string() ? d["firmware_id"].get<std::string>() : "";
  };
  const std::string bundle_fw = "the bundle's firmware " + m.firmware_name + "@" + m.firmware_version;
  if (!source(here).empty() && source(here) == m.firmware_id)
    return "derived: " + fw.label() + " is " + describe_derivation(here) + " (" + bundle_fw + ")";
  if (!source(theirs).empty() && source(theirs) == fw.id())
    return "derived: " + bundle_fw + " is " + describe_derivation(theirs) + " (this firmware)";
  if (!source(here).empty() && source(here) == source(theirs))
    return "derived: " + fw.label() + " is " + describe_derivation(here) + ", and " + bundle_fw + " is " +
           describe_derivation(theirs);
  return std::nullopt;
}

std::vector<std::string> bundle_modules(const BundleManifest& m) {
  std::set<std::string> mods;
  for (const auto& [mod, digest] : m.module_digests) mods.insert(mod);
  if (m.task_config.contains("modules") && m.task_config["modules"].is_array()) {
    for (const auto& mod : m.task_config["modules"]) {
      if (mod.is_string()) mods.insert(mod.get<std::string>());
    }
  }
  return {mods.begin(), mods.end()};
}

void check_binding(const BundleManifest& m, const Firmware& fw, const std::string& where) {
  if (m.firmware_id != fw.id()) {
    const auto relation = derivation_between(m, fw);
    M4_FAIL(ErrorCode::kMismatch, where, ": firmware binding: bundle is bound to ", m.firmware_name, "@", m.firmware_version,
            " (", m.firmware_id, ") but ", fw.dir().string(), " is ", fw.label(), " (", fw.id(), ")",
            relation ? "; " + *relation + " (hint: `m4forge compat --allow-derived` measures its canary there)"
                     : std::string(" (hint: m4forge compat tells whether the adapter needs retraining)"));
  }
  const auto diff = first_touched_difference(m, firmware_shapes(fw), fw.label());
  M4_CHECK(!diff, ErrorCode::kMismatch, where, ": firmware binding: ", diff.value_or(""));
  try {
    fw.verify_modules(bundle_modules(m));
  } catch (const Error& e) {
    M4_FAIL(e.code(), where, ": firmware binding: ", e.what());
  }
}

}  // namespace m4
