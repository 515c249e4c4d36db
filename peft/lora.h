// LoRA (Hu et al. 2021) as Hugging Face PEFT defines it: y = W x + s * B A x,
// A (r, in) kaiming-uniform(a=sqrt(5)), B (out, r) zero, s = alpha/r
// (rsLoRA: alpha/sqrt(r)), dropout on the LoRA branch's input. Attached to a
// frozen m4::Linear through its adapter hook; merge writes no frozen byte.
#pragma once

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "firmware/adapter_hooks.h"
#include "firmware/linear.h"
#include "peft/method.h"

namespace m4 {

struct LoraLinearOptions {
  LoraLinearOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  TORCH_ARG(int64_t, r) = 8;
  TORCH_ARG(double, alpha) = 16.0;
  TORCH_ARG(double, dropout) = 0.0;
  TORCH_ARG(bool, rslora) = false;
  TORCH_ARG(uint64_t, seed) = 0;  // initialisation of A

 public:
  double scaling() const;  // alpha / r, or alpha / sqrt(r) with rsLoRA
};

class LoraLinearImpl : public torch::nn::Cloneable<LoraLinearImpl>, public LinearAdapter {
 public:
  explicit LoraLinearImpl(const LoraLinearOptions& options);
  void reset() override;  // A kaiming-uniform (seeded), B zero
  at::Tensor delta(const at::Tensor& x) override;  // x: (..., in) -> (..., out)

  // Merged weight W + s B A for `base` (a new tensor; base.weight is untouched).
  at::Tensor merged(const LinearImpl& base) const;

  LoraLinearOptions options;
  at::Tensor lora_a;  // (r, in)
  at::Tensor lora_b;  // (out, r)
};
TORCH_MODULE(LoraLinear);

// LoRA on every Linear of the component matched by peft.lora.targets (first matching rule wins).
std::unique_ptr<Attachment> attach_lora(const AttachContext& ctx);

}  // namespace m4
