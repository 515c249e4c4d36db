// Chunked linear + cross-entropy (the fused LM-head loss): per block of rows,
// logits -> log-sum-exp -> loss, and in the same pass softmax - onehot -> the
// gradients of h (and of W, b), so no (rows, vocab) tensor outlives its block.
#include "task/lm_loss.h"

#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "core/onednn_gemm.h"
#include "firmware/linear.h"

namespace m4 {
namespace {

constexpr int64_t kIgnore = -100;

// The dtype at::linear multiplies in: bf16 under bf16 autocast (the only
// autocast m4forge runs, core/autocast.h), else the promotion of h and W.
at::ScalarType compute_dtype(const at::Tensor& h, const at::Tensor& w) {
  return autocast_bf16(h) ? at::kBFloat16 : at::promote_types(h.scalar_type(), w.scalar_type());
}

struct Grads {
  bool want_w = false, want_b = false;
  at::Tensor h, w, b;  // of the mean loss
};

// One pass over the rows: the mean loss, and with `g` its gradients.
at::Tensor chunked_loss(const at::Tensor& h, const at::Tensor& w, const at::Tensor& b, const at::Tensor& t,
                        int64_t chunk, at::ScalarType cd, Grads* g) {
  // The casts are explicit below; autocast must not add its own.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const int64_t rows = h.size(0);
  const at::Tensor valid = t.ne(kIgnore);
  const int64_t count = valid.sum().item<int64_t>();
  const at::Tensor wc = w.to(cd);
  const at::Tensor bc = b.defined() ? b.to(cd) : b;
  const auto f32 = h.options().dtype(at::kFloat);
  at::Tensor total = at::zeros({}, f32);
  if (g != nullptr) {
    g->h = at::empty_like(h);
    if (g->want_w) g->w = at::zeros(w.sizes(), f32);
    if (g->want_b) g->b = at::zeros(b.sizes(), f32);
  }
  const double inv = count > 0 ? 1.0 / static_cast<double>(count) : 0.0;
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = std::min(chunk, rows - r0);
    const at::Tensor hc = h.narrow(0, r0, n).to(cd);
    const at::Tensor vc = valid.narrow(0, r0, n);
    const at::Tensor target = t.narrow(0, r0, n).masked_fill(vc.logical_not(), 0).unsqueeze(1);
    // gemm: in oneDNN for f32 (core/onednn_gemm.h).
    const at::Tensor logits = (bc.defined() ? at::addmm(bc, hc, wc.t()) : gemm(hc, wc.t())).to(at::kFloat);
    // One fused, vectorised pass per row (max, sum of exp, write), where logsumexp and
    // the subtractions took several over the (n, vocab) block (issue 18).
    at::Tensor logp = at::_log_softmax(logits, 1, /*half_to_float=*/false);  // (n, V)
    total.sub_((logp.gather(1, target).squeeze(1) * vc).sum());
    if (g == nullptr) continue;
    // softmax - onehot in logp's memory; rows without a target contribute nothing.
    at::Tensor p = logp.exp_();
    p.scatter_(1, target, p.gather(1, target) - 1.0);
    const at::Tensor ignored = vc.logical_not().nonzero().squeeze(1);
    if (ignored.numel() > 0) p.index_fill_(0, ignored, 0.0);
    // The 1 / count of the mean goes on the (n, hidden) products, not on the block.
    const at::Tensor pc = p.to(cd);
    at::Tensor gh = g->h.narrow(0, r0, n);
    gemm_out(gh, pc, wc);  // cast into h's dtype where it is not cd's
    gh.mul_(inv);
    if (g->want_w) g->w.add_(gemm(pc.t(), hc), inv);
    if (g->want_b) g->b.add_(p.sum(0), inv);
  }
  // No target: NaN, as the mean of at::cross_entropy_loss over no rows.
  return count > 0 ? total.div_(static_cast<double>(count)) : at::full({}, std::numeric_limits<float>::quiet_NaN(), f32);
}

struct LinearCrossEntropy : public torch::autograd::Function<LinearCrossEntropy> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& h, const at::Tensor& w,
                            const at::Tensor& b, const at::Tensor& t, int64_t chunk, int64_t cd) {
    Grads g;
    const at::Tensor bias = b.numel() > 0 ? b : at::Tensor();
    g.want_w = w.requires_grad();
    g.want_b = bias.defined() && bias.requires_grad();
    at::Tensor loss = chunked_loss(h, w, bias, t, chunk, static_cast<at::ScalarType>(cd), &g);
    ctx->saved_data["h"] = g.h;
    ctx->saved_data["w"] = g.w;
    ctx->saved_data["b"] = g.b;
    return loss;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const at::Tensor& scale = grad_out[0];
    auto scaled = [&](const char* key) {
      at::Tensor x = ctx->saved_data[key].toTensor();
      return x.defined() ? x * scale.to(x.scalar_type()) : x;
    };
    return {scaled("h"), scaled("w"), scaled("b"), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

int64_t loss_chunk_rows(int64_t vocab) {
  constexpr int64_t kBlockBytes = int64_t{32} << 20;
  return std::max<int64_t>(1, kBlockBytes / (4 * std::max<int64_t>(1, vocab)));
}

at::Tensor linear_cross_entropy(const at::Tensor& h, const at::Tensor& weight, const at::Tensor& bias,
                                const at::Tensor& targets, int64_t chunk_rows) {
  M4_CHECK(h.dim() == 2 && weight.dim() == 2 && h.size(1) == weight.size(1), ErrorCode::kInvalidArgument,
           "linear_cross_entropy: rows (", h.sizes(), ") and weight (", weight.sizes(),
           ") do not match");
  M4_CHECK(targets.dim() == 1 && targets.size(0) == h.size(0) && targets.scalar_type() == at::kLong,
           ErrorCode::kInvalidArgument, "linear_cross_entropy: targets must be int64 (", h.size(0), "), found ",
           targets.sizes());
  M4_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), ErrorCode::kInvalidArgument,
           "linear_cross_entropy: bias must be (", weight.size(0), ")");
  if (targets.numel() > 0) {
    const at::Tensor real = targets.masked_select(targets.ne(kIgnore));
    M4_CHECK(real.numel() == 0 || (real.min().item<int64_t>() >= 0 && real.max().item<int64_t>() < weight.size(0)),
             ErrorCode::kInvalidArgument, "linear_cross_entropy: a target token id is outside the vocabulary [0, ",
             weight.size(0), ") (and is not -100)");
  }
  const int64_t chunk = chunk_rows > 0 ? chunk_rows : loss_chunk_rows(weight.size(0));
  const at::ScalarType cd = compute_dtype(h, weight);
  const bool grad = at::GradMode::is_enabled() &&
                    (h.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
  if (!grad) return chunked_loss(h, weight, bias, targets, chunk, cd, nullptr);
  // The custom function takes no undefined tensor: no bias travels as an empty one.
  const at::Tensor b = bias.defined() ? bias : at::empty({0}, weight.options().requires_grad(false));
  return LinearCrossEntropy::apply(h, weight, b, targets, chunk, static_cast<int64_t>(cd));
}

}  // namespace m4
