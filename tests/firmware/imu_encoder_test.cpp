// The IMU encoder: patch order against a hand-built reference, outputs, errors.
#include "firmware/imu_encoder.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "core/safetensors.h"
#include "firmware/weight_set.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

ImuEncoderConfig small_config() {
  return ImuEncoderConfig::from_json({{"window", 32}, {"patch", 8}, {"hidden_size", 16}, {"num_hidden_layers", 2},
                                      {"num_attention_heads", 2}, {"intermediate_size", 32}, {"projection_dim", 12}},
                                     "test");
}

std::filesystem::path write_weights(const test::TempDir& dir, const ImuEncoderConfig& c, const std::string& drop = "") {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  NamedTensors t;
  for (const auto& [name, shape] : ImuEncoderImpl::expected_shapes(c)) {
    if (name == drop) continue;
    t.emplace_back(name, at::empty(shape).normal_(0, 0.5, gen));
  }
  write_safetensors(dir / "model.safetensors", t);
  return dir / "model.safetensors";
}

TEST(ImuEncoder, PatchesAreChannelMajorWindowsAndOutputsHaveTheirShapes) {
  at::NoGradGuard ng;
  test::TempDir dir;
  const auto c = small_config();
  WeightSet w = WeightSet::open({write_weights(dir, c)});
  ImuEncoder enc(c, w, "test");
  at::Tensor imu = at::randn({2, 32, 6});
  EncoderOutput out = enc->forward(imu, true);
  // Independent: patch n of a window is the 6 x 8 block of steps n*8..n*8+7,
  // flattened channel by channel (ImageBind's unfold order).
  const at::Tensor W = w.tensor("patch_embed.proj.weight");  // (C, 48)
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t n = 0; n < 4; ++n) {
      at::Tensor block = imu[b].narrow(0, n * 8, 8).transpose(0, 1).reshape({48});  // (6, 8) -> 48
      at::Tensor emb = at::layer_norm(at::matmul(W, block), {16}, w.tensor("patch_embed.norm.weight"),
                                      w.tensor("patch_embed.norm.bias"), 1e-6);
      at::Tensor expect = emb + w.tensor("pos_embed")[0][1 + n];
      EXPECT_LT(test::max_abs_diff(out.hidden_states[0][b][1 + n], expect), 1e-5) << "patch " << n;
    }
    EXPECT_LT(test::max_abs_diff(out.hidden_states[0][b][0],
                                 w.tensor("cls_token")[0][0] + w.tensor("pos_embed")[0][0]), 1e-6);
  }
  EXPECT_EQ(out.last_hidden_state.sizes(), at::IntArrayRef({2, 5, 16}));
  EXPECT_EQ(out.hidden_states.size(), 3u);
  EXPECT_EQ(out.embeds.sizes(), at::IntArrayRef({2, 12}));
  // pooler = head.norm(class token); embeds = head.proj(pooler), no bias.
  at::Tensor pooled = at::layer_norm(out.last_hidden_state.select(1, 0), {16}, w.tensor("head.norm.weight"),
                                     w.tensor("head.norm.bias"), 1e-6);
  EXPECT_LT(test::max_abs_diff(out.pooler_output, pooled), 1e-6);
  EXPECT_LT(test::max_abs_diff(out.embeds, at::matmul(pooled, w.tensor("head.proj.weight").t())), 1e-5);
  // Rows are independent.
  EXPECT_LT(test::max_abs_diff(enc->forward(imu.narrow(0, 1, 1)).embeds[0], out.embeds[1]), 1e-5);
}

TEST(ImuEncoder, ParametersAreFrozenViewsIntoTheMapping) {
  test::TempDir dir;
  const auto c = small_config();
  WeightSet w = WeightSet::open({write_weights(dir, c)});
  ImuEncoder enc(c, w, "test");
  const auto& map = w.files()[0].mapping();
  for (const auto& p : enc->named_parameters()) {
    const auto* ptr = static_cast<const uint8_t*>(p.value().data_ptr());
    EXPECT_TRUE(ptr >= map->data() && ptr < map->data() + map->size()) << p.key();
    EXPECT_FALSE(p.value().requires_grad());
  }
  EXPECT_EQ(enc->named_parameters().size(), ImuEncoderImpl::expected_shapes(c).size());
}

TEST(ImuEncoder, BadInputsAndCheckpointsGiveOneLineErrors) {
  test::TempDir dir;
  const auto c = small_config();
  WeightSet w = WeightSet::open({write_weights(dir, c)});
  ImuEncoder enc(c, w, "test");
  test::expect_error([&] { enc->forward(at::zeros({1, 31, 6})); }, {"31 time steps", "windows of 32"});
  test::expect_error([&] { enc->forward(at::zeros({1, 32, 3})); }, {"(batch, time, 6)", "[1, 32, 3]"});
  test::expect_error([&] { enc->forward(at::zeros({32, 6})); }, {"(batch, time, 6)"});
  test::expect_error([&] { enc->forward(at::zeros({1, 32, 6}, at::kLong)); }, {"floating point"});
  test::TempDir dir2;
  WeightSet missing = WeightSet::open({write_weights(dir2, c, "head.proj.weight")});
  test::expect_error([&] { ImuEncoder(c, missing, "ckpt.safetensors"); }, {"ckpt.safetensors", "missing tensors: head.proj.weight"});
  test::expect_error([&] {
    ImuEncoderConfig::from_json({{"window", 30}, {"patch", 8}, {"hidden_size", 15}, {"num_attention_heads", 2}}, "imu.json");
  }, {"imu.json", "missing field 'num_hidden_layers'", "missing field 'projection_dim'"});
  test::expect_error([&] {
    ImuEncoderConfig::from_json({{"window", 30}, {"patch", 8}, {"hidden_size", 15}, {"num_hidden_layers", 1},
                                 {"num_attention_heads", 2}, {"intermediate_size", 4}, {"projection_dim", 4}},
                                "imu.json");
  }, {"window 30 is not a multiple of patch 8", "hidden_size 15 is not divisible"});
}

TEST(ImuEncoder, ConfigRoundTripsThroughItsJson) {
  const auto c = small_config();
  EXPECT_EQ(ImuEncoderConfig::from_json(c.to_json(), "x").to_json(), c.to_json());
}

}  // namespace
}  // namespace m4
