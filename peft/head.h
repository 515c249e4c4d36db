// Task heads that ship with an adapter: an MLP classifier over a pooled
// feature (Linear, or Linear-GELU-Linear), or a trainable LM head initialised
// from the backbone's (for generation tasks that tune the output vocabulary).
#pragma once

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>

#include "peft/method.h"

namespace m4 {

struct ClassifierHeadOptions {
  ClassifierHeadOptions(int64_t in_features, int64_t classes) : in_features_(in_features), classes_(classes) {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, classes);
  TORCH_ARG(int64_t, hidden) = 0;  // 0: a single Linear
  TORCH_ARG(uint64_t, seed) = 0;
};

class ClassifierHeadImpl : public torch::nn::Cloneable<ClassifierHeadImpl> {
 public:
  explicit ClassifierHeadImpl(const ClassifierHeadOptions& options);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);  // (..., in) -> (..., classes)

  ClassifierHeadOptions options;
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};  // fc2 only when hidden > 0
};
TORCH_MODULE(ClassifierHead);

class LmHeadImpl : public torch::nn::Cloneable<LmHeadImpl> {
 public:
  explicit LmHeadImpl(at::Tensor initial_weight);  // (vocab, hidden), copied
  void reset() override;
  at::Tensor forward(const at::Tensor& x) { return at::linear(x, weight); }  // (..., hidden) -> (..., vocab)

  at::Tensor initial;
  at::Tensor weight;
};
TORCH_MODULE(LmHead);

// "full": the projector (encoder width -> backbone width) or the head, trained whole.
std::unique_ptr<Attachment> attach_full(const AttachContext& ctx);

}  // namespace m4
