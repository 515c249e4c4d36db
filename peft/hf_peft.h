// Hugging Face PEFT's adapter directory (adapter_config.json +
// adapter_model.safetensors) for the backbone: LoRA, prompt tuning and prefix
// tuning, read into m4forge's names and written back. Tensor name mapping:
//   base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight <-> backbone.layers.3.self_attn.q_proj.lora_a
//   prompt_embeddings (P, hidden)            <-> backbone.prompt.embedding
//   prompt_embeddings (P, L*2*KV*D)          <-> backbone.layers.{i}.self_attn.prefix_{key,value} (KV, P, D)
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <map>
#include <string>

#include "peft/peft_config.h"

namespace m4 {

class Adapter;
class LlamaImpl;

struct HfPeftAdapter {
  PeftConfig config;
  std::map<std::string, at::Tensor> tensors;  // m4forge names
};

// "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" ->
// "backbone.layers.0.self_attn.q_proj.lora_a"; "" if the name is not a LoRA A/B weight.
std::string lora_name_from_hf(const std::string& hf_name);

// Reads `dir`; every unsupported setting is a one-line error naming the file.
HfPeftAdapter read_hf_peft(const std::filesystem::path& dir, LlamaImpl& backbone);

// Writes `adapter` (backbone methods only) as a PEFT directory `dir` (created).
void write_hf_peft(const std::filesystem::path& dir, const Adapter& adapter, LlamaImpl& backbone);

}  // namespace m4
