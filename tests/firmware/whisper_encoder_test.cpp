// Parity of the Whisper encoder (aud_i_enc) with HF transformers' WhisperEncoder on
// the fixture checkpoint (tests/fixtures/hf-reference/whisper), plus loading
// variants (WhisperModel's "encoder.*" names, decoder tensors) and every error.
#include "firmware/whisper_encoder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/mapped_file.h"
#include "core/safetensors.h"
#include "firmware/log_mel.h"
#include "firmware/weight_set.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::expect_error;
using test::max_abs_diff;
using test::TempDir;

fs::path fixture_dir() { return test::fixtures() / "whisper"; }
WhisperEncoderConfig fixture_config() { return WhisperEncoderConfig::from_file(fixture_dir() / "config.json"); }
SafetensorsFile reference() { return SafetensorsFile::open(fixture_dir() / "encoder_reference.safetensors"); }

// The fixture's tensors as owned copies, to edit and write back.
NamedTensors fixture_tensors() {
  WeightSet ws = WeightSet::open_hf_dir(fixture_dir());
  NamedTensors out;
  for (const auto& n : ws.names()) out.emplace_back(n, ws.tensor(n).clone());
  return out;
}

WeightSet write_and_open(const TempDir& dir, const NamedTensors& tensors) {
  const fs::path p = dir / "model.safetensors";
  write_safetensors(p, tensors, {{"format", "pt"}});
  return WeightSet::open({p});
}

NamedTensors without(NamedTensors t, const std::string& name) {
  auto it = std::find_if(t.begin(), t.end(), [&](const auto& p) { return p.first == name; });
  EXPECT_NE(it, t.end()) << name;
  if (it != t.end()) t.erase(it);
  return t;
}

TEST(WhisperParity, LastHiddenStateAndHiddenStates) {
  at::NoGradGuard ng;
  auto ref = reference();
  WhisperEncoder enc(fixture_config(), WeightSet::open_hf_dir(fixture_dir()), "fixture");
  EncoderOutput out = enc->forward(ref.tensor("input_features"), /*hidden_states=*/true);
  double d = max_abs_diff(out.last_hidden_state, ref.tensor("last_hidden_state"));
  std::cout << "[parity] whisper encoder last_hidden_state max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);
  ASSERT_EQ(out.hidden_states.size(), 3u);
  for (size_t k = 0; k < out.hidden_states.size(); ++k) {
    double dh = max_abs_diff(out.hidden_states[k], ref.tensor("hidden_states." + std::to_string(k)));
    std::cout << "[parity] whisper encoder hidden_states." << k << " max |diff| = " << dh << "\n";
    EXPECT_LT(dh, 1e-4) << "hidden_states." << k;
  }
  // HF's last hidden state is the one after the final layer_norm.
  EXPECT_EQ(max_abs_diff(out.hidden_states.back(), out.last_hidden_state), 0.0);
  EXPECT_FALSE(out.pooler_output.defined());
}

TEST(WhisperParity, RowsAreIndependentAndHiddenStatesOptional) {
  at::NoGradGuard ng;
  auto ref = reference();
  WhisperEncoder enc(fixture_config(), WeightSet::open_hf_dir(fixture_dir()), "fixture");
  at::Tensor x = ref.tensor("input_features");
  EncoderOutput both = enc->forward(x);
  EXPECT_TRUE(both.hidden_states.empty());
  EncoderOutput one = enc->forward(x.narrow(0, 1, 1));
  EXPECT_LT(max_abs_diff(one.last_hidden_state, both.last_hidden_state.narrow(0, 1, 1)), 1e-5);
}

TEST(WhisperParity, F64ComputeMatchesReference) {
  at::NoGradGuard ng;
  auto ref = reference();
  WhisperEncoder enc(fixture_config(), WeightSet::open_hf_dir(fixture_dir()), "fixture", at::kDouble);
  EncoderOutput out = enc->forward(ref.tensor("input_features"));
  EXPECT_EQ(out.last_hidden_state.scalar_type(), at::kDouble);
  double d = max_abs_diff(out.last_hidden_state, ref.tensor("last_hidden_state"));
  std::cout << "[parity] whisper encoder (f64 compute) last_hidden_state max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);
}

TEST(WhisperLoad, WeightsAreZeroCopyViewsIntoTheMapping) {
  WeightSet ws = WeightSet::open_hf_dir(fixture_dir());
  WhisperEncoder enc(fixture_config(), ws, "fixture");
  const auto& file = ws.files()[0];
  const auto* lo = file.mapping()->data();
  const auto* hi = lo + file.mapping()->size();
  for (const auto& p : enc->named_parameters()) {
    const auto* ptr = static_cast<const uint8_t*>(p.value().data_ptr());
    EXPECT_TRUE(ptr >= lo && ptr < hi) << p.key() << " was copied";
    EXPECT_FALSE(p.value().requires_grad()) << p.key();
  }
  size_t encoder_tensors = 0;
  for (const auto& n : ws.names()) encoder_tensors += n.rfind("model.encoder.", 0) == 0;
  EXPECT_EQ(enc->named_parameters().size(), encoder_tensors);
  // Internal names follow transformer_encoder.h.
  auto params = enc->named_parameters();
  for (const char* n : {"conv1.weight", "conv2.bias", "embed_positions.weight", "layers.0.layer_norm1.weight",
                        "layers.1.self_attn.q_proj.weight", "layers.1.mlp.fc2.bias", "layer_norm.bias"})
    EXPECT_TRUE(params.contains(n)) << n;
  EXPECT_FALSE(params.contains("layers.0.self_attn.k_proj.bias"));
}

TEST(WhisperLoad, InternalNames) {
  EXPECT_EQ(WhisperEncoderImpl::internal_name("model.encoder.layers.3.self_attn_layer_norm.weight"),
            "layers.3.layer_norm1.weight");
  EXPECT_EQ(WhisperEncoderImpl::internal_name("encoder.layers.0.final_layer_norm.bias"), "layers.0.layer_norm2.bias");
  EXPECT_EQ(WhisperEncoderImpl::internal_name("model.encoder.layers.1.fc1.weight"), "layers.1.mlp.fc1.weight");
  EXPECT_EQ(WhisperEncoderImpl::internal_name("model.encoder.layers.1.self_attn.out_proj.bias"),
            "layers.1.self_attn.out_proj.bias");
  EXPECT_EQ(WhisperEncoderImpl::internal_name("model.encoder.conv2.weight"), "conv2.weight");
  EXPECT_EQ(WhisperEncoderImpl::internal_name("model.decoder.layers.0.fc1.weight"), "");
  EXPECT_EQ(WhisperEncoderImpl::internal_name("proj_out.weight"), "");
}

TEST(WhisperLoad, WhisperModelNamesWithoutModelPrefixLoadTheSame) {
  at::NoGradGuard ng;
  TempDir dir;
  NamedTensors renamed;
  for (auto& [n, t] : fixture_tensors()) renamed.emplace_back(n.substr(6), t);  // "model.encoder.x" -> "encoder.x"
  renamed.emplace_back("proj_out.weight", at::zeros({256, 64}));
  WeightSet ws = write_and_open(dir, renamed);
  auto ref = reference();
  WhisperEncoder a(fixture_config(), ws, "renamed");
  WhisperEncoder b(fixture_config(), WeightSet::open_hf_dir(fixture_dir()), "fixture");
  at::Tensor x = ref.tensor("input_features");
  EXPECT_EQ(max_abs_diff(a->forward(x).last_hidden_state, b->forward(x).last_hidden_state), 0.0);
  // A missing tensor is named the way this file spells the others.
  WeightSet broken = write_and_open(dir, without(renamed, "encoder.layers.1.fc2.bias"));
  expect_error([&] { WhisperEncoder(fixture_config(), broken, "renamed.safetensors"); },
               {"renamed.safetensors", "missing tensors: encoder.layers.1.fc2.bias"});
}

TEST(WhisperLoad, EncoderOnlyFileWithoutDecoderLoads) {
  at::NoGradGuard ng;
  TempDir dir;
  NamedTensors enc_only;
  for (auto& [n, t] : fixture_tensors())
    if (n.rfind("model.encoder.", 0) == 0) enc_only.emplace_back(n, t);
  WhisperEncoder a(fixture_config(), write_and_open(dir, enc_only), "encoder-only");
  auto ref = reference();
  double d = max_abs_diff(a->forward(ref.tensor("input_features")).last_hidden_state, ref.tensor("last_hidden_state"));
  EXPECT_LT(d, 1e-4);
}

TEST(WhisperLoad, MissingMisshapenAndUnexpectedTensorsAreNamed) {
  TempDir dir;
  NamedTensors t = without(fixture_tensors(), "model.encoder.layers.1.fc2.bias");
  for (auto& [n, v] : t)
    if (n == "model.encoder.conv1.weight") v = at::zeros({64, 16, 5});
  t.emplace_back("model.encoder.layers.0.self_attn.k_proj.bias", at::zeros({64}));
  WeightSet ws = write_and_open(dir, t);
  std::string msg = expect_error([&] { WhisperEncoder(fixture_config(), ws, "bad.safetensors"); },
                                 {"bad.safetensors", "missing tensors: model.encoder.layers.1.fc2.bias",
                                  "tensor 'model.encoder.conv1.weight' has shape [64, 16, 5]", "implies [64, 16, 3]",
                                  "unexpected tensors: model.encoder.layers.0.self_attn.k_proj.bias"});
  // validate() finds the same without building anything.
  expect_error([&] { WhisperEncoderImpl::validate(fixture_config(), ws, "bad.safetensors"); },
               {"missing tensors: model.encoder.layers.1.fc2.bias"});
}

TEST(WhisperLoad, ConfigMismatchNamesTheTensorAndTheConfig) {
  WhisperEncoderConfig c = fixture_config();
  c.num_mel_bins = 80;
  expect_error([&] { WhisperEncoder(c, WeightSet::open_hf_dir(fixture_dir()), "fixture"); },
               {"model.encoder.conv1.weight", "[64, 16, 3]", "[64, 80, 3]", "80 mel bins"});
  c = fixture_config();
  c.encoder_layers = 3;
  expect_error([&] { WhisperEncoder(c, WeightSet::open_hf_dir(fixture_dir()), "fixture"); },
               {"missing tensors: model.encoder.layers.2."});
}

TEST(WhisperForward, BadInputsGiveOneLineErrors) {
  at::NoGradGuard ng;
  WhisperEncoder enc(fixture_config(), WeightSet::open_hf_dir(fixture_dir()), "fixture");
  expect_error(
      [&] {
        enc->forward(at::zeros({16, 60}));
      },
      {"input_features must be (batch, 16 mel bins, 60 frames)", "found [16, 60]"});
  expect_error([&] { enc->forward(at::zeros({2, 80, 60})); }, {"expected 16 mel bins, found 80"});
  expect_error(
      [&] {
        enc->forward(at::zeros({2, 16, 3000}));
      },
      {"expected 60 input frames", "max_source_positions 30", "found 3000"});
  expect_error([&] { enc->forward(at::zeros({2, 16, 59})); }, {"expected 60 input frames", "found 59"});
  expect_error([&] { enc->forward(at::zeros({2, 16, 60}, at::kLong)); }, {"must be floating", "Long"});
}

TEST(WhisperForward, RunsOnItsOwnLogMel) {
  at::NoGradGuard ng;
  WhisperEncoderConfig c = fixture_config();
  WhisperEncoder enc(c, WeightSet::open_hf_dir(fixture_dir()), "fixture");
  at::manual_seed(0);
  at::Tensor audio = at::randn({2, 8000}) * 0.1;  // 0.5 s, padded to 60 frames
  LogMelOptions o;
  o.n_mels = c.num_mel_bins;
  o.frames = c.frames();
  at::Tensor mel = whisper_log_mel(audio, o);
  EncoderOutput out = enc->forward(mel);
  EXPECT_EQ(out.last_hidden_state.sizes(), (std::vector<int64_t>{2, 30, 64}));
  EXPECT_TRUE(out.last_hidden_state.isfinite().all().item<bool>());
}

TEST(WhisperConfig, ParsesHfConfigAndRoundTrips) {
  WhisperEncoderConfig c = fixture_config();
  EXPECT_EQ(c.d_model, 64);
  EXPECT_EQ(c.encoder_layers, 2);
  EXPECT_EQ(c.encoder_attention_heads, 4);
  EXPECT_EQ(c.encoder_ffn_dim, 128);
  EXPECT_EQ(c.num_mel_bins, 16);
  EXPECT_EQ(c.max_source_positions, 30);
  EXPECT_EQ(c.frames(), 60);
  EXPECT_EQ(c.activation_function, "gelu");
  WhisperEncoderConfig back = WhisperEncoderConfig::from_json(c.to_json(), "to_json");
  EXPECT_EQ(back.to_json(), c.to_json());
  EXPECT_NE(c.summary().find("d_model 64"), std::string::npos);
}

TEST(WhisperConfig, ReportsEveryProblemAtOnce) {
  json j = fixture_config().to_json();
  j.erase("d_model");
  j["encoder_layers"] = "two";
  j["max_source_positions"] = 0;
  j["activation_function"] = "swish";
  std::string msg = expect_error([&] { WhisperEncoderConfig::from_json(j, "config.json"); },
                                 {"config.json", "missing field 'd_model'", "'encoder_layers' must be an integer",
                                  "'max_source_positions' must be positive", "activation 'swish'"});
  json k = fixture_config().to_json();
  k["encoder_attention_heads"] = 5;
  expect_error([&] { WhisperEncoderConfig::from_json(k, "c"); },
               {"d_model 64 is not divisible by encoder_attention_heads 5"});
  expect_error([&] { WhisperEncoderConfig::from_json(json::array(), "c"); }, {"must be a JSON object"});
}

}  // namespace
}  // namespace m4
