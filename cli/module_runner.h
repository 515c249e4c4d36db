// Running one encoder module of a firmware on the named tensors of an input
// safetensors file (shared by `firmware forward` and `path`).
#pragma once

#include <filesystem>
#include <string>

#include "firmware/firmware.h"
#include "firmware/safetensors.h"
#include "firmware/transformer_encoder.h"

namespace m4::cli {

struct EncoderRun {
  EncoderOutput out;
  NamedTensors derived;                // inputs computed on the way (pixel_values, input_features)
  std::string embeds_name = "embeds";  // image_embeds, text_embeds, imu_embeds, ...
};

// Loads the module, checks the input names it accepts (one-line errors naming
// the file), runs it with hidden states.
EncoderRun run_encoder(const Firmware& fw, const std::string& module, const std::filesystem::path& input);

}  // namespace m4::cli
