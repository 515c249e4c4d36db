// Whisper's audio encoder (`aud_i_enc`) as Hugging Face's WhisperEncoder computes
// it (modeling_whisper.py): conv stem (k3 s1, k3 s2, exact gelu) -> + the stored
// position table -> pre-norm transformer layers -> final LayerNorm.
// Internal names: conv1, conv2, embed_positions.weight, layers.{i}.* (see
// transformer_encoder.h), layer_norm.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "firmware/llama.h"
#include "firmware/transformer_encoder.h"

namespace m4 {

class WeightSet;

// The encoder half of HF's WhisperConfig (config.json of WhisperModel /
// WhisperForConditionalGeneration). Torch-free fields.
struct WhisperEncoderConfig {
  int64_t d_model = 0;
  int64_t encoder_layers = 0;
  int64_t encoder_attention_heads = 0;
  int64_t encoder_ffn_dim = 0;
  int64_t num_mel_bins = 0;
  int64_t max_source_positions = 0;
  std::string activation_function = "gelu";

  // Parses HF's config.json or this struct's own to_json(); every problem is
  // reported at once in one m4::Error. `where` names the file.
  static WhisperEncoderConfig from_json(const nlohmann::json& j, const std::string& where);
  static WhisperEncoderConfig from_file(const std::filesystem::path& config_json);
  // The normalised form stored in firmware.json and hashed into firmware_id.
  nlohmann::json to_json() const;
  std::string summary() const;
  // Input frames the conv stem expects (conv2 halves them).
  int64_t frames() const { return 2 * max_source_positions; }
};

// A frozen 1-D convolution over (B, C_in, T) whose weights are views into the mapping.
class WhisperConv1dImpl : public torch::nn::Module {
 public:
  WhisperConv1dImpl(at::Tensor weight, at::Tensor bias, int64_t stride, int64_t padding);
  at::Tensor forward(const at::Tensor& x);  // (B, C_in, T) -> (B, C_out, T')
  at::Tensor weight, bias;                  // (C_out, C_in, K), (C_out)
  int64_t stride, padding;
};
TORCH_MODULE(WhisperConv1d);

class WhisperEncoderImpl : public torch::nn::Module {
 public:
  // Builds the encoder from HF-named tensors (`model.encoder.*`, or `encoder.*`
  // as a WhisperModel saves them); decoder and head tensors are ignored.
  // Weights stored in `dtype` stay zero-copy views; others are converted (a copy).
  WhisperEncoderImpl(const WhisperEncoderConfig& c, const WeightSet& w, const std::string& where,
                     at::ScalarType dtype = at::kFloat);

  // "model.encoder.X" / "encoder.X" -> internal name; "" = not the encoder's
  // (decoder tensors, proj_out, ...), ignored.
  static std::string internal_name(const std::string& stored);
  // Internal -> the name WhisperForConditionalGeneration stores ("model.encoder.*").
  static std::string stored_name(const std::string& internal);
  static std::map<std::string, std::vector<int64_t>> expected_shapes(const WhisperEncoderConfig& c);
  // Checks names, shapes and dtypes without touching tensor data; returns
  // internal name -> stored name. Throws one m4::Error listing every problem.
  static std::map<std::string, std::string> validate(const WhisperEncoderConfig& c, const WeightSet& w,
                                                     const std::string& where);

  // input_features: (B, num_mel_bins, 2 * max_source_positions) log-mel.
  // hidden_states (HF's convention): [0] after the positions, [k] the output of
  // layer k-1, the last one after the final layer_norm (= last_hidden_state).
  EncoderOutput forward(const at::Tensor& input_features, bool hidden_states = false);

  const WhisperEncoderConfig& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }

  WhisperConv1d conv1{nullptr}, conv2{nullptr};
  Embedding embed_positions{nullptr};
  torch::nn::ModuleList layers{nullptr};
  LayerNorm layer_norm{nullptr};

 private:
  WhisperEncoderConfig config_;
  at::ScalarType dtype_;
  std::vector<EncoderLayer> layer_list_;
};
TORCH_MODULE(WhisperEncoder);

}  // namespace m4
