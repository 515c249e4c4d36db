// Frozen Linear layer, dense or quantized.
#include "firmware/linear.h"

#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>

namespace m4 {

LinearImpl::LinearImpl(at::Tensor w, at::Tensor b) {
  weight = register_parameter("weight", std::move(w), /*requires_grad=*/false);
  if (b.defined()) bias = register_parameter("bias", std::move(b), /*requires_grad=*/false);
}

LinearImpl::LinearImpl(QuantizedWeight q, at::Tensor b) {
  q.data = register_buffer("weight", std::move(q.data));
  q.scale = register_buffer("weight_scale", std::move(q.scale));
  quantized = std::move(q);
  if (b.defined()) bias = register_parameter("bias", std::move(b), /*requires_grad=*/false);
}

bool autocast_bf16(const at::Tensor& x) {
  if (x.is_cuda()) return at::autocast::is_enabled() && at::autocast::get_autocast_gpu_dtype() == at::kBFloat16;
  return at::autocast::is_cpu_enabled() && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16;
}

namespace {

// The dtype a quantized weight is dequantized to for a forward of x.
at::ScalarType dequant_dtype(const at::Tensor& x) {
  return autocast_bf16(x) ? at::kBFloat16 : x.scalar_type();
}

// y = x W^T with W dequantized in forward and again in backward, so no
// dequantized weight is kept for backward: training holds one layer's W at a
// time, as QLoRA does. W is frozen (no gradient). (Every tensor argument must
// be defined: the frozen bias is added outside.)
struct QuantizedLinearFunction : public torch::autograd::Function<QuantizedLinearFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& data,
                            const at::Tensor& scale, int64_t dtype) {
    const auto dt = static_cast<at::ScalarType>(dtype);
    ctx->save_for_backward({data, scale});
    ctx->saved_data["dtype"] = dtype;
    ctx->saved_data["x_dtype"] = static_cast<int64_t>(x.scalar_type());
    const QuantizedWeight q{data, scale};
    return at::linear(x.to(dt), q.dequantize(dt));
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto dt = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    const auto x_dt = static_cast<at::ScalarType>(ctx->saved_data["x_dtype"].toInt());
    const QuantizedWeight q{saved[0], saved[1]};
    // grad: (..., out) -> (..., in)
    at::Tensor gx = at::matmul(grads[0].to(dt), q.dequantize(dt)).to(x_dt);
    return {gx, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor LinearImpl::effective_weight(const at::Tensor& x) const {
  if (merged_weight.defined()) return merged_weight;
  if (quantized) return quantized->dequantize(dequant_dtype(x));
  if (weight_bf16.defined() && autocast_bf16(x)) return weight_bf16;
  return weight;
}

at::Tensor LinearImpl::dense_weight() const {
  return quantized ? quantized->dequantize(at::kFloat) : weight.to(at::kFloat);
}

at::Tensor LinearImpl::forward(const at::Tensor& x) {
  at::Tensor y;
  if (quantized && !merged_weight.defined() && at::GradMode::is_enabled() && x.requires_grad()) {
    y = QuantizedLinearFunction::apply(x, quantized->data, quantized->scale, static_cast<int64_t>(dequant_dtype(x)));
    if (bias.defined()) y = y + bias.to(y.scalar_type());
  } else {
    y = at::linear(x, effective_weight(x), bias);
  }
  if (adapter && !merged_weight.defined()) y = y + adapter->delta(x);
  return y;
}

int64_t keep_bf16_weights(torch::nn::Module& root) {
  int64_t bytes = 0;
  at::NoGradGuard no_grad;
  for (const auto& m : root.modules(/*include_self=*/true)) {
    auto* lin = dynamic_cast<LinearImpl*>(m.get());
    // A quantized weight is already smaller than a bf16 copy would be.
    if (lin == nullptr || lin->quantized || lin->weight_bf16.defined() || lin->weight.requires_grad() ||
        lin->weight.scalar_type() != at::kFloat) {
      continue;
    }
    lin->weight_bf16 = lin->weight.to(at::kBFloat16);
    bytes += lin->weight_bf16.numel() * 2;
  }
  return bytes;
}

}  // namespace m4
