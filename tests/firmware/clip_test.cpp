// Parity of the CLIP vision and text towers with HF transformers' CLIPVisionModel
// and CLIPTextModelWithProjection on the fixtures (tests/fixtures/hf-reference/
// clip_vision, clip_text), plus what the fixtures lack: the vision projection, a
// full CLIPModel file, legacy eos pooling, dtype conversion, every load/forward error.
#include "firmware/clip.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
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

fs::path vision_dir() { return test::fixtures() / "clip_vision"; }
fs::path text_dir() { return test::fixtures() / "clip_text"; }
json read_json(const fs::path& p) { return json::parse(read_text_file(p)); }

// The fixture's tensors as owned copies, to write variants of the checkpoint.
NamedTensors owned_tensors(const fs::path& dir) {
  WeightSet ws = WeightSet::open_hf_dir(dir);
  NamedTensors out;
  for (const auto& n : ws.names()) out.emplace_back(n, ws.tensor(n).clone());
  return out;
}

void erase(NamedTensors* t, const std::string& name) {
  auto it = std::find_if(t->begin(), t->end(), [&](const auto& p) { return p.first == name; });
  ASSERT_NE(it, t->end()) << name;
  t->erase(it);
}

at::Tensor& find(NamedTensors* t, const std::string& name) {
  for (auto& [n, v] : *t)
    if (n == name) return v;
  throw std::out_of_range(name);
}

void write_checkpoint(const fs::path& dir, const json& config, const NamedTensors& tensors) {
  fs::create_directories(dir);
  write_file_atomic(dir / "config.json", config.dump(1));
  write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
}

void expect_zero_copy(torch::nn::Module& m, const WeightSet& ws) {
  const auto& file = ws.files()[0];
  const auto* lo = file.mapping()->data();
  const auto* hi = lo + file.mapping()->size();
  for (const auto& p : m.named_parameters()) {
    const auto* ptr = static_cast<const uint8_t*>(p.value().data_ptr());
    EXPECT_TRUE(ptr >= lo && ptr < hi) << p.key() << " was copied";
    EXPECT_FALSE(p.value().requires_grad()) << p.key();
  }
}

// ---- vision ----------------------------------------------------------------

TEST(ClipVisionParity, LastHiddenStatePoolerAndHiddenStates) {
  at::NoGradGuard ng;
  auto config = ClipVisionConfig::from_json(read_json(vision_dir() / "config.json"), "clip_vision/config.json");
  EXPECT_EQ(config.projection_dim, 0);  // architectures: CLIPVisionModel
  WeightSet ws = WeightSet::open_hf_dir(vision_dir());
  auto ref = SafetensorsFile::open(vision_dir() / "reference.safetensors");
  ClipVision model(config, ws, "clip_vision");
  auto out = model->forward(ref.tensor("pixel_values"), /*hidden_states=*/true);

  double d = max_abs_diff(out.last_hidden_state, ref.tensor("last_hidden_state"));
  std::cout << "[parity] clip_vision last_hidden_state max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);
  d = max_abs_diff(out.pooler_output, ref.tensor("pooler_output"));
  std::cout << "[parity] clip_vision pooler_output max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);
  ASSERT_EQ(out.hidden_states.size(), 3u);
  for (size_t k = 0; k < out.hidden_states.size(); ++k) {
    d = max_abs_diff(out.hidden_states[k], ref.tensor("hidden_states." + std::to_string(k)));
    std::cout << "[parity] clip_vision hidden_states." << k << " max |diff| = " << d << "\n";
    EXPECT_LT(d, 1e-4) << "hidden_states." << k;
  }
  EXPECT_FALSE(out.embeds.defined());
  EXPECT_TRUE(model->forward(ref.tensor("pixel_values")).hidden_states.empty());
}

TEST(ClipVisionLoad, WeightsAreZeroCopyViewsIntoTheMapping) {
  auto config = ClipVisionConfig::from_json(read_json(vision_dir() / "config.json"), "config.json");
  WeightSet ws = WeightSet::open_hf_dir(vision_dir());
  ClipVision model(config, ws, "clip_vision");
  expect_zero_copy(*model, ws);
  EXPECT_EQ(model->named_parameters().size(), ws.names().size());
  // Internal names follow transformer_encoder.h.
  auto params = model->named_parameters();
  for (const char* name :
       {"embeddings.class_embedding", "embeddings.patch_embedding.weight", "embeddings.position_embedding.weight",
        "pre_layrnorm.weight", "layers.1.self_attn.q_proj.weight", "layers.0.mlp.fc2.bias", "post_layernorm.bias"}) {
    EXPECT_TRUE(params.contains(name)) << name;
  }
}

TEST(ClipVisionLoad, ConvertsToAnotherDtype) {
  at::NoGradGuard ng;
  auto config = ClipVisionConfig::from_json(read_json(vision_dir() / "config.json"), "config.json");
  WeightSet ws = WeightSet::open_hf_dir(vision_dir());
  auto ref = SafetensorsFile::open(vision_dir() / "reference.safetensors");
  ClipVision model(config, ws, "clip_vision", at::kDouble);
  for (const auto& p : model->parameters()) EXPECT_EQ(p.scalar_type(), at::kDouble);
  auto out = model->forward(ref.tensor("pixel_values"));
  EXPECT_EQ(out.last_hidden_state.scalar_type(), at::kDouble);
  double d = max_abs_diff(out.last_hidden_state, ref.tensor("last_hidden_state"));
  std::cout << "[parity] clip_vision (f64 weights) last_hidden_state max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);
}

TEST(ClipVisionLoad, WithProjectionGivesImageEmbeds) {
  at::NoGradGuard ng;
  TempDir tmp;
  json config = read_json(vision_dir() / "config.json");
  config["architectures"] = {"CLIPVisionModelWithProjection"};
  NamedTensors tensors = owned_tensors(vision_dir());
  at::manual_seed(7);
  const at::Tensor w = at::randn({32, 64}) * 0.05;  // (projection_dim, hidden)
  tensors.emplace_back("visual_projection.weight", w);
  write_checkpoint(tmp / "ckpt", config, tensors);

  auto c = ClipVisionConfig::from_json(config, "config.json");
  EXPECT_EQ(c.projection_dim, 32);
  WeightSet ws = WeightSet::open_hf_dir(tmp / "ckpt");
  ClipVision model(c, ws, "ckpt");
  ASSERT_TRUE(model->visual_projection);
  expect_zero_copy(*model, ws);
  auto ref = SafetensorsFile::open(vision_dir() / "reference.safetensors");
  auto out = model->forward(ref.tensor("pixel_values"));
  ASSERT_TRUE(out.embeds.defined());
  EXPECT_EQ(out.embeds.sizes(), (std::vector<int64_t>{2, 32}));
  // Independent: the HF pooler_output times W^T, in f64.
  at::Tensor expected = ref.tensor("pooler_output").to(at::kDouble).matmul(w.to(at::kDouble).t());
  double d = max_abs_diff(out.embeds, expected);
  std::cout << "[parity] clip_vision image_embeds (pooler @ W^T) max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);

  // The same weights under a plain CLIPVisionModel config: the projection is unexpected.
  auto plain = ClipVisionConfig::from_json(read_json(vision_dir() / "config.json"), "config.json");
  expect_error([&] { ClipVision(plain, ws, "ckpt"); }, {"ckpt", "unexpected tensors: visual_projection.weight"});
}

TEST(ClipVisionLoad, MissingTensorIsNamed) {
  TempDir tmp;
  NamedTensors tensors = owned_tensors(vision_dir());
  erase(&tensors, "vision_model.post_layernorm.weight");
  write_checkpoint(tmp / "ckpt", read_json(vision_dir() / "config.json"), tensors);
  auto c = ClipVisionConfig::from_json(read_json(tmp / "ckpt" / "config.json"), "config.json");
  WeightSet ws = WeightSet::open_hf_dir(tmp / "ckpt");
  expect_error([&] { ClipVision(c, ws, "ckpt"); }, {"ckpt", "missing tensors: vision_model.post_layernorm.weight"});
}

TEST(ClipVisionLoad, WrongShapeIsNamed) {
  TempDir tmp;
  NamedTensors tensors = owned_tensors(vision_dir());
  find(&tensors, "vision_model.embeddings.patch_embedding.weight") = at::zeros({64, 3, 4, 4});
  write_checkpoint(tmp / "ckpt", read_json(vision_dir() / "config.json"), tensors);
  auto c = ClipVisionConfig::from_json(read_json(tmp / "ckpt" / "config.json"), "config.json");
  WeightSet ws = WeightSet::open_hf_dir(tmp / "ckpt");
  expect_error([&] { ClipVisionImpl::validate(c, ws, "ckpt"); },
               {"ckpt", "vision_model.embeddings.patch_embedding.weight", "[64, 3, 4, 4]", "[64, 3, 8, 8]"});
}

TEST(ClipVisionLoad, ConfigThatDoesNotFitTheWeights) {
  json j = read_json(vision_dir() / "config.json");
  j["image_size"] = 64;  // 64 positions + class token instead of 17
  j["intermediate_size"] = 256;
  auto c = ClipVisionConfig::from_json(j, "config.json");
  WeightSet ws = WeightSet::open_hf_dir(vision_dir());
  expect_error([&] { ClipVision(c, ws, "clip_vision"); },
               {"vision_model.embeddings.position_embedding.weight", "[17, 64]", "[65, 64]",
                "vision_model.encoder.layers.0.mlp.fc1.weight", "hint"});
}

TEST(ClipVisionLoad, UnexpectedTensorIsNamed) {
  TempDir tmp;
  NamedTensors tensors = owned_tensors(vision_dir());
  tensors.emplace_back("vision_model.encoder.layers.2.mlp.fc1.weight", at::zeros({128, 64}));
  write_checkpoint(tmp / "ckpt", read_json(vision_dir() / "config.json"), tensors);
  auto c = ClipVisionConfig::from_json(read_json(vision_dir() / "config.json"), "config.json");
  expect_error([&] { ClipVisionImpl::validate(c, WeightSet::open_hf_dir(tmp / "ckpt"), "ckpt"); },
               {"unexpected tensors: vision_model.encoder.layers.2.mlp.fc1.weight"});
}

TEST(ClipVisionForward, BadInputsGiveOneLineErrors) {
  auto c = ClipVisionConfig::from_json(read_json(vision_dir() / "config.json"), "config.json");
  WeightSet ws = WeightSet::open_hf_dir(vision_dir());
  ClipVision model(c, ws, "clip_vision");
  expect_error(
      [&] {
        model->forward(at::zeros({3, 32, 32}));
      },
      {"clip_vision", "(batch, channels, height, width)", "[3, 32, 32]"});
  expect_error([&] { model->forward(at::zeros({1, 4, 32, 32})); }, {"expects 3 channels, found 4"});
  expect_error([&] { model->forward(at::zeros({1, 3, 48, 40})); }, {"expects 32x32", "found 48x40"});
  expect_error([&] { model->forward(at::zeros({1, 3, 32, 32}, at::kByte)); }, {"floating", "clip_preprocess"});
}

TEST(ClipVisionForward, ClassTokenAndBatchIndependence) {
  at::NoGradGuard ng;
  auto c = ClipVisionConfig::from_json(read_json(vision_dir() / "config.json"), "config.json");
  WeightSet ws = WeightSet::open_hf_dir(vision_dir());
  ClipVision model(c, ws, "clip_vision");
  auto ref = SafetensorsFile::open(vision_dir() / "reference.safetensors");
  at::Tensor px = ref.tensor("pixel_values");
  auto both = model->forward(px);
  auto one = model->forward(px.narrow(0, 1, 1));
  EXPECT_LT(max_abs_diff(one.last_hidden_state, both.last_hidden_state.narrow(0, 1, 1)), 1e-5);
  EXPECT_EQ(both.last_hidden_state.sizes(), (std::vector<int64_t>{2, 17, 64}));
}

// ---- text ------------------------------------------------------------------

TEST(ClipTextParity, LastHiddenStateTextEmbedsAndHiddenStates) {
  at::NoGradGuard ng;
  auto config = ClipTextConfig::from_json(read_json(text_dir() / "config.json"), "clip_text/config.json");
  EXPECT_EQ(config.projection_dim, 32);  // CLIPTextModelWithProjection
  EXPECT_EQ(config.eos_token_id, 255);
  WeightSet ws = WeightSet::open_hf_dir(text_dir());
  auto ref = SafetensorsFile::open(text_dir() / "reference.safetensors");
  ClipText model(config, ws, "clip_text");
  auto out = model->forward(ref.tensor("input_ids"), ref.tensor("attention_mask"), /*hidden_states=*/true);

  double d = max_abs_diff(out.last_hidden_state, ref.tensor("last_hidden_state"));
  std::cout << "[parity] clip_text last_hidden_state max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);
  ASSERT_TRUE(out.embeds.defined());
  d = max_abs_diff(out.embeds, ref.tensor("text_embeds"));
  std::cout << "[parity] clip_text text_embeds max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);
  ASSERT_EQ(out.hidden_states.size(), 3u);
  for (size_t k = 0; k < out.hidden_states.size(); ++k) {
    d = max_abs_diff(out.hidden_states[k], ref.tensor("hidden_states." + std::to_string(k)));
    std::cout << "[parity] clip_text hidden_states." << k << " max |diff| = " << d << "\n";
    EXPECT_LT(d, 1e-4) << "hidden_states." << k;
  }
  // Pooled at the eos (id 255) of each row: positions 11 and 7.
  at::Tensor last = out.last_hidden_state;
  EXPECT_LT(max_abs_diff(out.pooler_output[0], last[0][11]), 1e-7);
  EXPECT_LT(max_abs_diff(out.pooler_output[1], last[1][7]), 1e-7);

  // The padding mask matters only for the padded positions (the causal mask
  // already hides later pads from real tokens).
  auto unmasked = model->forward(ref.tensor("input_ids"));
  EXPECT_LT(max_abs_diff(unmasked.last_hidden_state[1].narrow(0, 0, 8), last[1].narrow(0, 0, 8)), 1e-5);
  EXPECT_GT(max_abs_diff(unmasked.last_hidden_state[1].narrow(0, 8, 4), last[1].narrow(0, 8, 4)), 1e-4);
}

TEST(ClipTextLoad, WeightsAreZeroCopyViewsIntoTheMapping) {
  auto config = ClipTextConfig::from_json(read_json(text_dir() / "config.json"), "config.json");
  WeightSet ws = WeightSet::open_hf_dir(text_dir());
  ClipText model(config, ws, "clip_text");
  expect_zero_copy(*model, ws);
  EXPECT_EQ(model->named_parameters().size(), ws.names().size());
  auto params = model->named_parameters();
  for (const char* name : {"embeddings.token_embedding.weight", "embeddings.position_embedding.weight",
                           "layers.0.self_attn.k_proj.bias", "final_layer_norm.weight", "text_projection.weight"}) {
    EXPECT_TRUE(params.contains(name)) << name;
  }
}

TEST(ClipTextLoad, PlainTextModelHasNoProjection) {
  at::NoGradGuard ng;
  TempDir tmp;
  json config = read_json(text_dir() / "config.json");
  config["architectures"] = {"CLIPTextModel"};
  NamedTensors tensors = owned_tensors(text_dir());
  erase(&tensors, "text_projection.weight");
  write_checkpoint(tmp / "ckpt", config, tensors);
  auto c = ClipTextConfig::from_json(config, "config.json");
  EXPECT_EQ(c.projection_dim, 0);
  ClipText model(c, WeightSet::open_hf_dir(tmp / "ckpt"), "ckpt");
  auto ref = SafetensorsFile::open(text_dir() / "reference.safetensors");
  auto out = model->forward(ref.tensor("input_ids"), ref.tensor("attention_mask"));
  EXPECT_FALSE(out.embeds.defined());
  EXPECT_LT(max_abs_diff(out.last_hidden_state, ref.tensor("last_hidden_state")), 1e-4);
}

TEST(ClipTextLoad, MissingAndMisshapenTensorsAreNamedTogether) {
  TempDir tmp;
  NamedTensors tensors = owned_tensors(text_dir());
  erase(&tensors, "text_projection.weight");
  find(&tensors, "text_model.encoder.layers.1.self_attn.v_proj.bias") = at::zeros({32});
  write_checkpoint(tmp / "ckpt", read_json(text_dir() / "config.json"), tensors);
  auto c = ClipTextConfig::from_json(read_json(text_dir() / "config.json"), "config.json");
  expect_error([&] { ClipText(c, WeightSet::open_hf_dir(tmp / "ckpt"), "ckpt"); },
               {"ckpt", "missing tensors: text_projection.weight", "text_model.encoder.layers.1.self_attn.v_proj.bias",
                "[32]", "[64]"});
}

TEST(ClipTextPooling, FirstEosOrLegacyArgmax) {
  at::NoGradGuard ng;
  WeightSet ws = WeightSet::open_hf_dir(text_dir());
  json j = read_json(text_dir() / "config.json");
  // Two eos (255) in row 0: pooled at the first. Row 1 has none: position 0.
  at::Tensor ids = at::tensor({254, 10, 255, 20, 255, 30, 254, 40, 50, 60, 70, 80}, at::kLong).view({2, 6});
  ClipText model(ClipTextConfig::from_json(j, "config.json"), ws, "clip_text");
  auto out = model->forward(ids);
  EXPECT_LT(max_abs_diff(out.pooler_output[0], out.last_hidden_state[0][2]), 1e-7);
  EXPECT_LT(max_abs_diff(out.pooler_output[1], out.last_hidden_state[1][0]), 1e-7);
  // eos_token_id 2 (configs from before transformers PR #24773): the argmax of the ids.
  j["eos_token_id"] = 2;
  ClipText legacy(ClipTextConfig::from_json(j, "config.json"), ws, "clip_text");
  at::Tensor ids2 = at::tensor({5, 2, 90, 7, 2, 1, 3, 200, 4, 201, 2, 1}, at::kLong).view({2, 6});
  auto lo = legacy->forward(ids2);
  EXPECT_LT(max_abs_diff(lo.pooler_output[0], lo.last_hidden_state[0][2]), 1e-7);
  EXPECT_LT(max_abs_diff(lo.pooler_output[1], lo.last_hidden_state[1][3]), 1e-7);
}

TEST(ClipTextForward, BadInputsGiveOneLineErrors) {
  auto c = ClipTextConfig::from_json(read_json(text_dir() / "config.json"), "config.json");
  ClipText model(c, WeightSet::open_hf_dir(text_dir()), "clip_text");
  expect_error(
      [&] {
        model->forward(at::zeros({2, 33}, at::kLong));
      },
      {"clip_text", "33 tokens", "max_position_embeddings 32"});
  expect_error([&] { model->forward(at::full({1, 4}, 256, at::kLong)); }, {"token id 256", "vocabulary of 256"});
  expect_error([&] { model->forward(at::full({1, 4}, -1, at::kLong)); }, {"token id -1"});
  expect_error([&] { model->forward(at::zeros({4}, at::kLong)); }, {"(batch, seq)", "[4]"});
  expect_error([&] { model->forward(at::zeros({1, 4}, at::kFloat)); }, {"I64 or I32"});
  expect_error(
      [&] {
        model->forward(at::zeros({1, 4}, at::kLong), at::ones({1, 5}, at::kLong));
      },
      {"attention_mask must be (1, 4)", "[1, 5]"});
}

TEST(ClipDtype, BFloat16TowersRunClose) {
  // Frozen bf16 weights (DESIGN: bf16 matmuls on AMX CPUs): converted on load,
  // outputs within bf16 rounding of the f32 reference.
  at::NoGradGuard ng;
  auto vc = ClipVisionConfig::from_json(read_json(vision_dir() / "config.json"), "config.json");
  auto tc = ClipTextConfig::from_json(read_json(text_dir() / "config.json"), "config.json");
  ClipVision v(vc, WeightSet::open_hf_dir(vision_dir()), "clip_vision", at::kBFloat16);
  ClipText t(tc, WeightSet::open_hf_dir(text_dir()), "clip_text", at::kBFloat16);
  auto vref = SafetensorsFile::open(vision_dir() / "reference.safetensors");
  auto tref = SafetensorsFile::open(text_dir() / "reference.safetensors");
  auto vo = v->forward(vref.tensor("pixel_values"));
  auto to = t->forward(tref.tensor("input_ids"), tref.tensor("attention_mask"));
  EXPECT_EQ(vo.last_hidden_state.scalar_type(), at::kBFloat16);
  const double dv = max_abs_diff(vo.last_hidden_state, vref.tensor("last_hidden_state"));
  const double dt = max_abs_diff(to.embeds, tref.tensor("text_embeds"));
  std::cout << "[parity] bf16 weights: clip_vision last_hidden_state max |diff| = " << dv << ", clip_text text_embeds "
            << dt << " (bf16 tolerance)\n";
  EXPECT_LT(dv, 0.25);
  EXPECT_LT(dt, 0.25);
}

// ---- a full CLIPModel checkpoint -------------------------------------------

TEST(ClipModelFile, EachTowerLoadsItsHalf) {
  at::NoGradGuard ng;
  TempDir tmp;
  json vision = read_json(vision_dir() / "config.json"), text = read_json(text_dir() / "config.json");
  json config = {{"architectures", {"CLIPModel"}},   {"model_type", "clip"},    {"projection_dim", 32},
                 {"logit_scale_init_value", 2.6592}, {"vision_config", vision}, {"text_config", text}};
  NamedTensors tensors = owned_tensors(vision_dir());
  for (auto& t : owned_tensors(text_dir())) tensors.push_back(t);
  at::manual_seed(11);
  const at::Tensor w = at::randn({32, 64}) * 0.05;
  tensors.emplace_back("visual_projection.weight", w);
  tensors.emplace_back("logit_scale", at::full({}, 2.6592));
  tensors.emplace_back("text_model.embeddings.position_ids", at::arange(32, at::kLong).view({1, 32}));
  tensors.emplace_back("vision_model.embeddings.position_ids", at::arange(17, at::kLong).view({1, 17}));
  write_checkpoint(tmp / "clip", config, tensors);
  WeightSet ws = WeightSet::open_hf_dir(tmp / "clip");

  auto vc = ClipVisionConfig::from_json(config, "clip/config.json");
  auto tc = ClipTextConfig::from_json(config, "clip/config.json");
  EXPECT_EQ(vc.projection_dim, 32);
  EXPECT_EQ(tc.projection_dim, 32);
  EXPECT_EQ(vc.image_size, 32);
  EXPECT_EQ(tc.vocab_size, 256);

  ClipVision v(vc, ws, "clip");
  ClipText t(tc, ws, "clip");
  EXPECT_EQ(v->named_parameters().size(), WeightSet::open_hf_dir(vision_dir()).names().size() + 1);
  EXPECT_EQ(t->named_parameters().size(), WeightSet::open_hf_dir(text_dir()).names().size());
  expect_zero_copy(*v, ws);
  expect_zero_copy(*t, ws);

  auto vref = SafetensorsFile::open(vision_dir() / "reference.safetensors");
  auto vout = v->forward(vref.tensor("pixel_values"));
  double dv = max_abs_diff(vout.last_hidden_state, vref.tensor("last_hidden_state"));
  double de = max_abs_diff(vout.embeds, vref.tensor("pooler_output").to(at::kDouble).matmul(w.to(at::kDouble).t()));
  auto tref = SafetensorsFile::open(text_dir() / "reference.safetensors");
  auto tout = t->forward(tref.tensor("input_ids"), tref.tensor("attention_mask"));
  double dt = max_abs_diff(tout.embeds, tref.tensor("text_embeds"));
  std::cout << "[parity] CLIPModel file: vision last_hidden_state max |diff| = " << dv << ", image_embeds " << de
            << ", text_embeds " << dt << "\n";
  EXPECT_LT(dv, 1e-4);
  EXPECT_LT(de, 1e-4);
  EXPECT_LT(dt, 1e-4);
}

// ---- configs ---------------------------------------------------------------

TEST(ClipConfig, RoundTripsThroughToJson) {
  auto v = ClipVisionConfig::from_json(read_json(vision_dir() / "config.json"), "config.json");
  auto v2 = ClipVisionConfig::from_json(v.to_json(), "firmware.json");
  EXPECT_EQ(v2.to_json(), v.to_json());
  EXPECT_EQ(v.hidden_size, 64);
  EXPECT_EQ(v.patch_size, 8);
  EXPECT_EQ(v.num_patches(), 16);
  EXPECT_EQ(v.hidden_act, "quick_gelu");
  auto t = ClipTextConfig::from_json(read_json(text_dir() / "config.json"), "config.json");
  auto t2 = ClipTextConfig::from_json(t.to_json(), "firmware.json");
  EXPECT_EQ(t2.to_json(), t.to_json());
  EXPECT_EQ(t.max_position_embeddings, 32);
  EXPECT_EQ(t.bos_token_id, 254);
  EXPECT_EQ(t.pad_token_id, 1);
  EXPECT_NE(v.summary().find("hidden 64"), std::string::npos);
}

TEST(ClipConfig, MissingFieldsTakeHuggingFaceDefaults) {
  // HF saves a CLIPConfig's sub-configs as diffs against the defaults.
  json j = {{"model_type", "clip"}, {"text_config", {{"hidden_act", "gelu"}}}, {"vision_config", json::object()}};
  auto t = ClipTextConfig::from_json(j, "config.json");
  EXPECT_EQ(t.vocab_size, 49408);
  EXPECT_EQ(t.hidden_size, 512);
  EXPECT_EQ(t.max_position_embeddings, 77);
  EXPECT_EQ(t.eos_token_id, 49407);
  EXPECT_EQ(t.hidden_act, "gelu");
  EXPECT_EQ(t.projection_dim, 512);
  auto v = ClipVisionConfig::from_json(j, "config.json");
  EXPECT_EQ(v.hidden_size, 768);
  EXPECT_EQ(v.image_size, 224);
  EXPECT_EQ(v.patch_size, 32);
  EXPECT_EQ(v.num_patches(), 49);
}

TEST(ClipConfig, EveryProblemIsReportedAtOnce) {
  json j = read_json(vision_dir() / "config.json");
  j["hidden_size"] = "wide";
  j["image_size"] = 3.5;
  j["hidden_act"] = "relu";
  expect_error([&] { ClipVisionConfig::from_json(j, "vision/config.json"); },
               {"vision/config.json", "'hidden_size' must be an integer", "'image_size' must be an integer", "'relu'"});
  json k = read_json(vision_dir() / "config.json");
  k["num_attention_heads"] = 5;
  expect_error([&] { ClipVisionConfig::from_json(k, "c.json"); },
               {"hidden_size 64 is not divisible by num_attention_heads 5"});
  k["num_attention_heads"] = 0;
  k["patch_size"] = -8;
  expect_error([&] { ClipVisionConfig::from_json(k, "c.json"); },
               {"'num_attention_heads' must be positive", "'patch_size' must be positive"});
  json t = {{"model_type", "clip"}, {"text_config", {{"vocab_size", "many"}, {"layer_norm_eps", -1}}}};
  expect_error(
      [&] { ClipTextConfig::from_json(t, "clip.json"); },
      {"clip.json", "'text_config.vocab_size' must be an integer", "'text_config.layer_norm_eps' must be positive"});
  // A text config is not a vision config.
  expect_error([&] { ClipVisionConfig::from_json(read_json(text_dir() / "config.json"), "text.json"); },
               {"text.json", "model_type 'clip_text_model'", "clip_vision_model"});
  expect_error([&] { ClipTextConfig::from_json(json::array(), "x.json"); }, {"x.json", "JSON object"});
}

}  // namespace
}  // namespace m4
