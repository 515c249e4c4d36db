// `m4forge firmware init-demo`: a small, deterministic firmware (same seed ->
// same firmware_id) with every module (backbone, img_enc, txt_enc, aud_i_enc,
// aud_b_enc, imu_enc), randomly initialised, for the quickstart and the tests.
// It is NOT a trained model.
#pragma once

#include <cstdint>
#include <ATen/core/Generator.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "firmware/firmware.h"
#include "firmware/llama_config.h"
#include "firmware/module_arch.h"

namespace m4 {

struct DemoOptions {
  std::filesystem::path out;
  uint64_t seed = 0;
  std::string name = "m4-demo";
  std::string version = "1.0.0";
  // Multiplies every module's widths (hidden, intermediate, head and projection
  // sizes); 1 is the demo. Larger widths give a firmware whose memory counts
  // (benchmarks), with the same tokenizers, layers and heads.
  int64_t width = 1;
};

// The demo backbone's architecture (LLaMA-shaped, GQA, untied head).
LlamaConfig demo_backbone_config(int64_t vocab_size, int64_t width = 1);

FirmwareManifest init_demo(const DemoOptions& options);

// Seeded random weights for every tensor a module's config implies, under the
// names its upstream checkpoint uses: norm gains N(1, 0.02^2), the rest
// N(0, 0.02^2) (HF's initializer_range). Untrained by construction.
NamedTensors random_module_weights(const ModuleArch& arch, const nlohmann::json& config, at::Generator& gen);

// The text the demo tokenizer is trained on: the license texts Debian's
// base-files package ships (Essential, so present on every Debian system).
std::vector<std::string> demo_tokenizer_corpus();

}  // namespace m4
