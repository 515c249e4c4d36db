// CLIP's vision tower (ViT) and text tower as HF transformers' modeling_clip.py
// (4.33) computes them: CLIPVisionModel[WithProjection], CLIPTextModel[WithProjection],
// and the two towers of a full CLIPModel checkpoint.
//
// Internal names (what PEFT patterns and firmware.json see), on top of
// transformer_encoder.h's `layers.{i}.*`:
//   vision: embeddings.class_embedding, embeddings.patch_embedding.weight,
//           embeddings.position_embedding.weight, pre_layrnorm.{weight,bias} (HF's
//           spelling, kept so names map 1:1), layers.{i}.*, post_layernorm.*,
//           visual_projection.weight
//   text:   embeddings.token_embedding.weight, embeddings.position_embedding.weight,
//           layers.{i}.*, final_layer_norm.*, text_projection.weight
// HF names are the same under "vision_model." / "text_model." with "encoder.layers."
// for "layers."; the projections have no prefix in HF either.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "firmware/linear.h"
#include "firmware/llama.h"  // Embedding
#include "firmware/transformer_encoder.h"

namespace m4 {

class WeightSet;

// From HF's CLIPVisionConfig (flat config.json of a CLIPVisionModel[WithProjection])
// or the "vision_config" of a CLIPConfig (model_type "clip"), or our to_json().
// Fields missing from the JSON take HF's defaults (HF writes sub-configs as
// diffs against them). projection_dim: a CLIPConfig's top-level projection_dim
// (CLIPModel always projects); for a flat config, the field when "architectures"
// names CLIPVisionModelWithProjection, 0 when it names CLIPVisionModel, and the
// field as written (default 0) when there is no "architectures" (our form).
struct ClipVisionConfig {
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t image_size = 224;
  int64_t patch_size = 32;
  int64_t num_channels = 3;
  int64_t projection_dim = 0;  // 0: no visual_projection
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "quick_gelu";  // quick_gelu, gelu, gelu_new, gelu_pytorch_tanh

  int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
  // Every problem found is reported at once in one line; `where` names the file.
  static ClipVisionConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
  std::string summary() const;
};

// The same for HF's CLIPTextConfig ("text_config" of a CLIPConfig).
struct ClipTextConfig {
  int64_t vocab_size = 49408;
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 8;
  int64_t max_position_embeddings = 77;
  int64_t projection_dim = 0;  // 0: no text_projection
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "quick_gelu";
  int64_t bos_token_id = 49406;
  int64_t eos_token_id = 49407;  // 2 selects HF's legacy pooling (argmax of the ids)
  int64_t pad_token_id = 1;

  static ClipTextConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
  std::string summary() const;
};

// The patch "conv": Conv2d(C, hidden, kernel = stride = patch, no bias).
class ClipPatchEmbeddingImpl : public torch::nn::Module {
 public:
  ClipPatchEmbeddingImpl(at::Tensor weight, int64_t patch);
  at::Tensor forward(const at::Tensor& pixels);  // (B, C, H, W) -> (B, hidden, H/p, W/p)
  at::Tensor weight;                             // (hidden, C, p, p)
  int64_t patch;
};
TORCH_MODULE(ClipPatchEmbedding);

class ClipVisionEmbeddingsImpl : public torch::nn::Module {
 public:
  ClipVisionEmbeddingsImpl(at::Tensor class_embedding, ClipPatchEmbedding patch, Embedding position);
  at::Tensor forward(const at::Tensor& pixels);  // (B, C, H, W) -> (B, 1+N, hidden)
  at::Tensor class_embedding;                    // (hidden)
  ClipPatchEmbedding patch_embedding;
  Embedding position_embedding;  // (1+N, hidden)
};
TORCH_MODULE(ClipVisionEmbeddings);

class ClipTextEmbeddingsImpl : public torch::nn::Module {
 public:
  ClipTextEmbeddingsImpl(Embedding token, Embedding position);
  at::Tensor forward(const at::Tensor& ids);  // (B, T) -> (B, T, hidden), positions 0..T-1
  Embedding token_embedding;
  Embedding position_embedding;
};
TORCH_MODULE(ClipTextEmbeddings);

class ClipVisionImpl : public torch::nn::Module {
 public:
  // Internal -> the name CLIPVisionModel(WithProjection) stores.
  static std::string stored_name(const std::string& internal);

 public:
  // Validates the checkpoint (see validate) and builds the tower. Weights in
  // `dtype` stay zero-copy views into the mapping; others are converted (a copy).
  ClipVisionImpl(const ClipVisionConfig& c, const WeightSet& w, const std::string& where,
                 at::ScalarType dtype = at::kFloat);

  // HF name -> internal name; "" for tensors this tower ignores: the text tower
  // and logit_scale of a full CLIPModel file, and position_ids buffers. Names
  // already internal map to themselves.
  static std::string internal_name(const std::string& stored);
  static std::map<std::string, std::vector<int64_t>> expected_shapes(const ClipVisionConfig& c, bool with_projection);
  // Checks names, shapes and dtypes without touching tensor data; the projection
  // is expected iff c.projection_dim > 0. Returns internal -> stored name.
  static std::map<std::string, std::string> validate(const ClipVisionConfig& c, const WeightSet& w,
                                                     const std::string& where);

  // pixel_values: (B, C, H, W) floating, already normalised (clip_preprocess).
  // last_hidden_state (B, 1+N, hidden), class token first, not post-normed;
  // pooler_output = post_layernorm(last_hidden_state[:, 0]) (B, hidden);
  // embeds = visual_projection(pooler_output) (B, P) when the tower has one;
  // hidden_states: after pre_layrnorm, then after each layer (L+1 entries).
  EncoderOutput forward(const at::Tensor& pixel_values, bool hidden_states = false);

  const ClipVisionConfig& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }

  ClipVisionEmbeddings embeddings{nullptr};
  LayerNorm pre_layrnorm{nullptr};
  torch::nn::ModuleList layers{nullptr};
  LayerNorm post_layernorm{nullptr};
  Linear visual_projection{nullptr};  // null without projection

 private:
  ClipVisionConfig config_;
  at::ScalarType dtype_;
  std::string where_;
  std::vector<EncoderLayer> layer_list_;
};
TORCH_MODULE(ClipVision);

class ClipTextImpl : public torch::nn::Module {
 public:
  // Internal -> the name CLIPTextModel(WithProjection) stores.
  static std::string stored_name(const std::string& internal);

 public:
  ClipTextImpl(const ClipTextConfig& c, const WeightSet& w, const std::string& where,
               at::ScalarType dtype = at::kFloat);

  static std::string internal_name(const std::string& stored);
  static std::map<std::string, std::vector<int64_t>> expected_shapes(const ClipTextConfig& c, bool with_projection);
  static std::map<std::string, std::string> validate(const ClipTextConfig& c, const WeightSet& w,
                                                     const std::string& where);

  // input_ids: (B, T) int64/int32, T <= max_position_embeddings; attention_mask:
  // (B, T) 0/1, optional. Attention is causal plus padding (HF's additive masks).
  // last_hidden_state = final_layer_norm(encoder output) (B, T, hidden);
  // pooler_output (B, hidden) at the eos position: the first id == eos_token_id
  // (position 0 if none), or with eos_token_id == 2 (legacy configs) the argmax
  // of the ids; embeds = text_projection(pooler_output) (B, P) when present;
  // hidden_states: embeddings, then each layer's output (the last one before
  // final_layer_norm), as HF.
  EncoderOutput forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {}, bool hidden_states = false);

  const ClipTextConfig& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }

  ClipTextEmbeddings embeddings{nullptr};
  torch::nn::ModuleList layers{nullptr};
  LayerNorm final_layer_norm{nullptr};
  Linear text_projection{nullptr};  // null without projection

 private:
  ClipTextConfig config_;
  at::ScalarType dtype_;
  std::string where_;
  std::vector<EncoderLayer> layer_list_;
};
TORCH_MODULE(ClipText);

}  // namespace m4
