// Prefix tuning (Li & Liang 2021) as HF PEFT's PrefixEncoder: P learned key and
// value vectors per attention layer, placed before the real keys/values and
// carrying no rotary position. Optionally reparameterised through an MLP
// (embedding (P, token_dim) -> Linear -> tanh -> Linear -> L*2*KV*D) that is
// folded into plain per-layer tables at export. Grouped-query attention gets
// prefixes for its key/value heads only.
#pragma once

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "firmware/adapter_hooks.h"
#include "peft/method.h"

namespace m4 {

struct PrefixTuningOptions {
  PrefixTuningOptions(int64_t tokens, int64_t layers, int64_t kv_heads, int64_t head_dim)
      : tokens_(tokens), layers_(layers), kv_heads_(kv_heads), head_dim_(head_dim) {}
  TORCH_ARG(int64_t, tokens);
  TORCH_ARG(int64_t, layers);
  TORCH_ARG(int64_t, kv_heads);
  TORCH_ARG(int64_t, head_dim);
  TORCH_ARG(int64_t, projection_hidden) = 0;  // 0: no reparameterisation
  TORCH_ARG(int64_t, token_dim) = 0;          // MLP input width (the model's hidden size)
  TORCH_ARG(uint64_t, seed) = 0;
};

class PrefixTuningImpl : public torch::nn::Cloneable<PrefixTuningImpl> {
 public:
  explicit PrefixTuningImpl(const PrefixTuningOptions& options);
  void reset() override;
  // Layer i's (key, value), each (KV, P, D).
  std::pair<at::Tensor, at::Tensor> layer_kv(int64_t layer);
  // Replaces the MLP by the tables it computes (export); a no-op without one.
  void fold();
  bool reparameterized() const { return options.projection_hidden() > 0 && !folded_; }
  // The hook for attention layer i.
  std::shared_ptr<AttentionPrefix> hook(int64_t layer);

  PrefixTuningOptions options;
  std::vector<at::Tensor> keys, values;  // plain mode: per layer (KV, P, D)
  at::Tensor embedding, fc1_weight, fc1_bias, fc2_weight, fc2_bias;  // reparameterised mode

 private:
  bool folded_ = false;
};
TORCH_MODULE(PrefixTuning);

// Prefix tuning on every attention layer of the component.
std::unique_ptr<Attachment> attach_prefix(const AttachContext& ctx);

}  // namespace m4
