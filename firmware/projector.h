// The projector of Path-1 (M4 §3.3): a Linear or a 2-layer MLP (Linear, GELU,
// Linear, as LLaVA's mlp2x_gelu) from an encoder's width to the backbone's.
// Unlike the firmware's modules it is trainable: it ships with the adapter.
// Parameter names: linear.{weight,bias}, or fc1.{weight,bias}, fc2.{weight,bias}.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>

namespace m4 {

// A torch Linear initialised as PyTorch's default (U(-1/sqrt(in), 1/sqrt(in))
// for weight and bias), from `gen`: trainable parts start reproducibly.
torch::nn::Linear seeded_linear(int64_t in, int64_t out, at::Generator& gen);

struct ProjectorOptions {
  int64_t in_features = 0;
  int64_t out_features = 0;
  std::string kind = "linear";  // "linear" or "mlp"
  int64_t hidden = 0;           // mlp width; 0: out_features
  uint64_t seed = 0;            // initialisation (PyTorch's Linear default, seeded)
};

class ProjectorImpl : public torch::nn::Module {
 public:
  explicit ProjectorImpl(const ProjectorOptions& o);
  at::Tensor forward(const at::Tensor& x);  // (..., in) -> (..., out)
  const ProjectorOptions& options() const { return options_; }

 private:
  ProjectorOptions options_;
  torch::nn::Linear linear{nullptr}, fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Projector);

}  // namespace m4
