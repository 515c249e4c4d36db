// The frozen Linear: its f32 products (in oneDNN where built with it) give
// at::linear's output and input gradient; its bf16 copy (train.precision
// bf16) is made once, used under bf16 autocast only, never in place of the f32
// weight elsewhere.
#include "firmware/linear.h"

#include <gtest/gtest.h>

#include "core/autocast.h"
#include "core/onednn_gemm.h"

namespace m4 {
namespace {

TEST(Linear, KeepsABf16CopyOnceAndUsesItOnlyUnderBf16Autocast) {
  at::manual_seed(3);
  Linear lin(at::randn({8, 16}), at::randn({8}));
  const void* f32_data = lin->weight.data_ptr();
  const at::Tensor x = at::randn({4, 16});
  const at::Tensor f32 = lin->forward(x);
  at::Tensor autocast_own;
  {
    Bf16Autocast mixed;
    autocast_own = lin->forward(x);
  }

  EXPECT_EQ(keep_bf16_weights(*lin), 8 * 16 * 2);
  EXPECT_EQ(keep_bf16_weights(*lin), 0);  // already there
  EXPECT_EQ(lin->weight.scalar_type(), at::kFloat);
  EXPECT_EQ(lin->weight.data_ptr(), f32_data);
  EXPECT_TRUE(at::equal(lin->forward(x), f32));
  {
    Bf16Autocast mixed;
    // The copy is the weight rounded once, as autocast rounds it per call.
    EXPECT_TRUE(at::equal(lin->forward(x), autocast_own));
    lin->weight_bf16.zero_();  // proves which weight the forward reads
    const at::Tensor y = lin->forward(x);
    EXPECT_EQ(y.scalar_type(), at::kBFloat16);
    EXPECT_TRUE(at::equal(y, lin->bias.to(at::kBFloat16).expand({4, 8})));
  }
  EXPECT_TRUE(at::equal(lin->forward(x), f32));  // f32 again outside autocast
}

TEST(Linear, FrozenF32ProductsGiveAtenLinearsOutputAndInputGradient) {
  at::manual_seed(5);
  Linear lin(at::randn({24, 40}), at::randn({24}));
  const at::Tensor x0 = at::randn({3, 7, 40}), g = at::randn({3, 7, 24});
  at::Tensor x = x0.clone().requires_grad_(true), xr = x0.clone().requires_grad_(true);
  const at::Tensor y = lin->forward(x), yr = at::linear(xr, lin->weight, lin->bias);
  (y * g).sum().backward();
  (yr * g).sum().backward();
  const double tol = 1e-5 * yr.abs().max().item<double>();
  EXPECT_LE((y - yr).abs().max().item<double>(), tol);
  EXPECT_LE((x.grad() - xr.grad()).abs().max().item<double>(), 1e-5 * xr.grad().abs().max().item<double>());
  EXPECT_FALSE(lin->weight.grad().defined());
  // Without a gradient to carry the same products run, and a 1-D input keeps its shape.
  EXPECT_LE((lin->forward(x0) - yr.detach()).abs().max().item<double>(), tol);
  EXPECT_EQ(lin->forward(at::randn({40})).sizes(), at::IntArrayRef({24}));
  // Where oneDNN is on, that is where these products ran.
  if (onednn_f32_gemm()) {
    EXPECT_TRUE(gemm_in_onednn(x0.reshape({-1, 40}), lin->weight.t()));
  }
}

TEST(Linear, ATrainableWeightGetsNoCopy) {
  Linear lin(at::randn({8, 16}), at::Tensor());
  lin->weight.requires_grad_(true);
  EXPECT_EQ(keep_bf16_weights(*lin), 0);
  EXPECT_FALSE(lin->weight_bf16.defined());
}

}  // namespace
}  // namespace m4
