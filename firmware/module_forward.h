// One firmware module run on the named tensors of an input safetensors file:
// the inputs each module accepts checked (one-line errors naming the file),
// raw inputs through the encoder's front-end (encoder_input.h), outputs named
// as HF names them. `m4forge firmware forward` and `m4forge path` use it.
#pragma once

#include <torch/nn/module.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/safetensors.h"
#include "firmware/firmware.h"
#include "firmware/transformer_encoder.h"

namespace m4 {

// Named input tensors and where they came from (errors name it).
struct ModuleInputs {
  std::string where;
  std::map<std::string, at::Tensor> tensors;
};
// A safetensors file of named inputs (what `firmware forward --input` takes).
ModuleInputs read_module_inputs(const std::filesystem::path& file);

struct EncoderRun {
  EncoderOutput out;
  NamedTensors derived;                // inputs computed on the way (pixel_values, input_features)
  std::string embeds_name = "embeds";  // image_embeds, text_embeds, imu_embeds, ...
};

// Called with each module right after it is loaded (e.g. to attach an adapter).
using ModuleHook = std::function<void(const std::string& name, std::shared_ptr<torch::nn::Module> module)>;

// Loads the module, checks the input names it accepts (one-line errors naming
// the file), runs it with hidden states.
EncoderRun run_encoder(const Firmware& fw, const std::string& module, const ModuleInputs& inputs,
                       const ModuleHook& on_load = {});

// Any module (the backbone or an encoder), with hidden states: its outputs,
// plus the inputs derived on the way, as named tensors for a safetensors file.
NamedTensors forward_module(const Firmware& fw, const std::string& module, const ModuleInputs& inputs,
                            const ModuleHook& on_load = {});

}  // namespace m4
