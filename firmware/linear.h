// The Linear layer every firmware module is built from: y = x W^T + b, with W
// (and b) usually frozen views into the firmware's mapping. PEFT methods attach
// to these by their dotted module names.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <memory>

#include "firmware/adapter_hooks.h"

namespace m4 {

class LinearImpl : public torch::nn::Module {
 public:
  // weight: (out, in); bias: (out) or undefined.
  LinearImpl(at::Tensor weight, at::Tensor bias);
  at::Tensor forward(const at::Tensor& x);  // x: (..., in) -> (..., out)
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }

  at::Tensor weight;
  at::Tensor bias;
  // PEFT: `adapter` adds its delta to the output; `merged_weight`, when set,
  // replaces `weight` (LoRA merge) without writing to the frozen tensor.
  std::shared_ptr<LinearAdapter> adapter;
  at::Tensor merged_weight;
};
TORCH_MODULE(Linear);

}  // namespace m4
