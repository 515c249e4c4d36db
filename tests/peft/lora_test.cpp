// LoRA against HF PEFT 0.5 on the llama fixture (tests/fixtures/hf-reference/lora):
// forward, step-0 gradients, a 20-step AdamW trajectory; plus merge/unmerge,
// rsLoRA, per-rule ranks, pattern errors and frozen firmware weights.
#include "peft/lora.h"

#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include "core/safetensors.h"
#include "core/sha256.h"
#include "peft/hf_peft.h"
#include "peft/pattern.h"
#include "tests/peft/peft_test_util.h"

namespace m4 {
namespace {

using test::max_abs_diff;

const char* kLoraQV = R"({"trainable": {"backbone": "lora"},
  "peft": {"lora": {"r": 8, "alpha": 16, "dropout": 0.0, "targets": ["backbone.layers.*.self_attn.{q,v}_proj"]}}})";

// The HF-named tensors of a fixture file under m4forge names.
std::map<std::string, at::Tensor> hf_lora_tensors(const std::string& file) {
  SafetensorsFile f = SafetensorsFile::open(test::fixtures() / "lora" / file);
  std::map<std::string, at::Tensor> out;
  for (const auto& info : f.tensors()) out[lora_name_from_hf(info.name)] = f.tensor(info);
  return out;
}

std::string test_sha256(const std::filesystem::path& p) { return to_hex(sha256_file(p)); }

std::shared_ptr<LinearImpl> q_proj(LlamaImpl& llama, int64_t layer) {
  return llama.layers->ptr(layer)->as<LlamaDecoderLayerImpl>()->self_attn->q_proj.ptr();
}

TEST(Lora, InitIsPeftsKaimingUniformAndZero) {
  LoraLinear l(LoraLinearOptions(64, 32).r(4).seed(3));
  EXPECT_TRUE(at::all(l->lora_b.eq(0)).item<bool>());
  const double bound = 1.0 / std::sqrt(64.0);
  EXPECT_LE(l->lora_a.abs().max().item<double>(), bound);
  EXPECT_GT(l->lora_a.abs().max().item<double>(), 0.8 * bound);  // spread over the interval, not a constant
  LoraLinear same(LoraLinearOptions(64, 32).r(4).seed(3));
  EXPECT_TRUE(at::equal(l->lora_a, same->lora_a));
  EXPECT_DOUBLE_EQ(LoraLinearOptions(1, 1).r(16).alpha(32).scaling(), 2.0);
  EXPECT_DOUBLE_EQ(LoraLinearOptions(1, 1).r(16).alpha(32).rslora(true).scaling(), 8.0);
}

TEST(LoraParity, ForwardWithPeftAdapterMatchesLogitsAfter) {
  at::NoGradGuard ng;
  auto llama = test::fixture_llama("llama");
  HfPeftAdapter hf = read_hf_peft(test::fixtures() / "lora" / "adapter", *llama);
  Adapter adapter({{"backbone", llama}}, hf.config, "fixture llama");
  adapter.load_tensors(hf.tensors, "lora/adapter");
  SafetensorsFile data = SafetensorsFile::open(test::fixtures() / "lora" / "train_data.safetensors");
  auto out = llama->forward(data.tensor("input_ids"));
  const double d = max_abs_diff(out.logits, data.tensor("logits_after"));
  std::cout << "[parity] lora logits_after max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);
  // q_proj 64 -> 64, v_proj 64 -> 32 (2 kv heads x 16): r (in + out) each, 2 layers.
  EXPECT_EQ(adapter.trainable_count(), 2 * (8 * (64 + 64) + 8 * (64 + 32)));
}

TEST(LoraParity, GradientsAtStep0AndTwentyAdamWSteps) {
  auto llama = test::fixture_llama("llama");
  const auto dir = test::fixtures() / "lora";
  const std::string weights_hash = test_sha256(dir.parent_path() / "llama" / "model.safetensors");
  Adapter adapter({{"backbone", llama}}, test::peft_config(kLoraQV), "fixture llama");
  adapter.load_tensors(hf_lora_tensors("lora_init.safetensors"), "lora_init");
  SafetensorsFile data = SafetensorsFile::open(dir / "train_data.safetensors");
  const at::Tensor ids = data.tensor("input_ids"), labels = data.tensor("labels");
  const at::Tensor losses = data.tensor("losses");

  auto params = adapter.parameters();
  std::vector<at::Tensor> tensors;
  for (auto& p : params) tensors.push_back(p.tensor);
  torch::optim::AdamW opt(tensors, torch::optim::AdamWOptions(1e-3).betas({0.9, 0.999}).eps(1e-8).weight_decay(0.01));
  adapter.train();
  double worst_loss = 0;
  for (int step = 0; step < 20; ++step) {
    opt.zero_grad();
    at::Tensor loss = test::causal_lm_loss(llama->forward(ids).logits, labels);
    loss.backward();
    worst_loss = std::max(worst_loss, std::abs(loss.item<double>() - losses[step].item<double>()));
    if (step == 0) {
      auto grads = hf_lora_tensors("lora_grads_step0.safetensors");
      double dg = 0;
      for (auto& p : params) dg = std::max(dg, max_abs_diff(p.tensor.grad(), grads.at(p.name)));
      std::cout << "[parity] lora grads step0 max |diff| = " << dg << "\n";
      EXPECT_LT(dg, 1e-4);
    }
    adapter.check_frozen();
    opt.step();
  }
  std::cout << "[parity] lora 20-step losses max |diff| = " << worst_loss << "\n";
  EXPECT_LT(worst_loss, 1e-5);
  auto final_ = hf_lora_tensors("lora_final.safetensors");
  double df = 0;
  for (auto& p : params) df = std::max(df, max_abs_diff(p.tensor, final_.at(p.name)));
  std::cout << "[parity] lora_final max |diff| = " << df << "\n";
  EXPECT_LT(df, 1e-4);
  at::NoGradGuard ng;
  const double dl = max_abs_diff(llama->forward(ids).logits, data.tensor("logits_after"));
  std::cout << "[parity] lora logits after training max |diff| = " << dl << "\n";
  EXPECT_LT(dl, 1e-4);
  EXPECT_EQ(test_sha256(dir.parent_path() / "llama" / "model.safetensors"), weights_hash);
}

TEST(Lora, MergeMatchesUnmergedAndUnmergeRestoresTheFrozenWeight) {
  at::NoGradGuard ng;
  auto llama = test::fixture_llama("llama");
  Adapter adapter({{"backbone", llama}}, test::peft_config(kLoraQV), "fixture llama");
  adapter.load_tensors(hf_lora_tensors("lora_final.safetensors"), "lora_final");
  const at::Tensor ids = at::randint(0, 256, {2, 12}, at::kLong);
  const at::Tensor before = llama->forward(ids).logits;
  const at::Tensor frozen = q_proj(*llama, 0)->weight;
  adapter.merge();
  const at::Tensor merged = llama->forward(ids).logits;
  EXPECT_LT(max_abs_diff(before, merged), 1e-5);
  adapter.unmerge();
  EXPECT_TRUE(at::equal(llama->forward(ids).logits, before));
  EXPECT_EQ(frozen.data_ptr(), q_proj(*llama, 0)->weight.data_ptr());
  adapter.detach();
  const at::Tensor base = test::fixture_llama("llama")->forward(ids).logits;
  EXPECT_TRUE(at::equal(llama->forward(ids).logits, base));
}

TEST(Lora, FirstMatchingRuleWinsAndRanksFollowIt) {
  auto llama = test::fixture_llama("llama");
  Adapter adapter({{"backbone", llama}},
                  test::peft_config(R"({"trainable": {"backbone": "lora"}, "peft": {"lora": {"r": 4, "targets": [
                      {"pattern": "backbone.layers.0.self_attn.q_proj", "r": 2, "alpha": 4},
                      "backbone.layers.*.self_attn.*_proj", "backbone.lm_head"]}}})"),
                  "fixture llama");
  std::map<std::string, std::vector<int64_t>> shapes;
  for (auto& p : adapter.parameters()) shapes[p.name] = p.tensor.sizes().vec();
  EXPECT_EQ(shapes.at("backbone.layers.0.self_attn.q_proj.lora_a"), (std::vector<int64_t>{2, 64}));
  EXPECT_EQ(shapes.at("backbone.layers.0.self_attn.k_proj.lora_a"), (std::vector<int64_t>{4, 64}));
  EXPECT_EQ(shapes.at("backbone.layers.1.self_attn.o_proj.lora_b"), (std::vector<int64_t>{64, 4}));
  EXPECT_EQ(shapes.at("backbone.lm_head.lora_b"), (std::vector<int64_t>{256, 4}));
  EXPECT_EQ(shapes.size(), 2u * (2 * 4 + 1));
}

TEST(Lora, TargetMatchingNothingIsAnErrorListingNearestNames) {
  auto llama = test::fixture_llama("llama");
  test::expect_error(
      [&] {
        Adapter a({{"backbone", llama}},
                  test::peft_config(R"({"trainable": {"backbone": "lora"},
                    "peft": {"lora": {"targets": ["backbone.layers.*.self_attn.q_prj"]}}})"),
                  "fixture llama");
      },
      {"LoRA target 'backbone.layers.*.self_attn.q_prj' matches no Linear of backbone",
       "nearest: backbone.layers.*.self_attn.q_proj"});
  // Nothing stays attached after the failure.
  at::NoGradGuard ng;
  const at::Tensor ids = at::randint(0, 256, {1, 5}, at::kLong);
  EXPECT_TRUE(at::equal(llama->forward(ids).logits, test::fixture_llama("llama")->forward(ids).logits));
}

TEST(Pattern, GlobsBracesAndDoubleStar) {
  EXPECT_TRUE(match_pattern("backbone.layers.*.self_attn.{q,v}_proj", "backbone.layers.11.self_attn.v_proj"));
  EXPECT_FALSE(match_pattern("backbone.layers.*.self_attn.{q,v}_proj", "backbone.layers.1.self_attn.k_proj"));
  EXPECT_FALSE(match_pattern("backbone.*.q_proj", "backbone.layers.1.self_attn.q_proj"));  // * stays in a component
  EXPECT_TRUE(match_pattern("backbone.**.q_proj", "backbone.layers.1.self_attn.q_proj"));
  EXPECT_TRUE(match_pattern("img_enc.layers.*.mlp.*", "img_enc.layers.0.mlp.fc2"));
  test::expect_error([] { check_pattern("a.{b,"); }, {"unclosed"});
  test::expect_error([] { check_pattern("a.{b,}"); }, {"empty alternative"});
}

}  // namespace
}  // namespace m4
