// The causal-LM loss without the whole logits: cross-entropy of a linear head
// computed a block of rows at a time, so that memory no longer scales with
// rows x vocab (4 x 256 x 32000 f32 logits are 131 MB; a block of 256 rows is
// 33 MB). The gradients are computed in the same pass and kept until backward.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace m4 {

// Mean over rows whose target is not -100 of
//   cross_entropy(h W^T + b, target),
// as at::cross_entropy_loss(at::linear(h, W, b).to(float), targets) computes
// it, with its gradients for h, and for W and b when they require grad.
// h: (N, hidden); weight: (vocab, hidden); bias: (vocab) or undefined;
// targets: (N) int64. The matmuls run in h's dtype, or in bf16 under bf16
// autocast, as at::linear would; softmax and the sums run in f32.
// chunk_rows <= 0: loss_chunk_rows(vocab).
at::Tensor linear_cross_entropy(const at::Tensor& h, const at::Tensor& weight, const at::Tensor& bias,
                                const at::Tensor& targets, int64_t chunk_rows = 0);

// Rows per block so that one block's f32 logits take about 32 MiB.
int64_t loss_chunk_rows(int64_t vocab);

}  // namespace m4
