// The architectures a firmware module can have, in one table: the module slot
// each usually fills, how its stored tensor names map to module names, how its
// config and weights are validated, and which tokenizer files travel with it.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace m4 {

class WeightSet;

struct ModuleArch {
  std::string name;  // "llama", "clip_vision", ...
  std::string slot;  // the module slot it fills by default: "backbone", "img_enc", ...
  // HF config.json (or our normalised form) -> normalised config; every
  // problem reported in one m4::Error naming `where`.
  nlohmann::json (*normalize)(const nlohmann::json& config, const std::string& where);
  // Stored tensor name -> module-internal name; "" if the tensor belongs to
  // something else (another tower, a decoder) and is not part of the module.
  std::string (*internal_name)(const std::string& stored);
  // The inverse: internal name -> the name the upstream checkpoint stores.
  std::string (*stored_name)(const std::string& internal);
  // Internal tensor names -> shapes that a (normalised) config implies.
  std::map<std::string, std::vector<int64_t>> (*expected_shapes)(const nlohmann::json& config);
  // Config against weights, without touching tensor data.
  void (*validate)(const nlohmann::json& config, const WeightSet& weights, const std::string& where);
  std::string (*summary)(const nlohmann::json& config);
  // Tokenizer files of an HF directory that belong to the module: copied on
  // import when present, all of them or none (a module without them runs
  // from token ids).
  std::vector<std::string> assets;
  // Folds the checkpoint's preprocessor_config.json (HF's feature extractor) into
  // the normalised config, when an import finds one; null for archs whose
  // front-end takes nothing from it.
  nlohmann::json (*with_preprocessor)(const nlohmann::json& config, const nlohmann::json& preprocessor,
                                      const std::string& where) = nullptr;
};

// Throws m4::Error naming the known architectures.
const ModuleArch& module_arch(const std::string& name);
// The arch that fills a slot ("img_enc" -> clip_vision); throws listing the slots.
const ModuleArch& arch_for_slot(const std::string& slot);
const std::vector<ModuleArch>& module_archs();

}  // namespace m4
