// f32 GEMMs in oneDNN (core/onednn_gemm.h): the layouts the model hands it
// (transposed weights, attention's permuted heads, row slices) give ATen's
// products, the autograd version gives ATen's gradients, and autocast's
// products stay ATen's.
#include "core/onednn_gemm.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/autocast.h"

namespace m4 {
namespace {

// |a - b| relative to the size of the reference.
double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-12, b.abs().max().item<double>());
}

class OneDnnGemm : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!onednn_f32_gemm()) GTEST_SKIP() << "f32 GEMMs run in the BLAS here: " << f32_gemm_description();
    at::manual_seed(7);
  }
};

TEST(F32Gemm, DescribesWhereTheProductsRun) {
  const std::string d = f32_gemm_description();
  EXPECT_EQ(onednn_f32_gemm(), d.rfind("oneDNN ", 0) == 0) << d;
}

TEST_F(OneDnnGemm, TakesTransposedWeightsAndGivesAtenProducts) {
  const at::Tensor x = at::randn({37, 64}), w = at::randn({50, 64});  // a Linear's (out, in)
  ASSERT_TRUE(gemm_in_onednn(x, w.t()));
  EXPECT_LT(rel_diff(gemm(x, w.t()), at::mm(x, w.t())), 1e-5);
  const at::Tensor g = at::randn({37, 50});
  EXPECT_LT(rel_diff(gemm(g, w), at::mm(g, w)), 1e-5);
  EXPECT_LT(rel_diff(gemm(x.t(), g), at::mm(x.t(), g)), 1e-5);  // a transposed left operand
}

TEST_F(OneDnnGemm, WritesAndAccumulatesIntoARowSlice) {
  const at::Tensor a = at::randn({6, 32}), b = at::randn({32, 20});
  at::Tensor out = at::full({10, 20}, 3.0);
  gemm_out(out.narrow(0, 2, 6), a, b);
  EXPECT_LT(rel_diff(out.narrow(0, 2, 6), at::mm(a, b)), 1e-5);
  EXPECT_TRUE(at::equal(out.narrow(0, 0, 2), at::full({2, 20}, 3.0)));  // rows outside untouched
  EXPECT_TRUE(at::equal(out.narrow(0, 8, 2), at::full({2, 20}, 3.0)));
  gemm_out(out.narrow(0, 2, 6), a, b, /*accumulate=*/true);
  EXPECT_LT(rel_diff(out.narrow(0, 2, 6), 2 * at::mm(a, b)), 1e-5);
  // A column slice of the left operand, as the quantized backward passes it.
  at::Tensor acc = at::ones({6, 20});
  gemm_out(acc, at::randn({6, 64}).narrow(1, 16, 32), b, true);
  EXPECT_GT(acc.sub(1).abs().max().item<double>(), 0.1);
}

TEST_F(OneDnnGemm, TakesAttentionsPermutedHeadsAsTheyAre) {
  // (B, T, H, D) projections viewed as (B, H, T, D), keys transposed: no copies.
  const at::Tensor q = at::randn({2, 9, 3, 16}).transpose(1, 2), k = at::randn({2, 11, 3, 16}).transpose(1, 2);
  const at::Tensor kt = k.transpose(-1, -2);
  ASSERT_TRUE(gemm_in_onednn(q, kt));
  const at::Tensor s = gemm(q, kt);
  EXPECT_EQ(s.sizes(), at::IntArrayRef({2, 3, 9, 11}));
  EXPECT_LT(rel_diff(s, at::matmul(q, kt)), 1e-5);
}

TEST_F(OneDnnGemm, LeavesWhatItCannotTakeToAten) {
  const at::Tensor a = at::randn({4, 8}), b = at::randn({8, 5});
  EXPECT_FALSE(gemm_in_onednn(a.to(at::kBFloat16), b.to(at::kBFloat16)));
  EXPECT_FALSE(gemm_in_onednn(a.to(at::kDouble), b.to(at::kDouble)));
  EXPECT_FALSE(gemm_in_onednn(at::randn({3, 4, 8}), b.expand({3, 8, 5})));  // a broadcast view (stride 0)
  EXPECT_FALSE(gemm_in_onednn(at::randn({3, 4, 8}), at::randn({1, 8, 5})));  // broadcasting batch
  EXPECT_FALSE(gemm_in_onednn(a.requires_grad_(true), b));  // autograd must record it
  EXPECT_TRUE(at::equal(gemm(a.to(at::kDouble), b.to(at::kDouble)), at::mm(a.to(at::kDouble), b.to(at::kDouble))));
  // ATen broadcasts where oneDNN is not asked to.
  const at::Tensor big = at::randn({3, 4, 8}), one = at::randn({1, 8, 5});
  EXPECT_TRUE(at::allclose(gemm(big, one), at::matmul(big, one)));
}

TEST_F(OneDnnGemm, LeavesProductsUnderAutocastToAten) {
  // f32 inputs under bf16 autocast (attention's, promoted to f32 by the rotary
  // cos/sin) multiply in bf16, as ATen's autocast and HF's do.
  const at::Tensor a = at::randn({2, 3, 16, 8}), b = at::randn({2, 3, 8, 16});
  Bf16Autocast mixed;
  EXPECT_FALSE(gemm_in_onednn(a, b));
  const at::Tensor ours = differentiable_gemm(a.requires_grad_(true), b);
  EXPECT_EQ(ours.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(ours, at::matmul(a, b)));
}

TEST_F(OneDnnGemm, DifferentiableGemmGivesAtensGradients) {
  const at::Tensor q0 = at::randn({2, 7, 3, 8}), k0 = at::randn({2, 5, 3, 8});
  auto run = [&](bool ours) {
    at::Tensor q = q0.clone().requires_grad_(true), k = k0.clone().requires_grad_(true);
    const at::Tensor qh = q.transpose(1, 2), kt = k.transpose(1, 2).transpose(-1, -2);
    const at::Tensor s = ours ? differentiable_gemm(qh, kt) : at::matmul(qh, kt);
    (s * s.detach().sin()).sum().backward();  // a gradient that is not all ones
    return std::make_tuple(s.detach(), q.grad(), k.grad());
  };
  const auto [s1, gq1, gk1] = run(true);
  const auto [s0, gq0, gk0] = run(false);
  EXPECT_LT(rel_diff(s1, s0), 1e-5);
  EXPECT_LT(rel_diff(gq1, gq0), 1e-5);
  EXPECT_LT(rel_diff(gk1, gk0), 1e-5);
  // Only the operand that wants a gradient gets one.
  at::Tensor a = at::randn({4, 6}).requires_grad_(true);
  const at::Tensor w = at::randn({6, 3});
  differentiable_gemm(a, w).sum().backward();
  EXPECT_LT(rel_diff(a.grad(), w.sum(1).expand({4, 6})), 1e-5);
  EXPECT_FALSE(w.grad().defined());
}

}  // namespace
}  // namespace m4
