// The benches' LLaMA: a config from the usual shape flags (MHA, head_dim
// hidden / heads) and seeded random weights (N(0, 0.02), norms 1) under HF's
// stored names, as a firmware backbone file holds them.
#pragma once

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstdint>
#include <string>

#include "core/safetensors.h"
#include "firmware/llama.h"

namespace m4::bench {

inline LlamaConfig bench_llama_config(int64_t hidden, int64_t intermediate, int64_t layers, int64_t heads, int64_t vocab) {
  LlamaConfig c;
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = intermediate;
  c.num_hidden_layers = layers;
  c.num_attention_heads = c.num_key_value_heads = heads;
  c.head_dim = hidden / heads;
  c.max_position_embeddings = 4096;
  c.rms_norm_eps = 1e-5;
  return c;
}

inline NamedTensors bench_llama_weights(const LlamaConfig& c, uint64_t seed = 0) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  NamedTensors tensors;
  for (const auto& [name, shape] : LlamaImpl::expected_shapes(c)) {
    at::Tensor t = name.find("norm") != std::string::npos ? at::ones(shape) : at::empty(shape).normal_(0, 0.02, gen);
    tensors.emplace_back(LlamaImpl::stored_name(name), t);
  }
  return tensors;
}

}  // namespace m4::bench
