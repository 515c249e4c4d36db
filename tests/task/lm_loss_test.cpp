// The chunked LM-head loss (task/lm_loss.h) against the unchunked one: the same
// loss and the same gradients, in f32 and under bf16 autocast.
#include "task/lm_loss.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/autocast.h"
#include "core/error.h"

namespace m4 {
namespace {

struct Case {
  at::Tensor h, w, b, t;
};

// 37 rows (so blocks of 8 end with a partial one), some targets ignored.
Case make_case(bool weight_grad) {
  at::manual_seed(7);
  Case c;
  c.h = at::randn({37, 16}).requires_grad_(true);
  c.w = (at::randn({50, 16}) * 0.5).requires_grad_(weight_grad);
  c.b = (at::randn({50}) * 0.1).requires_grad_(weight_grad);
  c.t = at::randint(0, 50, {37}, at::kLong);
  c.t.index_put_({at::arange(0, 37, 5)}, -100);
  return c;
}

struct Result {
  at::Tensor loss, gh, gw, gb;
};

// loss * 0.7, backward: the scale checks that backward honours its incoming gradient.
template <class F>
Result run(const Case& c, F loss_fn) {
  Case k{c.h.detach().clone().requires_grad_(true), c.w.detach().clone().requires_grad_(c.w.requires_grad()),
         c.b.detach().clone().requires_grad_(c.b.requires_grad()), c.t};
  at::Tensor loss = loss_fn(k);
  (loss * 0.7).backward();
  return {loss.detach(), k.h.grad(), k.w.grad(), k.b.grad()};
}

at::Tensor reference(const Case& k) { return at::cross_entropy_loss(at::linear(k.h, k.w, k.b).to(at::kFloat), k.t); }

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kFloat) - b.to(at::kFloat)).abs().max().item<double>();
}

TEST(LinearCrossEntropy, MatchesTheWholeLogitsLossAndGradientsInF32) {
  const Case c = make_case(/*weight_grad=*/true);
  const Result ref = run(c, reference);
  for (int64_t chunk : {int64_t{1}, int64_t{8}, int64_t{37}, int64_t{100}, int64_t{0}}) {
    const Result got = run(c, [&](const Case& k) { return linear_cross_entropy(k.h, k.w, k.b, k.t, chunk); });
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    EXPECT_LT(max_diff(got.loss, ref.loss), 1e-6);
    ASSERT_TRUE(got.gh.defined() && got.gw.defined() && got.gb.defined());
    EXPECT_LT(max_diff(got.gh, ref.gh), 1e-7);
    EXPECT_LT(max_diff(got.gw, ref.gw), 1e-7);
    EXPECT_LT(max_diff(got.gb, ref.gb), 1e-7);
    // The ignored rows get no gradient.
    EXPECT_EQ(got.gh.index_select(0, at::arange(0, 37, 5)).abs().max().item<float>(), 0.0f);
  }
}

TEST(LinearCrossEntropy, AFrozenWeightGetsNoGradient) {
  const Case c = make_case(/*weight_grad=*/false);
  const Result ref = run(c, reference);
  const Result got = run(c, [](const Case& k) { return linear_cross_entropy(k.h, k.w, at::Tensor(), k.t, 8); });
  const Result ref_nobias = run(c, [](const Case& k) {
    return at::cross_entropy_loss(at::linear(k.h, k.w).to(at::kFloat), k.t);
  });
  EXPECT_FALSE(got.gw.defined());
  EXPECT_LT(max_diff(got.loss, ref_nobias.loss), 1e-6);
  EXPECT_LT(max_diff(got.gh, ref_nobias.gh), 1e-7);
  EXPECT_GT(max_diff(ref.loss, ref_nobias.loss), 1e-4);  // the bias matters: the case can tell them apart
}

TEST(LinearCrossEntropy, WithoutGradTheLossIsTheSame) {
  const Case c = make_case(true);
  const double ref = reference(c).item<double>();
  at::NoGradGuard no_grad;
  const at::Tensor loss = linear_cross_entropy(c.h, c.w, c.b, c.t, 8);
  EXPECT_FALSE(loss.requires_grad());
  EXPECT_NEAR(loss.item<double>(), ref, 1e-6);
}

TEST(LinearCrossEntropy, UnderBf16AutocastMatchesAutocastsLinear) {
  const Case c = make_case(true);
  Result ref, got;
  {
    Bf16Autocast mixed;
    ref = run(c, reference);
    got = run(c, [](const Case& k) { return linear_cross_entropy(k.h, k.w, k.b, k.t, 8); });
  }
  const Result f32 = run(c, reference);
  EXPECT_EQ(got.gh.scalar_type(), at::kFloat);  // the gradient comes back in h's dtype
  // The same bf16 products, summed in another order: the loss far closer than
  // bf16 is to f32, the gradients (bf16 matmul outputs) within 2 bf16 steps.
  EXPECT_LT(max_diff(got.loss, ref.loss), 1e-5);
  EXPECT_GT(max_diff(ref.loss, f32.loss), 1e-5);  // bf16 did run
  const double step = 1.0 / 128;  // bf16: 8 significant bits
  EXPECT_LE(max_diff(got.gh, ref.gh), 2 * step * ref.gh.abs().max().item<double>());
  EXPECT_LE(max_diff(got.gw, ref.gw), 2 * step * ref.gw.abs().max().item<double>());
  EXPECT_LE(max_diff(got.gb, ref.gb), 2 * step * ref.gb.abs().max().item<double>());
}

TEST(LinearCrossEntropy, NoTargetIsNaNAndBadShapesAreErrors) {
  Case c = make_case(true);
  c.t.fill_(-100);
  EXPECT_TRUE(std::isnan(linear_cross_entropy(c.h, c.w, c.b, c.t, 8).item<double>()));
  try {
    linear_cross_entropy(c.h, c.w.t(), c.b, c.t);
    FAIL() << "no error for a weight of the wrong shape";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("do not match"), std::string::npos) << e.what();
  }
  EXPECT_THROW(linear_cross_entropy(c.h, c.w, c.b, c.t.narrow(0, 0, 5)), Error);
  at::Tensor outside = make_case(true).t.clone();
  outside[3] = 50;  // the vocabulary is 50
  try {
    linear_cross_entropy(c.h, c.w, c.b, outside);
    FAIL() << "no error for a target outside the vocabulary";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the vocabulary [0, 50)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(linear_cross_entropy(c.h, c.w, c.b.narrow(0, 0, 5), c.t), Error);
}

TEST(LinearCrossEntropy, BlocksAreAbout32MiB) {
  EXPECT_EQ(loss_chunk_rows(32000), 262);
  EXPECT_EQ(loss_chunk_rows(int64_t{1} << 40), 1);
}

}  // namespace
}  // namespace m4
