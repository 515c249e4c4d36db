// Prompt tuning and prefix tuning against HF PEFT 0.5 (tests/fixtures/
// hf-reference/{prompt,prefix}_tuning), plus what the fixture lacks: prefixes
// under grouped-query attention, the reparameterisation MLP folded at export,
// KV-cached generation with either method, and prefixes on an encoder.
#include <gtest/gtest.h>

#include "core/onednn_gemm.h"
#include "core/safetensors.h"
#include "firmware/transformer_encoder.h"
#include "peft/hf_peft.h"
#include "peft/prefix_tuning.h"
#include "peft/prompt_tuning.h"
#include "tests/peft/peft_test_util.h"

namespace m4 {
namespace {

using test::max_abs_diff;

TEST(PromptTuningParity, LogitsAndLoss) {
  at::NoGradGuard ng;
  auto llama = test::fixture_llama("llama");
  HfPeftAdapter hf = read_hf_peft(test::fixtures() / "prompt_tuning" / "adapter", *llama);
  Adapter adapter({{"backbone", llama}}, hf.config, "fixture llama");
  adapter.load_tensors(hf.tensors, "prompt_tuning/adapter");
  SafetensorsFile ref = SafetensorsFile::open(test::fixtures() / "prompt_tuning" / "reference.safetensors");
  const at::Tensor ids = ref.tensor("input_ids");
  at::Tensor logits = llama->forward(ids).logits;
  ASSERT_EQ(logits.sizes(), ref.tensor("logits").sizes());
  const double d = max_abs_diff(logits, ref.tensor("logits"));
  at::Tensor labels = at::cat({at::full({ids.size(0), 8}, -100, at::kLong), ids}, 1);
  const double dl = std::abs(test::causal_lm_loss(logits, labels).item<double>() - ref.tensor("loss").item<double>());
  std::cout << "[parity] prompt tuning logits max |diff| = " << d << ", loss |diff| = " << dl << "\n";
  EXPECT_LT(d, 1e-4);
  EXPECT_LT(dl, 1e-5);
}

TEST(PrefixTuningParity, LogitsLossAndPerLayerPrefixes) {
  at::NoGradGuard ng;
  auto llama = test::fixture_llama("prefix_tuning/base");
  HfPeftAdapter hf = read_hf_peft(test::fixtures() / "prefix_tuning" / "adapter", *llama);
  SafetensorsFile ref = SafetensorsFile::open(test::fixtures() / "prefix_tuning" / "reference.safetensors");
  for (int i = 0; i < 2; ++i) {  // the layout split matches HF's per-layer past_key_values
    const std::string n = "backbone.layers." + std::to_string(i) + ".self_attn.prefix_";
    EXPECT_TRUE(at::equal(hf.tensors.at(n + "key"), ref.tensor("past_key." + std::to_string(i))));
    EXPECT_TRUE(at::equal(hf.tensors.at(n + "value"), ref.tensor("past_value." + std::to_string(i))));
  }
  Adapter adapter({{"backbone", llama}}, hf.config, "fixture llama");
  adapter.load_tensors(hf.tensors, "prefix_tuning/adapter");
  const at::Tensor ids = ref.tensor("input_ids");
  at::Tensor logits = llama->forward(ids).logits;
  const double d = max_abs_diff(logits, ref.tensor("logits"));
  const double dl = std::abs(test::causal_lm_loss(logits, ids).item<double>() - ref.tensor("loss").item<double>());
  std::cout << "[parity] prefix tuning logits max |diff| = " << d << ", loss |diff| = " << dl << "\n";
  EXPECT_LT(d, 1e-4);
  EXPECT_LT(dl, 1e-5);
}

// An independent check of GQA prefixes: the same model with its k/v heads
// repeated (a plain multi-head model) and the prefixes repeated the same way.
TEST(PrefixTuning, GroupedQueryAttentionEqualsRepeatedHeads) {
  at::NoGradGuard ng;
  auto gqa = test::fixture_llama("llama");  // 4 heads, 2 kv heads
  const auto& c = gqa->config();
  const int64_t rep = c.num_attention_heads / c.num_key_value_heads, D = c.head_dim;
  NamedTensors repeated;
  WeightSet ws = WeightSet::open_hf_dir(test::fixtures() / "llama");
  for (const auto& name : ws.names()) {
    at::Tensor t = ws.tensor(name);
    if (name.find("k_proj") != std::string::npos || name.find("v_proj") != std::string::npos) {
      t = t.view({c.num_key_value_heads, 1, D, -1}).expand({c.num_key_value_heads, rep, D, t.size(1)}).reshape({-1, t.size(1)});
    }
    repeated.emplace_back(name, t.contiguous());
  }
  test::TempDir tmp;
  write_safetensors(tmp / "model.safetensors", repeated);
  LlamaConfig mc = c;
  mc.num_key_value_heads = c.num_attention_heads;
  auto mha = std::make_shared<LlamaImpl>(mc, WeightSet::open({tmp / "model.safetensors"}), "repeated");

  const auto cfg = test::peft_config(R"({"trainable": {"backbone": "prefix"}, "peft": {"prefix": {"num_virtual_tokens": 3}}})");
  Adapter a({{"backbone", gqa}}, cfg, "gqa");
  Adapter b({{"backbone", mha}}, cfg, "mha");
  std::map<std::string, at::Tensor> ta, tb;
  for (auto& p : a.parameters()) {
    ta[p.name] = at::randn(p.tensor.sizes());
    tb[p.name] = ta[p.name].repeat_interleave(rep, 0);  // (KV, P, D) -> (H, P, D)
  }
  a.load_tensors(ta, "random");
  b.load_tensors(tb, "random");
  const at::Tensor ids = at::randint(0, 256, {2, 10}, at::kLong);
  const double d = max_abs_diff(gqa->forward(ids).logits, mha->forward(ids).logits);
  std::cout << "[check] GQA prefix vs repeated heads max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-5);
  // And the prefix really changes the output.
  a.detach();
  EXPECT_GT(max_abs_diff(gqa->forward(ids).logits, mha->forward(ids).logits), 1e-3);
}

TEST(PrefixTuning, ReparameterisationFoldsToTheSameLogits) {
  at::NoGradGuard ng;
  auto llama = test::fixture_llama("llama");
  const auto cfg = test::peft_config(
      R"({"trainable": {"backbone": "prefix"}, "peft": {"prefix": {"num_virtual_tokens": 4, "projection_hidden": 32}}})");
  Adapter a({{"backbone", llama}}, cfg, "fixture llama");
  const at::Tensor ids = at::randint(0, 256, {2, 9}, at::kLong);
  const at::Tensor with_mlp = llama->forward(ids).logits;
  auto names = a.parameters();
  ASSERT_EQ(names.size(), 5u);  // embedding + 2 Linear layers
  test::TempDir tmp;
  a.save(tmp / "exported.safetensors", /*exported=*/true);
  a.detach();
  Adapter b({{"backbone", llama}}, cfg, "fixture llama");
  b.load(tmp / "exported.safetensors");  // plain tables: b folds its own MLP away
  EXPECT_EQ(b.parameters().size(), 4u);  // 2 layers x key/value
  const double d = max_abs_diff(llama->forward(ids).logits, with_mlp);
  std::cout << "[check] prefix MLP folded vs unfolded max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-5);
}

// KV-cached generation must give the tokens of full forwards, with the soft
// prompt in the cache and the prefix outside it.
TEST(PromptAndPrefix, CachedGenerationEqualsFullForward) {
  at::NoGradGuard ng;
  for (const char* method : {"prompt", "prefix"}) {
    auto llama = test::fixture_llama("llama");
    Adapter a({{"backbone", llama}},
              test::peft_config(std::string(R"({"trainable": {"backbone": ")") + method +
                                R"("}, "peft": {"prompt": {"num_virtual_tokens": 5}, "prefix": {"num_virtual_tokens": 5}}})"),
              "fixture llama");
    const at::Tensor ids = at::randint(3, 256, {2, 7}, at::kLong);
    GenerateOptions o;
    o.max_new_tokens = 6;
    at::Tensor out = generate(*llama, ids, {}, o);
    at::Tensor seq = ids;
    for (int64_t n = 0; n < out.size(1); ++n) {
      at::Tensor logits = llama->forward(seq).logits;
      at::Tensor next = logits.select(1, logits.size(1) - 1).argmax(-1);
      EXPECT_TRUE(at::equal(next, out.select(1, n))) << method << " step " << n;
      seq = at::cat({seq, next.unsqueeze(1)}, 1);
    }
  }
}

TEST(PrefixTuning, OnAnEncoderEveryPositionSeesThePrefix) {
  at::NoGradGuard ng;
  // One encoder attention layer: with a prefix, the output equals attention over [prefix; x].
  const int64_t C = 8, H = 2, P = 3;
  auto lin = [&](int64_t i) { return Linear(at::randn({C, C}), at::randn({C})); };
  EncoderAttention attn(lin(0), lin(1), lin(2), lin(3), H);
  const at::Tensor x = at::randn({2, 5, C});
  auto cfg = PrefixTuningOptions(P, 1, H, C / H);
  PrefixTuning pt(cfg);
  attn->prefix = pt->hook(0);
  at::Tensor got = attn->forward(x, at::Tensor());
  // Reference: keys/values of the prefix spliced in by hand.
  at::Tensor q = attn->q_proj(x).view({2, 5, H, C / H}).transpose(1, 2);
  at::Tensor k = at::cat({pt->keys[0].unsqueeze(0).expand({2, H, P, C / H}), attn->k_proj(x).view({2, 5, H, C / H}).transpose(1, 2)}, 2);
  at::Tensor v = at::cat({pt->values[0].unsqueeze(0).expand({2, H, P, C / H}), attn->v_proj(x).view({2, 5, H, C / H}).transpose(1, 2)}, 2);
  // The products through gemm, as the layer runs them (oneDNN where f32 GEMMs run there; its
  // parity with ATen's is tests/core/onednn_gemm_test.cpp's): this compares the splicing.
  at::Tensor probs = at::softmax(gemm(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(C / H)), -1);
  at::Tensor want = attn->out_proj(gemm(probs, v).transpose(1, 2).reshape({2, 5, C}));
  EXPECT_LT(max_abs_diff(got, want), 1e-5);
  // A padding mask keeps the prefix visible.
  at::Tensor mask = at::zeros({2, 1, 1, 5});
  mask.index_put_({1, 0, 0, 4}, -1e9);
  EXPECT_EQ(attn->forward(x, mask).sizes(), x.sizes());
}

}  // namespace
}  // namespace m4
