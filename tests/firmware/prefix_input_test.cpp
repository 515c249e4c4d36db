// Path-1 prefix placement on the backbone (prepend_prefix, generate with a
// prefix) and the projector that makes the prefix.
#include <gtest/gtest.h>

#include "firmware/demo.h"
#include "firmware/firmware.h"
#include "firmware/llama.h"
#include "firmware/projector.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

class PathsOnDemo : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    DemoOptions o;
    o.out = dir_->path() / "fw";
    init_demo(o);
  }
  static void TearDownTestSuite() { delete dir_; }
  static test::TempDir* dir_;
};
test::TempDir* PathsOnDemo::dir_ = nullptr;

// The projected tokens sit before the text, whatever side the text is padded on.
TEST_F(PathsOnDemo, PrefixPlacementIsIndependentOfTextPadding) {
  at::NoGradGuard ng;
  Firmware fw = Firmware::open(dir_->path() / "fw");
  auto llama = fw.load_backbone({});
  at::Tensor prefix = at::randn({1, 3, 128});
  at::Tensor text = at::tensor({1L, 50L, 60L, 70L}).view({1, 4});
  // Unpadded, left-padded by 2, right-padded by 2.
  auto run = [&](const at::Tensor& ids, const at::Tensor& mask) {
    PrefixedInput p = prepend_prefix(*llama, prefix, ids, mask);
    return llama->forward_embeds(p.inputs_embeds, p.attention_mask, p.position_ids).logits;
  };
  at::Tensor plain = run(text, at::ones({1, 4}, at::kLong));
  at::Tensor left = run(at::cat({at::zeros({1, 2}, at::kLong), text}, 1),
                        at::cat({at::zeros({1, 2}, at::kLong), at::ones({1, 4}, at::kLong)}, 1));
  at::Tensor right = run(at::cat({text, at::zeros({1, 2}, at::kLong)}, 1),
                         at::cat({at::ones({1, 4}, at::kLong), at::zeros({1, 2}, at::kLong)}, 1));
  EXPECT_LT(test::max_abs_diff(plain, at::cat({plain.narrow(1, 0, 3), left.narrow(1, 5, 4)}, 1)), 1e-4);
  EXPECT_LT(test::max_abs_diff(plain, right.narrow(1, 0, 7)), 1e-4);
  // The prefix matters: another prefix changes the text's logits.
  PrefixedInput other = prepend_prefix(*llama, at::randn({1, 3, 128}), text, {});
  EXPECT_GT(test::max_abs_diff(plain, llama->forward_embeds(other.inputs_embeds, other.attention_mask,
                                                            other.position_ids).logits),
            1e-3);
  test::expect_error([&] { prepend_prefix(*llama, at::randn({1, 3, 64}), text, {}); }, {"(batch, tokens, 128)"});
}

// generate() with a prefix equals greedy decoding by hand over the prefixed sequence.
TEST_F(PathsOnDemo, GenerateWithPrefixMatchesGreedyByHand) {
  at::NoGradGuard ng;
  Firmware fw = Firmware::open(dir_->path() / "fw");
  auto llama = fw.load_backbone({});
  ProjectorOptions po;
  po.in_features = 64;
  po.out_features = 128;
  po.kind = "mlp";
  Projector proj(po);
  at::Tensor prefix = proj->forward(at::randn({1, 5, 64}));
  at::Tensor ids = at::tensor({1L, 40L, 41L}).view({1, 3});
  GenerateOptions g;
  g.max_new_tokens = 6;
  at::Tensor got = generate(*llama, ids, {}, g, prefix);
  at::Tensor seq = ids;
  for (int i = 0; i < 6; ++i) {
    PrefixedInput p = prepend_prefix(*llama, prefix, seq, {});
    at::Tensor next = llama->forward_embeds(p.inputs_embeds, p.attention_mask, p.position_ids).logits[0][-1].argmax();
    EXPECT_EQ(got[0][i].item<int64_t>(), next.item<int64_t>()) << "step " << i;
    seq = at::cat({seq, next.view({1, 1})}, 1);
  }
}

TEST(Projector, ShapesKindsAndSeededInit) {
  ProjectorOptions o;
  o.in_features = 8;
  o.out_features = 16;
  Projector lin(o);
  EXPECT_EQ(lin->forward(at::randn({2, 3, 8})).sizes(), at::IntArrayRef({2, 3, 16}));
  Projector lin2(o);
  EXPECT_TRUE(at::equal(lin->named_parameters()["linear.weight"], lin2->named_parameters()["linear.weight"]));
  for (const auto& p : lin->parameters()) EXPECT_TRUE(p.requires_grad()) << "the projector is trainable";
  o.kind = "mlp";
  o.hidden = 32;
  Projector mlp(o);
  EXPECT_EQ(mlp->named_parameters()["fc1.weight"].sizes(), at::IntArrayRef({32, 8}));
  EXPECT_EQ(mlp->forward(at::randn({4, 8})).sizes(), at::IntArrayRef({4, 16}));
  test::expect_error([&] { mlp->forward(at::randn({4, 9})); }, {"takes width 8"});
  o.kind = "conv";
  test::expect_error([&] { Projector p(o); }, {"'conv' is not linear or mlp"});
}

}  // namespace
}  // namespace m4
