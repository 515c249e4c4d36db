// Quantized firmware from a source firmware (see quantize.h).
#include "firmware/quantize.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "core/safetensors.h"
#include "firmware/llama.h"
#include "firmware/module_arch.h"
#include "firmware/quantized_weight.h"
#include "firmware/transformer_encoder.h"
#include "firmware/weight_set.h"

namespace m4 {
namespace fs = std::filesystem;
using json = nlohmann::json;

int64_t quantize_group_size(const QuantizeOptions& o) {
  if (o.group_size >= 0) return o.group_size;
  return o.bits == 4 ? 64 : 0;
}

namespace {

// Which internal names of a module may be stored quantized: the projections
// of the backbone's layers and of every encoder's (the loaders' own rules).
bool quantizable(const std::string& arch, const std::string& internal) {
  return arch == fwkeys::kArchLlama ? LlamaImpl::quantizable(internal) : encoder_layer_quantizable(internal);
}

}  // namespace

FirmwareManifest quantize_firmware(const QuantizeOptions& o) {
  M4_CHECK(o.bits == 8 || o.bits == 4, ErrorCode::kInvalidArgument, "--bits must be 8 or 4, found ", o.bits);
  const int64_t group = quantize_group_size(o);
  M4_CHECK(group == 0 || group >= 2, ErrorCode::kInvalidArgument, "--group-size must be 0 (per channel) or >= 2, found ", group);
  M4_CHECK(!o.modules.empty(), ErrorCode::kInvalidArgument, "--modules: name at least one module to quantize");
  const Firmware src = Firmware::open(o.source);
  const std::string where = (src.dir() / fwkeys::kManifestFile).string();
  M4_CHECK(src.manifest().derived_from.is_null(), ErrorCode::kInvalidArgument, where, ": ", src.label(), " is already ",
           describe_derivation(src.manifest().derived_from), " (hint: quantize the source firmware)");
  for (const auto& m : o.modules) src.module(m);  // names what exists when it does not
  std::vector<std::string> all;
  for (const auto& [name, m] : src.manifest().modules) all.push_back(name);
  src.verify_modules(all);  // the id derived_from names is the bytes read here

  json derived = {{"firmware_id", src.id()},  {"name", src.manifest().name}, {"version", src.manifest().version},
                  {"method", quantkeys::kMethod}, {"bits", o.bits},           {"group_size", group},
                  {"modules", o.modules}};
  json provenance = {{"quantized_from", fs::absolute(src.dir()).string()}, {"source_provenance", src.manifest().provenance}};
  const std::string suffix = o.bits == 8 ? "-int8" : "-int4";
  const std::string name = o.name.empty() ? src.manifest().name + suffix : o.name;
  const std::string version = o.version.empty() ? src.manifest().version : o.version;

  return create_firmware(o.out, name, version, provenance, [&](const fs::path& staging) {
    std::map<std::string, FirmwareModule> mods;
    for (const auto& [slot, m] : src.manifest().modules) {
      FirmwareModule out = m;
      out.file_sizes.clear();
      out.digest.clear();
      std::vector<std::string> copies(m.weights);
      const bool quantize = std::find(o.modules.begin(), o.modules.end(), slot) != o.modules.end();
      if (quantize) {
        const WeightSet ws = src.weights(slot);
        const ModuleArch& arch = module_arch(m.arch);
        NamedTensors tensors;
        int64_t quantized = 0;
        for (const auto& stored : ws.names()) {
          const at::Tensor t = ws.tensor(stored);
          const std::string internal = arch.internal_name(stored);
          if (internal.empty() || !quantizable(m.arch, internal) || t.dim() != 2 || t.numel() < o.min_elements) {
            tensors.emplace_back(stored, t);
            continue;
          }
          M4_CHECK(o.bits == 8 || t.size(1) % 2 == 0, ErrorCode::kInvalidArgument, where, ": tensor '", stored,
                   "' has ", t.size(1), " columns; 4-bit weights pack two per byte and need an even count");
          const QuantizedWeight q = quantize_weight(t, o.bits, group);
          tensors.emplace_back(stored, q.data);
          tensors.emplace_back(quant_scale_name(stored), q.scale);
          ++quantized;
        }
        M4_CHECK(quantized > 0, ErrorCode::kInvalidArgument, where, ": module '", slot,
                 "' has no projection weight of >= ", o.min_elements, " elements to quantize");
        fs::create_directories(staging / slot);
        out.weights = {slot + "/model.safetensors"};
        write_safetensors(staging / out.weights[0], tensors,
                          {{"format", "pt"}, {"quantization", derived.dump()}});
        copies.clear();
      }
      if (fs::exists(src.dir() / slot / "config.json")) copies.push_back(slot + "/config.json");  // informational
      for (const auto& [role, rel] : m.assets) copies.push_back(rel);
      for (const auto& rel : copies) {
        fs::create_directories((staging / rel).parent_path());
        fs::copy_file(src.dir() / rel, staging / rel);
      }
      mods[slot] = std::move(out);
    }
    return mods;
  }, derived);
}

}  // namespace m4
