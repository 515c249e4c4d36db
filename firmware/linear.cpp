// Frozen Linear layer.
#include "firmware/linear.h"

#include <ATen/autocast_mode.h>

namespace m4 {

LinearImpl::LinearImpl(at::Tensor w, at::Tensor b) {
  weight = register_parameter("weight", std::move(w), /*requires_grad=*/false);
  if (b.defined()) bias = register_parameter("bias", std::move(b), /*requires_grad=*/false);
}

bool autocast_bf16(const at::Tensor& x) {
  if (x.is_cuda()) return at::autocast::is_enabled() && at::autocast::get_autocast_gpu_dtype() == at::kBFloat16;
  return at::autocast::is_cpu_enabled() && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16;
}

const at::Tensor& LinearImpl::effective_weight(const at::Tensor& x) const {
  if (merged_weight.defined()) return merged_weight;
  if (weight_bf16.defined() && autocast_bf16(x)) return weight_bf16;
  return weight;
}

at::Tensor LinearImpl::forward(const at::Tensor& x) {
  at::Tensor y = at::linear(x, effective_weight(x), bias);
  if (adapter && !merged_weight.defined()) y = y + adapter->delta(x);
  return y;
}

int64_t keep_bf16_weights(torch::nn::Module& root) {
  int64_t bytes = 0;
  at::NoGradGuard no_grad;
  for (const auto& m : root.modules(/*include_self=*/true)) {
    auto* lin = dynamic_cast<LinearImpl*>(m.get());
    if (lin == nullptr || lin->weight_bf16.defined() || lin->weight.requires_grad() ||
        lin->weight.scalar_type() != at::kFloat) {
      continue;
    }
    lin->weight_bf16 = lin->weight.to(at::kBFloat16);
    bytes += lin->weight_bf16.numel() * 2;
  }
  return bytes;
}

}  // namespace m4
