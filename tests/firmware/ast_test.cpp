// Parity of the Audio Spectrogram Transformer (aud_b_enc) with HF transformers'
// ASTModel on the fixture checkpoint (tests/fixtures/hf-reference/ast), plus
// ASTForAudioClassification names, qkv_bias=false, and every error.
#include "firmware/ast.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "core/safetensors.h"
#include "firmware/weight_set.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::expect_error;
using test::max_abs_diff;
using test::TempDir;

fs::path fixture_dir() { return test::fixtures() / "ast"; }
AstConfig fixture_config() { return AstConfig::from_file(fixture_dir() / "config.json"); }
SafetensorsFile reference() { return SafetensorsFile::open(fixture_dir() / "reference.safetensors"); }

NamedTensors fixture_tensors() {
  WeightSet ws = WeightSet::open_hf_dir(fixture_dir());
  NamedTensors out;
  for (const auto& n : ws.names()) out.emplace_back(n, ws.tensor(n).clone());
  return out;
}

WeightSet write_and_open(const fs::path& p, const NamedTensors& tensors) {
  write_safetensors(p, tensors, {{"format", "pt"}});
  return WeightSet::open({p});
}

TEST(AstParity, LastHiddenStatePoolerAndHiddenStates) {
  at::NoGradGuard ng;
  auto ref = reference();
  Ast model(fixture_config(), WeightSet::open_hf_dir(fixture_dir()), "fixture");
  EncoderOutput out = model->forward(ref.tensor("input_values"), /*hidden_states=*/true);
  double d = max_abs_diff(out.last_hidden_state, ref.tensor("last_hidden_state"));
  std::cout << "[parity] ast last_hidden_state max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);
  double dp = max_abs_diff(out.pooler_output, ref.tensor("pooler_output"));
  std::cout << "[parity] ast pooler_output max |diff| = " << dp << "\n";
  EXPECT_LT(dp, 1e-4);
  ASSERT_EQ(out.hidden_states.size(), 3u);
  for (size_t k = 0; k < out.hidden_states.size(); ++k) {
    double dh = max_abs_diff(out.hidden_states[k], ref.tensor("hidden_states." + std::to_string(k)));
    std::cout << "[parity] ast hidden_states." << k << " max |diff| = " << dh << "\n";
    EXPECT_LT(dh, 1e-4) << "hidden_states." << k;
  }
  EXPECT_FALSE(out.embeds.defined());
}

TEST(AstParity, RowsAreIndependent) {
  at::NoGradGuard ng;
  auto ref = reference();
  Ast model(fixture_config(), WeightSet::open_hf_dir(fixture_dir()), "fixture");
  at::Tensor x = ref.tensor("input_values");
  EncoderOutput both = model->forward(x);
  EXPECT_TRUE(both.hidden_states.empty());
  EncoderOutput one = model->forward(x.narrow(0, 1, 1));
  EXPECT_LT(max_abs_diff(one.pooler_output, both.pooler_output.narrow(0, 1, 1)), 1e-5);
}

TEST(AstPatches, FrequencyMajorOverlappingPatches) {
  // An independent im2col of HF's patch layout: patch (f, t) covers mel bins
  // [f*fs, f*fs+P) and frames [t*ts, t*ts+P); patches ordered f-major.
  at::NoGradGuard ng;
  AstConfig c = fixture_config();
  WeightSet ws = WeightSet::open_hf_dir(fixture_dir());
  Ast model(c, ws, "fixture");
  at::Tensor x = reference().tensor("input_values");  // (B, time, mel)
  at::Tensor got = model->patch_embedding(x);         // (B, N, C)
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{2, c.num_patches(), c.hidden_size}));
  at::Tensor w =
      ws.tensor("embeddings.patch_embeddings.projection.weight").to(at::kDouble).reshape({c.hidden_size, -1});
  at::Tensor b = ws.tensor("embeddings.patch_embeddings.projection.bias").to(at::kDouble);
  const int64_t P = c.patch_size;
  double d = 0;
  for (int64_t f = 0; f < c.frequency_patches(); ++f) {
    for (int64_t t = 0; t < c.time_patches(); ++t) {
      // (B, P time, P mel) -> (B, P mel, P time), as the conv sees (mel, time)
      at::Tensor patch = x.narrow(1, t * c.time_stride, P).narrow(2, f * c.frequency_stride, P).transpose(1, 2);
      at::Tensor want = at::matmul(patch.reshape({2, -1}).to(at::kDouble), w.t()) + b;
      d = std::max(d, max_abs_diff(got.select(1, f * c.time_patches() + t), want));
    }
  }
  EXPECT_LT(d, 1e-5);
  EXPECT_EQ(c.frequency_patches(), 2);
  EXPECT_EQ(c.time_patches(), 5);
}

TEST(AstLoad, WeightsAreZeroCopyViewsIntoTheMapping) {
  WeightSet ws = WeightSet::open_hf_dir(fixture_dir());
  Ast model(fixture_config(), ws, "fixture");
  const auto& file = ws.files()[0];
  const auto* lo = file.mapping()->data();
  const auto* hi = lo + file.mapping()->size();
  for (const auto& p : model->named_parameters()) {
    const auto* ptr = static_cast<const uint8_t*>(p.value().data_ptr());
    EXPECT_TRUE(ptr >= lo && ptr < hi) << p.key() << " was copied";
    EXPECT_FALSE(p.value().requires_grad()) << p.key();
  }
  EXPECT_EQ(model->named_parameters().size(), ws.names().size());
  auto params = model->named_parameters();
  for (const char* n : {"cls_token", "distillation_token", "position_embeddings", "patch_embedding.weight",
                        "layers.0.self_attn.k_proj.bias", "layers.1.layer_norm2.weight", "layers.1.mlp.fc1.weight",
                        "layer_norm.weight"})
    EXPECT_TRUE(params.contains(n)) << n;
}

TEST(AstLoad, InternalNames) {
  EXPECT_EQ(AstImpl::internal_name("encoder.layer.3.attention.attention.query.weight"),
            "layers.3.self_attn.q_proj.weight");
  EXPECT_EQ(AstImpl::internal_name("encoder.layer.0.attention.output.dense.bias"), "layers.0.self_attn.out_proj.bias");
  EXPECT_EQ(AstImpl::internal_name("encoder.layer.1.output.dense.weight"), "layers.1.mlp.fc2.weight");
  EXPECT_EQ(AstImpl::internal_name("encoder.layer.1.intermediate.dense.weight"), "layers.1.mlp.fc1.weight");
  EXPECT_EQ(AstImpl::internal_name("audio_spectrogram_transformer.embeddings.cls_token"), "cls_token");
  EXPECT_EQ(AstImpl::internal_name("embeddings.patch_embeddings.projection.bias"), "patch_embedding.bias");
  EXPECT_EQ(AstImpl::internal_name("layernorm.weight"), "layer_norm.weight");
  EXPECT_EQ(AstImpl::internal_name("classifier.dense.weight"), "");
  EXPECT_EQ(AstImpl::internal_name("classifier.layernorm.bias"), "");
}

TEST(AstLoad, ClassificationCheckpointLoadsTheSame) {
  at::NoGradGuard ng;
  TempDir dir;
  NamedTensors t;
  for (auto& [n, v] : fixture_tensors()) t.emplace_back("audio_spectrogram_transformer." + n, v);
  t.emplace_back("classifier.layernorm.weight", at::ones({64}));
  t.emplace_back("classifier.layernorm.bias", at::zeros({64}));
  t.emplace_back("classifier.dense.weight", at::zeros({527, 64}));
  t.emplace_back("classifier.dense.bias", at::zeros({527}));
  WeightSet ws = write_and_open(dir / "cls.safetensors", t);
  auto ref = reference();
  Ast a(fixture_config(), ws, "cls");
  Ast b(fixture_config(), WeightSet::open_hf_dir(fixture_dir()), "fixture");
  at::Tensor x = ref.tensor("input_values");
  EXPECT_EQ(max_abs_diff(a->forward(x).last_hidden_state, b->forward(x).last_hidden_state), 0.0);
  // Missing tensors are named with the file's prefix.
  t.erase(std::find_if(t.begin(), t.end(), [](const auto& p) {
    return p.first == "audio_spectrogram_transformer.encoder.layer.1.attention.attention.value.bias";
  }));
  WeightSet broken = write_and_open(dir / "broken.safetensors", t);
  expect_error([&] { Ast(fixture_config(), broken, "broken.safetensors"); },
               {"broken.safetensors",
                "missing tensors: audio_spectrogram_transformer.encoder.layer.1.attention.attention.value.bias"});
}

TEST(AstLoad, MissingMisshapenAndUnexpectedTensorsAreNamed) {
  TempDir dir;
  NamedTensors t;
  for (auto& [n, v] : fixture_tensors()) {
    if (n == "encoder.layer.0.layernorm_after.bias") continue;
    if (n == "embeddings.position_embeddings") v = at::zeros({1, 14, 64});
    t.emplace_back(n, v);
  }
  t.emplace_back("encoder.layer.0.attention.attention.rotary.weight", at::zeros({4}));
  WeightSet ws = write_and_open(dir / "bad.safetensors", t);
  expect_error([&] { Ast(fixture_config(), ws, "bad.safetensors"); },
               {"bad.safetensors", "missing tensors: encoder.layer.0.layernorm_after.bias",
                "tensor 'embeddings.position_embeddings' has shape [1, 14, 64]", "implies [1, 12, 64]",
                "unexpected tensors: encoder.layer.0.attention.attention.rotary.weight"});
  AstConfig c = fixture_config();
  c.max_length = 100;  // 2 x 9 patches
  expect_error([&] { AstImpl::validate(c, WeightSet::open_hf_dir(fixture_dir()), "fixture"); },
               {"embeddings.position_embeddings", "[1, 12, 64]", "implies [1, 20, 64]", "18 patches"});
}

TEST(AstLoad, QkvBiasFalseMatchesZeroBiases) {
  // HF builds query/key/value without bias when qkv_bias is false: the same
  // function as the biased model with those biases set to zero.
  at::NoGradGuard ng;
  TempDir dir;
  NamedTensors zeroed, dropped;
  auto is_qkv_bias = [](const std::string& n) {
    return n.find(".attention.attention.") != std::string::npos && n.size() > 5 &&
           n.compare(n.size() - 5, 5, ".bias") == 0;
  };
  for (auto& [n, v] : fixture_tensors()) {
    zeroed.emplace_back(n, is_qkv_bias(n) ? at::zeros_like(v) : v);
    if (!is_qkv_bias(n)) dropped.emplace_back(n, v);
  }
  EXPECT_EQ(zeroed.size() - dropped.size(), 6u);
  AstConfig c = fixture_config();
  Ast with_zeros(c, write_and_open(dir / "zeroed.safetensors", zeroed), "zeroed");
  c.qkv_bias = false;
  WeightSet ws_dropped = write_and_open(dir / "dropped.safetensors", dropped);
  Ast without(c, ws_dropped, "dropped");
  at::Tensor x = reference().tensor("input_values");
  EXPECT_LT(max_abs_diff(without->forward(x).last_hidden_state, with_zeros->forward(x).last_hidden_state), 1e-6);
  EXPECT_FALSE(without->named_parameters().contains("layers.0.self_attn.q_proj.bias"));
  // The same config refuses a checkpoint that has the biases.
  expect_error([&] { Ast(c, WeightSet::open_hf_dir(fixture_dir()), "fixture"); },
               {"unexpected tensors: encoder.layer.0.attention.attention.key.bias"});
}

TEST(AstForward, BadInputsGiveOneLineErrors) {
  at::NoGradGuard ng;
  Ast model(fixture_config(), WeightSet::open_hf_dir(fixture_dir()), "fixture");
  expect_error(
      [&] {
        model->forward(at::zeros({64, 32}));
      },
      {"input_values must be (batch, 64 frames, 32 mel bins)", "found [64, 32]"});
  expect_error([&] { model->forward(at::zeros({2, 64, 128})); }, {"expected 32 mel bins", "found 128"});
  expect_error([&] { model->forward(at::zeros({2, 1024, 32})); }, {"expected 64 frames", "found 1024"});
  expect_error([&] { model->forward(at::zeros({2, 32, 64})); }, {"expected 32 mel bins", "found 64"});
  expect_error([&] { model->forward(at::zeros({2, 64, 32}, at::kInt)); }, {"must be floating", "Int"});
}

TEST(AstConfig, ParsesHfConfigAndRoundTrips) {
  AstConfig c = fixture_config();
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.intermediate_size, 128);
  EXPECT_EQ(c.num_mel_bins, 32);
  EXPECT_EQ(c.max_length, 64);
  EXPECT_EQ(c.patch_size, 16);
  EXPECT_EQ(c.frequency_stride, 10);
  EXPECT_EQ(c.time_stride, 10);
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-12);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_EQ(c.num_patches(), 10);
  AstConfig back = AstConfig::from_json(c.to_json(), "to_json");
  EXPECT_EQ(back.to_json(), c.to_json());
  // HF's defaults for the optional fields (AudioSet's 1024 x 128 gives 1212 patches).
  json j = {{"hidden_size", 768},        {"num_hidden_layers", 12}, {"num_attention_heads", 12},
            {"intermediate_size", 3072}, {"num_mel_bins", 128},     {"max_length", 1024}};
  AstConfig d = AstConfig::from_json(j, "defaults");
  EXPECT_EQ(d.patch_size, 16);
  EXPECT_EQ(d.num_patches(), 1212);
  EXPECT_EQ(d.hidden_act, "gelu");
}

TEST(AstConfig, ReportsEveryProblemAtOnce) {
  json j = fixture_config().to_json();
  j.erase("hidden_size");
  j["time_stride"] = 0;
  j["qkv_bias"] = "yes";
  j["hidden_act"] = "relu6";
  j["layer_norm_eps"] = -1;
  expect_error([&] { AstConfig::from_json(j, "config.json"); },
               {"config.json", "missing field 'hidden_size'", "'time_stride' must be positive",
                "'qkv_bias' must be true", "activation 'relu6'", "'layer_norm_eps' must be a positive number"});
  json k = fixture_config().to_json();
  k["patch_size"] = 40;
  k["num_attention_heads"] = 3;
  expect_error([&] { AstConfig::from_json(k, "c"); },
               {"hidden_size 64 is not divisible by num_attention_heads 3", "patch_size 40 exceeds num_mel_bins 32"});
}

}  // namespace
}  // namespace m4
