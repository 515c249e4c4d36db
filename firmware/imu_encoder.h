// The IMU encoder (`imu_enc`), after ImageBind's IMU branch (Girdhar et al.,
// CVPR'23, imagebind_model.py): a (T, 6) window is cut into patches of `patch`
// steps x 6 axes, each flattened and linearly embedded (no bias) then
// layer-normed; a class token and learned positions are added; pre-norm
// transformer layers; the head layer-norms the class token and projects it.
// The tensor naming is m4forge's own (there is no HF layout), documented in
// docs/firmware-format.md:
//   patch_embed.proj.weight (C, 6*patch)   patch_embed.norm.{weight,bias} (C)
//   cls_token (1, 1, C)                     pos_embed (1, 1 + T/patch, C)
//   layers.{i}.*  (transformer_encoder.h)  head.norm.{weight,bias} (C)
//   head.proj.weight (P, C)
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "firmware/transformer_encoder.h"

namespace m4 {

struct ImuEncoderConfig {
  int64_t channels = 6;
  int64_t window = 0;  // time steps per input window
  int64_t patch = 8;   // time steps per patch
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  int64_t projection_dim = 0;
  double layer_norm_eps = 1e-6;
  std::string hidden_act = "gelu";

  int64_t num_patches() const { return window / patch; }
  static ImuEncoderConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
  std::string summary() const;
};

class ImuEncoderImpl : public torch::nn::Module {
 public:
  ImuEncoderImpl(const ImuEncoderConfig& c, const WeightSet& w, const std::string& where,
                 at::ScalarType dtype = at::kFloat);
  static std::string internal_name(const std::string& stored) { return stored; }
  static std::string stored_name(const std::string& internal) { return internal; }
  static std::map<std::string, std::vector<int64_t>> expected_shapes(const ImuEncoderConfig& c);
  static std::map<std::string, std::string> validate(const ImuEncoderConfig& c, const WeightSet& w,
                                                     const std::string& where);
  // imu: (B, T, 6) f32 with T == window -> last_hidden_state (B, 1+N, C),
  // pooler_output = head.norm(class token) (B, C), embeds = head.proj(pooled) (B, P).
  EncoderOutput forward(const at::Tensor& imu, bool hidden_states = false);
  const ImuEncoderConfig& config() const { return config_; }

  Linear patch_proj{nullptr};
  LayerNorm patch_norm{nullptr};
  at::Tensor cls_token, pos_embed;
  torch::nn::ModuleList layers{nullptr};
  LayerNorm head_norm{nullptr};
  Linear head_proj{nullptr};

 private:
  ImuEncoderConfig config_;
  std::vector<EncoderLayer> layer_list_;
};
TORCH_MODULE(ImuEncoder);

}  // namespace m4
