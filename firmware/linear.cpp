// Frozen Linear layer, dense or quantized.
#include "firmware/linear.h"

#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <vector>

#include "core/autocast.h"
#include "core/onednn_gemm.h"

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
  const c10::DeviceType type = x.is_cuda() ? c10::kCUDA : c10::kCPU;
  return autocast_enabled(type) && autocast_dtype(type) == at::kBFloat16;
}

namespace {

// The dtype a quantized weight is dequantized to for a forward of x.
at::ScalarType dequant_dtype(const at::Tensor& x) {
  return autocast_bf16(x) ? at::kBFloat16 : x.scalar_type();
}

// Output rows of a quantized weight dequantized at a time: ~4 MiB of f32, so
// no dequantized weight larger than that is ever allocated. Whole weights
// (46 MiB for one 2048 x 5632 projection) allocated and freed per layer left
// glibc's heap fragmented: 646 MiB resident for 102 MiB live in a 4-layer
// LoRA step (heaptrack, /proc/self/smaps).
int64_t rows_per_block(const QuantizedWeight& q) {
  return std::max<int64_t>(1, (int64_t{4} << 20) / (4 * std::max<int64_t>(1, q.in_features())));
}

QuantizedWeight row_block(const QuantizedWeight& q, int64_t r0, int64_t n) {
  return {q.data.narrow(0, r0, n), q.scale.narrow(0, r0, n)};
}

// x (..., in) W^T -> (..., out) for a frozen W: in oneDNN where it takes the
// product (f32 on the CPU, core/onednn_gemm.h), else at::linear without bias.
// The result is never a view (FrozenLinearFunction's output gets the bias in place).
at::Tensor frozen_product(const at::Tensor& x, const at::Tensor& w) {
  const at::Tensor rows = x.reshape({-1, w.size(1)}), wt = w.t();
  if (!gemm_in_onednn(rows, wt)) return at::linear(x, w);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = w.size(0);
  at::Tensor y = at::empty(shape, x.options());
  gemm_out(y.view({-1, w.size(0)}), rows, wt);
  return y;
}

// x (..., in) W^T -> (..., out), W dequantized to `dt` a block of rows at a time.
at::Tensor quantized_linear(const at::Tensor& x, const QuantizedWeight& q, at::ScalarType dt) {
  const int64_t out = q.out_features(), block = rows_per_block(q);
  const at::Tensor xd = x.to(dt);
  if (block >= out) return frozen_product(xd, q.dequantize(dt));
  std::vector<at::Tensor> parts;
  for (int64_t r0 = 0; r0 < out; r0 += block) {
    parts.push_back(frozen_product(xd, row_block(q, r0, std::min(block, out - r0)).dequantize(dt)));
  }
  return at::cat(parts, -1);
}

// g (..., out) W -> (..., in), W dequantized to `dt` a block of rows at a time.
at::Tensor quantized_linear_backward(const at::Tensor& g, const QuantizedWeight& q, at::ScalarType dt) {
  const int64_t out = q.out_features(), in = q.in_features(), block = rows_per_block(q);
  const at::Tensor g2 = g.to(dt).reshape({-1, out});
  std::vector<int64_t> shape = g.sizes().vec();
  shape.back() = in;
  if (block >= out) return gemm(g2, q.dequantize(dt)).view(shape);
  at::Tensor gx = at::zeros({g2.size(0), in}, g2.options());
  for (int64_t r0 = 0; r0 < out; r0 += block) {
    const int64_t n = std::min(block, out - r0);
    gemm_out(gx, g2.narrow(1, r0, n), row_block(q, r0, n).dequantize(dt), /*accumulate=*/true);
  }
  return gx.view(shape);
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
    return quantized_linear(x, QuantizedWeight{data, scale}, dt);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto dt = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    const auto x_dt = static_cast<at::ScalarType>(ctx->saved_data["x_dtype"].toInt());
    // grad: (..., out) -> (..., in)
    const at::Tensor gx = quantized_linear_backward(grads[0], QuantizedWeight{saved[0], saved[1]}, dt).to(x_dt);
    return {gx, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// y = x W^T for a frozen dense W; x's gradient g W, through gemm() too.
struct FrozenLinearFunction : public torch::autograd::Function<FrozenLinearFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w) {
    ctx->save_for_backward({w});
    return frozen_product(x, w);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const at::Tensor w = ctx->get_saved_variables()[0];
    std::vector<int64_t> shape = grads[0].sizes().vec();
    shape.back() = w.size(1);
    return {gemm(grads[0].reshape({-1, w.size(0)}), w).view(shape), at::Tensor()};
  }
};

// Whether x W^T (+ b) runs through FrozenLinearFunction: f32 GEMMs in oneDNN,
// f32 CPU x and W (no autocast), and W and b frozen.
bool frozen_f32(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  return onednn_f32_gemm() && x.is_cpu() && x.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat &&
         !w.requires_grad() && (!b.defined() || !b.requires_grad()) && x.dim() >= 1 && x.numel() > 0 &&
         !autocast_bf16(x);
}

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
  if (quantized && !merged_weight.defined()) {
    // With a gradient to carry back to x, through the function that dequantizes again in backward.
    const at::ScalarType dt = dequant_dtype(x);
    y = at::GradMode::is_enabled() && x.requires_grad()
            ? QuantizedLinearFunction::apply(x, quantized->data, quantized->scale, static_cast<int64_t>(dt))
            : quantized_linear(x, *quantized, dt);
    if (bias.defined()) y = y + bias.to(y.scalar_type());
  } else if (const at::Tensor& w = effective_weight(x); frozen_f32(x, w, bias)) {
    y = at::GradMode::is_enabled() && x.requires_grad() ? FrozenLinearFunction::apply(x, w) : frozen_product(x, w);
    if (bias.defined()) y.add_(bias);
  } else {
    y = at::linear(x, w, bias);
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
