// The Linear layer every firmware module is built from: y = x W^T + b, with W
// (and b) usually frozen views into the firmware's mapping, or W quantized
// (firmware/quantized_weight.h) and dequantized per forward, one layer at a
// time. PEFT methods attach to these by their dotted module names.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <optional>
#include <vector>

#include "firmware/adapter_hooks.h"
#include "firmware/quantized_weight.h"

namespace m4 {

class LinearImpl : public torch::nn::Module {
 public:
  // weight: (out, in); bias: (out) or undefined.
  LinearImpl(at::Tensor weight, at::Tensor bias);
  // A quantized weight: `weight` stays undefined; its data and scales are
  // buffers "weight" and "weight_scale" (the stored names' suffixes).
  LinearImpl(QuantizedWeight weight, at::Tensor bias);
  at::Tensor forward(const at::Tensor& x);  // x: (..., in) -> (..., out)
  int64_t in_features() const { return quantized ? quantized->in_features() : weight.size(1); }
  int64_t out_features() const { return quantized ? quantized->out_features() : weight.size(0); }
  std::vector<int64_t> weight_shape() const { return {out_features(), in_features()}; }

  // The weight a forward of `x` multiplies by: the merged weight when set,
  // else under bf16 autocast the bf16 copy when kept, else `weight`; a
  // quantized weight dequantized (to bf16 under bf16 autocast, else f32).
  at::Tensor effective_weight(const at::Tensor& x) const;
  // W as f32 (out, in): `weight`, or the quantized weight dequantized.
  at::Tensor dense_weight() const;

  at::Tensor weight;  // undefined when quantized
  at::Tensor bias;
  std::optional<QuantizedWeight> quantized;
  // PEFT: `adapter` adds its delta to the output; `merged_weight`, when set,
  // replaces `weight` (LoRA merge) without writing to the frozen tensor.
  std::shared_ptr<LinearAdapter> adapter;
  at::Tensor merged_weight;
  // A bf16 copy of the frozen f32 `weight` for bf16 training (keep_bf16_weights):
  // autocast would otherwise cast the weight again in every forward.
  at::Tensor weight_bf16;
};
TORCH_MODULE(Linear);

// Gives every frozen f32 Linear under `root` its bf16 copy, once; returns the
// bytes the copies take (0 when they were already there). f32 forwards still
// use `weight`, so f32 evaluation and parity are unchanged.
int64_t keep_bf16_weights(torch::nn::Module& root);

// Whether autocast to bf16 is on for tensors on x's device.
bool autocast_bf16(const at::Tensor& x);

}  // namespace m4
