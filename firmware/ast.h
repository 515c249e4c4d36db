// The Audio Spectrogram Transformer (`aud_b_enc`) as Hugging Face's ASTModel
// computes it (modeling_audio_spectrogram_transformer.py; Gong et al., AST,
// Interspeech 2021): overlapping 16x16 patches of the log-mel, class and
// distillation tokens, ViT layers, final LayerNorm, pooled = mean of the two tokens.
// Internal names: cls_token, distillation_token, position_embeddings,
// patch_embedding.{weight,bias}, layers.{i}.* (see transformer_encoder.h), layer_norm.
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

#include "firmware/kaldi_fbank.h"
#include "firmware/transformer_encoder.h"

namespace m4 {

class WeightSet;

// HF's ASTConfig (config.json of ASTModel / ASTForAudioClassification).
struct AstConfig {
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  int64_t num_mel_bins = 0;
  int64_t max_length = 0;  // input frames (time)
  int64_t patch_size = 16;
  int64_t frequency_stride = 10;
  int64_t time_stride = 10;
  double layer_norm_eps = 1e-12;
  std::string hidden_act = "gelu";
  bool qkv_bias = true;
  // The front-end's settings (ASTFeatureExtractor: the checkpoint's preprocessor_config.json,
  // or HF's defaults, AudioSet's, without one). Stored as `feature_extractor` in the
  // normalised config, so a firmware's id covers them; the fbank's mel bins and frames are
  // the model's own num_mel_bins and max_length.
  struct FeatureExtractor {
    int64_t sampling_rate = 16000;
    double mean = kAudioSetFbankMean;
    double std = kAudioSetFbankStd;
    bool do_normalize = true;
  } feature_extractor;

  // Parses HF's config.json or this struct's own to_json(); every problem is
  // reported at once in one m4::Error. Optional fields take HF's defaults.
  static AstConfig from_json(const nlohmann::json& j, const std::string& where);
  static AstConfig from_file(const std::filesystem::path& config_json);
  nlohmann::json to_json() const;
  // The config with the feature extractor of an HF preprocessor_config.json
  // (`where` names it in errors). Its num_mel_bins and max_length (HF's defaults 128
  // and 1024 when absent) must be the model's; sampling_rate must be m4forge's audio
  // rate (16000 Hz); feature_extractor_type, when given, ASTFeatureExtractor. Every
  // problem is reported at once.
  AstConfig with_preprocessor(const nlohmann::json& preprocessor, const std::string& where) const;
  // What ast_fbank_features needs: the feature extractor with the model's bins and frames.
  AstFeatureOptions feature_options() const;
  std::string summary() const;
  // Patches along frequency and time, and in all (without the two tokens).
  int64_t frequency_patches() const { return (num_mel_bins - patch_size) / frequency_stride + 1; }
  int64_t time_patches() const { return (max_length - patch_size) / time_stride + 1; }
  int64_t num_patches() const { return frequency_patches() * time_patches(); }
};

// The patch projection: a frozen Conv2d 1 -> C, kernel patch, stride (f, t).
class AstPatchEmbeddingImpl : public torch::nn::Module {
 public:
  AstPatchEmbeddingImpl(at::Tensor weight, at::Tensor bias, int64_t frequency_stride, int64_t time_stride);
  // x: (B, time, mel) -> (B, N, C), patches ordered frequency-major as HF's.
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight, bias;  // (C, 1, P, P), (C)
  int64_t frequency_stride, time_stride;
};
TORCH_MODULE(AstPatchEmbedding);

class AstImpl : public torch::nn::Module {
 public:
  // Builds the encoder from HF-named tensors (`embeddings.*`, `encoder.layer.*`,
  // `layernorm.*`, optionally prefixed `audio_spectrogram_transformer.`);
  // `classifier.*` is ignored. Weights stored in `dtype` stay zero-copy views.
  AstImpl(const AstConfig& c, const WeightSet& w, const std::string& where, at::ScalarType dtype = at::kFloat);

  // HF name -> internal name; "" = ignored (classifier head).
  static std::string internal_name(const std::string& stored);
  // Internal -> the name ASTModel stores.
  static std::string stored_name(const std::string& internal);
  static std::map<std::string, std::vector<int64_t>> expected_shapes(const AstConfig& c);
  // Checks names, shapes and dtypes without touching tensor data; returns
  // internal name -> stored name. Throws one m4::Error listing every problem.
  static std::map<std::string, std::string> validate(const AstConfig& c, const WeightSet& w, const std::string& where);

  // input_values: (B, max_length, num_mel_bins) normalised log-mel fbank.
  // last_hidden_state (B, 2 + N, C) after the final layernorm (cls, distillation
  // first); pooler_output (B, C) = their mean. hidden_states (HF's convention):
  // [0] the embeddings, [k] the output of layer k-1, all before the final layernorm.
  EncoderOutput forward(const at::Tensor& input_values, bool hidden_states = false);

  const AstConfig& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }

  at::Tensor cls_token, distillation_token;  // (1, 1, C)
  at::Tensor position_embeddings;            // (1, 2 + N, C)
  AstPatchEmbedding patch_embedding{nullptr};
  torch::nn::ModuleList layers{nullptr};
  LayerNorm layer_norm{nullptr};

 private:
  AstConfig config_;
  at::ScalarType dtype_;
  std::vector<EncoderLayer> layer_list_;
};
TORCH_MODULE(Ast);

}  // namespace m4
