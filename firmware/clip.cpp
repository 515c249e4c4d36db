// CLIP vision and text towers matching HF transformers' modeling_clip.py (4.33);
// see clip.h for names and outputs.
#include "firmware/clip.h"

#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/json_file.h"
#include "firmware/weight_set.h"

namespace m4 {
namespace {
using json = nlohmann::json;


// The most negative finite value of a floating dtype (HF's torch.finfo(dtype).min).
// Reads typed fields of one JSON object, collecting problems instead of throwing.
// `prefix` ("vision_config.") qualifies the names in messages.
struct FieldReader {
  const json& j;
  std::string prefix;
  std::vector<std::string>* problems;

  bool present(const char* key) const { return j.contains(key) && !j[key].is_null(); }
  void get_int(const char* key, int64_t* out) const {
    if (!present(key)) return;
    if (!j[key].is_number_integer()) {
      problems->push_back("field '" + prefix + key + "' must be an integer, found " + j[key].dump());
      return;
    }
    *out = j[key].get<int64_t>();
  }
  void get_double(const char* key, double* out) const {
    if (!present(key)) return;
    if (!j[key].is_number()) {
      problems->push_back("field '" + prefix + key + "' must be a number, found " + j[key].dump());
      return;
    }
    *out = j[key].get<double>();
  }
  void get_string(const char* key, std::string* out) const {
    if (!present(key)) return;
    if (!j[key].is_string()) {
      problems->push_back("field '" + prefix + key + "' must be a string, found " + j[key].dump());
      return;
    }
    *out = j[key].get<std::string>();
  }
  void positive(const char* key, int64_t v) const {
    if (v <= 0) problems->push_back("field '" + prefix + key + "' must be positive, found " + std::to_string(v));
  }
};

bool names_architecture(const json& j, const std::string& arch) {
  if (!j.contains("architectures") || !j["architectures"].is_array()) return false;
  for (const auto& a : j["architectures"])
    if (a.is_string() && a.get<std::string>() == arch) return true;
  return false;
}

// Which object holds a tower's fields and where its projection_dim comes from.
// Composite (CLIPConfig, model_type "clip"): the sub-config, projection from the
// top level (default 512). Flat: the object itself, projection by architecture.
struct TowerSource {
  json sub;
  std::string prefix;
  int64_t projection_dim = 0;
};

TowerSource tower_source(const json& j, const char* sub_key, const char* legacy_sub_key, const char* flat_type,
                         const char* plain_arch, const char* proj_arch, std::vector<std::string>* problems) {
  TowerSource s;
  const std::string model_type =
      j.contains("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>() : "";
  if (j.contains(sub_key) || model_type == "clip") {
    s.prefix = std::string(sub_key) + ".";
    FieldReader top{j, "", problems};
    const char* key = top.present(sub_key) ? sub_key : top.present(legacy_sub_key) ? legacy_sub_key : nullptr;
    s.sub = key != nullptr ? j[key] : json::object();  // absent: all of HF's defaults
    if (!s.sub.is_object()) {
      problems->push_back(std::string("field '") + sub_key + "' must be an object");
      s.sub = json::object();
    }
    s.projection_dim = 512;
    FieldReader{j, "", problems}.get_int("projection_dim", &s.projection_dim);
    return s;
  }
  if (!model_type.empty() && model_type != flat_type) {
    problems->push_back("model_type '" + model_type + "' is not a CLIP config of this kind (expected '" + flat_type +
                        "' or 'clip')");
  }
  s.sub = j;
  if (names_architecture(j, proj_arch)) {
    s.projection_dim = 512;
    FieldReader{j, "", problems}.get_int("projection_dim", &s.projection_dim);
  } else if (names_architecture(j, plain_arch)) {
    s.projection_dim = 0;
  } else {
    FieldReader{j, "", problems}.get_int("projection_dim", &s.projection_dim);
  }
  return s;
}

void check_common(const FieldReader& r, int64_t hidden, int64_t heads, double eps, const std::string& act,
                  int64_t projection_dim) {
  if (r.problems->empty() && hidden % heads != 0) {
    r.problems->push_back("hidden_size " + std::to_string(hidden) + " is not divisible by num_attention_heads " +
                          std::to_string(heads));
  }
  if (eps <= 0) r.problems->push_back("field '" + r.prefix + "layer_norm_eps' must be positive");
  if (act != "quick_gelu" && act != "gelu" && act != "gelu_new" && act != "gelu_pytorch_tanh") {
    r.problems->push_back("field '" + r.prefix + "hidden_act' is '" + act +
                          "', not supported (supported: quick_gelu, gelu, gelu_new, gelu_pytorch_tanh)");
  }
  if (projection_dim < 0) r.problems->push_back("projection_dim must be >= 0, found " + std::to_string(projection_dim));
}

void fail_if_any(const std::vector<std::string>& problems, const std::string& where) {
  check_problems(problems, where);
}

std::string vision_stored_name(const std::string& internal) {
  if (internal == "visual_projection.weight") return internal;
  if (internal.starts_with("layers.")) return "vision_model.encoder." + internal;
  return "vision_model." + internal;
}

std::string text_stored_name(const std::string& internal) {
  if (internal == "text_projection.weight") return internal;
  if (internal.starts_with("layers.")) return "text_model.encoder." + internal;
  return "text_model." + internal;
}

// HF's name under `prefix` ("vision_model.") -> internal ("encoder.layers." -> "layers.").
std::string strip_tower_prefix(const std::string& stored, std::string_view prefix) {
  std::string name = stored.starts_with(prefix) ? stored.substr(prefix.size()) : stored;
  if (name.starts_with("encoder.layers.")) name = name.substr(8);
  return name;
}

// Converts a validated tensor to the tower's dtype (zero-copy when it already is).
std::function<at::Tensor(const std::string&)> getter(const WeightSet& w,
                                                     const std::map<std::string, std::string>& by_internal,
                                                     at::ScalarType dtype) {
  return [&w, &by_internal, dtype](const std::string& name) {
    at::Tensor t = w.tensor(by_internal.at(name));
    return t.scalar_type() == dtype ? t : t.to(dtype);
  };
}

EncoderStackSpec stack_spec(int64_t layers, int64_t hidden, int64_t inter, int64_t heads, double eps,
                            const std::string& act, const std::string& where) {
  EncoderStackSpec s;
  s.layers = layers;
  s.hidden = hidden;
  s.intermediate = inter;
  s.heads = heads;
  s.eps = eps;
  s.act = activation_from_name(act, where);
  return s;
}

}  // namespace

// ---- configs ---------------------------------------------------------------

ClipVisionConfig ClipVisionConfig::from_json(const json& j, const std::string& where) {
  M4_CHECK(j.is_object(), ErrorCode::kBadInput, where, ": config must be a JSON object");
  std::vector<std::string> problems;
  TowerSource src = tower_source(j, "vision_config", "vision_config_dict", "clip_vision_model", "CLIPVisionModel",
                                 "CLIPVisionModelWithProjection", &problems);
  ClipVisionConfig c;
  c.projection_dim = src.projection_dim;
  FieldReader r{src.sub, src.prefix, &problems};
  r.get_int("hidden_size", &c.hidden_size);
  r.get_int("intermediate_size", &c.intermediate_size);
  r.get_int("num_hidden_layers", &c.num_hidden_layers);
  r.get_int("num_attention_heads", &c.num_attention_heads);
  r.get_int("image_size", &c.image_size);
  r.get_int("patch_size", &c.patch_size);
  r.get_int("num_channels", &c.num_channels);
  r.get_double("layer_norm_eps", &c.layer_norm_eps);
  r.get_string("hidden_act", &c.hidden_act);
  if (problems.empty()) {
    r.positive("hidden_size", c.hidden_size);
    r.positive("intermediate_size", c.intermediate_size);
    r.positive("num_hidden_layers", c.num_hidden_layers);
    r.positive("num_attention_heads", c.num_attention_heads);
    r.positive("image_size", c.image_size);
    r.positive("patch_size", c.patch_size);
    r.positive("num_channels", c.num_channels);
    if (problems.empty() && c.patch_size > c.image_size) {
      problems.push_back("patch_size " + std::to_string(c.patch_size) + " is larger than image_size " +
                         std::to_string(c.image_size));
    }
  }
  check_common(r, c.hidden_size, c.num_attention_heads, c.layer_norm_eps, c.hidden_act, c.projection_dim);
  fail_if_any(problems, where);
  return c;
}

json ClipVisionConfig::to_json() const {
  return {{"hidden_size", hidden_size},
          {"intermediate_size", intermediate_size},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"image_size", image_size},
          {"patch_size", patch_size},
          {"num_channels", num_channels},
          {"projection_dim", projection_dim},
          {"layer_norm_eps", layer_norm_eps},
          {"hidden_act", hidden_act}};
}

std::string ClipVisionConfig::summary() const {
  std::ostringstream os;
  os << "hidden " << hidden_size << ", " << num_hidden_layers << " layers, " << num_attention_heads
     << " heads, intermediate " << intermediate_size << ", image " << image_size << ", patch " << patch_size << ", "
     << num_channels << " channels, projection " << projection_dim;
  return os.str();
}

ClipTextConfig ClipTextConfig::from_json(const json& j, const std::string& where) {
  M4_CHECK(j.is_object(), ErrorCode::kBadInput, where, ": config must be a JSON object");
  std::vector<std::string> problems;
  TowerSource src = tower_source(j, "text_config", "text_config_dict", "clip_text_model", "CLIPTextModel",
                                 "CLIPTextModelWithProjection", &problems);
  ClipTextConfig c;
  c.projection_dim = src.projection_dim;
  FieldReader r{src.sub, src.prefix, &problems};
  r.get_int("vocab_size", &c.vocab_size);
  r.get_int("hidden_size", &c.hidden_size);
  r.get_int("intermediate_size", &c.intermediate_size);
  r.get_int("num_hidden_layers", &c.num_hidden_layers);
  r.get_int("num_attention_heads", &c.num_attention_heads);
  r.get_int("max_position_embeddings", &c.max_position_embeddings);
  r.get_double("layer_norm_eps", &c.layer_norm_eps);
  r.get_string("hidden_act", &c.hidden_act);
  r.get_int("bos_token_id", &c.bos_token_id);
  r.get_int("eos_token_id", &c.eos_token_id);
  r.get_int("pad_token_id", &c.pad_token_id);
  if (problems.empty()) {
    r.positive("vocab_size", c.vocab_size);
    r.positive("hidden_size", c.hidden_size);
    r.positive("intermediate_size", c.intermediate_size);
    r.positive("num_hidden_layers", c.num_hidden_layers);
    r.positive("num_attention_heads", c.num_attention_heads);
    r.positive("max_position_embeddings", c.max_position_embeddings);
  }
  check_common(r, c.hidden_size, c.num_attention_heads, c.layer_norm_eps, c.hidden_act, c.projection_dim);
  fail_if_any(problems, where);
  return c;
}

json ClipTextConfig::to_json() const {
  return {{"vocab_size", vocab_size},
          {"hidden_size", hidden_size},
          {"intermediate_size", intermediate_size},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"max_position_embeddings", max_position_embeddings},
          {"projection_dim", projection_dim},
          {"layer_norm_eps", layer_norm_eps},
          {"hidden_act", hidden_act},
          {"bos_token_id", bos_token_id},
          {"eos_token_id", eos_token_id},
          {"pad_token_id", pad_token_id}};
}

std::string ClipTextConfig::summary() const {
  std::ostringstream os;
  os << "hidden " << hidden_size << ", " << num_hidden_layers << " layers, " << num_attention_heads
     << " heads, intermediate " << intermediate_size << ", vocab " << vocab_size << ", max positions "
     << max_position_embeddings << ", projection " << projection_dim;
  return os.str();
}

// ---- embeddings ------------------------------------------------------------

ClipPatchEmbeddingImpl::ClipPatchEmbeddingImpl(at::Tensor w, int64_t p) : patch(p) {
  weight = register_parameter("weight", std::move(w), false);
}

at::Tensor ClipPatchEmbeddingImpl::forward(const at::Tensor& pixels) {
  return at::conv2d(pixels, weight, /*bias=*/{}, /*stride=*/{patch, patch});
}

ClipVisionEmbeddingsImpl::ClipVisionEmbeddingsImpl(at::Tensor cls, ClipPatchEmbedding patch, Embedding position)
    : patch_embedding(register_module("patch_embedding", patch)),
      position_embedding(register_module("position_embedding", position)) {
  class_embedding = register_parameter("class_embedding", std::move(cls), false);
}

at::Tensor ClipVisionEmbeddingsImpl::forward(const at::Tensor& pixels) {
  const int64_t B = pixels.size(0), C = class_embedding.size(0);
  // (B, C, g, g) -> (B, N, C)
  at::Tensor patches = patch_embedding(pixels).flatten(2).transpose(1, 2);
  at::Tensor cls = class_embedding.view({1, 1, C}).expand({B, 1, C});
  // (B, 1+N, C) + positions (1+N, C)
  return at::cat({cls, patches}, 1) + position_embedding->weight;
}

ClipTextEmbeddingsImpl::ClipTextEmbeddingsImpl(Embedding token, Embedding position)
    : token_embedding(register_module("token_embedding", token)),
      position_embedding(register_module("position_embedding", position)) {}

at::Tensor ClipTextEmbeddingsImpl::forward(const at::Tensor& ids) {
  // (B, T) -> (B, T, C)
  return token_embedding(ids) + position_embedding->weight.narrow(0, 0, ids.size(1));
}

// ---- vision tower ----------------------------------------------------------

std::string ClipVisionImpl::stored_name(const std::string& internal) { return vision_stored_name(internal); }
std::string ClipTextImpl::stored_name(const std::string& internal) { return text_stored_name(internal); }

std::string ClipVisionImpl::internal_name(const std::string& stored) {
  if (stored == "logit_scale" || stored.starts_with("text_model.") || stored.starts_with("text_projection.") ||
      stored.ends_with("embeddings.position_ids")) {
    return "";
  }
  return strip_tower_prefix(stored, "vision_model.");
}

std::map<std::string, std::vector<int64_t>> ClipVisionImpl::expected_shapes(const ClipVisionConfig& c,
                                                                            bool with_projection) {
  std::map<std::string, std::vector<int64_t>> m;
  const int64_t H = c.hidden_size, p = c.patch_size;
  m["embeddings.class_embedding"] = {H};
  m["embeddings.patch_embedding.weight"] = {H, c.num_channels, p, p};
  m["embeddings.position_embedding.weight"] = {c.num_patches() + 1, H};
  m["pre_layrnorm.weight"] = {H};
  m["pre_layrnorm.bias"] = {H};
  EncoderStackSpec s;
  s.layers = c.num_hidden_layers;
  s.hidden = H;
  s.intermediate = c.intermediate_size;
  add_encoder_stack_shapes(s, &m);
  m["post_layernorm.weight"] = {H};
  m["post_layernorm.bias"] = {H};
  if (with_projection) m["visual_projection.weight"] = {c.projection_dim, H};
  return m;
}

std::map<std::string, std::string> ClipVisionImpl::validate(const ClipVisionConfig& c, const WeightSet& w,
                                                            const std::string& where) {
  return validate_weights(expected_shapes(c, c.projection_dim > 0), w, internal_name, vision_stored_name, where,
                          c.summary(), encoder_layer_quantizable);
}

ClipVisionImpl::ClipVisionImpl(const ClipVisionConfig& c, const WeightSet& w, const std::string& where,
                               at::ScalarType dtype)
    : config_(c), dtype_(dtype), where_(where) {
  M4_CHECK(at::isFloatingType(dtype), ErrorCode::kInvalidArgument, where, ": CLIP vision dtype must be floating");
  const auto by_internal = validate(c, w, where);
  const auto get = getter(w, by_internal, dtype);
  embeddings = register_module(
      "embeddings", ClipVisionEmbeddings(get("embeddings.class_embedding"),
                                         ClipPatchEmbedding(get("embeddings.patch_embedding.weight"), c.patch_size),
                                         Embedding(get("embeddings.position_embedding.weight"))));
  pre_layrnorm = register_module("pre_layrnorm",
                                 LayerNorm(get("pre_layrnorm.weight"), get("pre_layrnorm.bias"), c.layer_norm_eps));
  layer_list_ = build_encoder_stack(stack_spec(c.num_hidden_layers, c.hidden_size, c.intermediate_size,
                                               c.num_attention_heads, c.layer_norm_eps, c.hidden_act, where),
                                    get, w, by_internal);
  layers = register_module("layers", torch::nn::ModuleList());
  for (auto& l : layer_list_) layers->push_back(l);
  post_layernorm = register_module(
      "post_layernorm", LayerNorm(get("post_layernorm.weight"), get("post_layernorm.bias"), c.layer_norm_eps));
  if (c.projection_dim > 0) {
    visual_projection = register_module("visual_projection", Linear(get("visual_projection.weight"), at::Tensor()));
  }
}

EncoderOutput ClipVisionImpl::forward(const at::Tensor& pixel_values, bool hidden_states) {
  const auto& c = config_;
  M4_CHECK(pixel_values.defined(), ErrorCode::kInvalidArgument, where_, ": CLIP vision got no pixel_values");
  M4_CHECK(pixel_values.dim() == 4, ErrorCode::kInvalidArgument, where_,
           ": CLIP vision expects pixel_values (batch, channels, height, width), found shape ",
           shape_str(pixel_values.sizes()));
  M4_CHECK(at::isFloatingType(pixel_values.scalar_type()), ErrorCode::kInvalidArgument, where_,
           ": CLIP vision expects normalised floating pixel_values, found ", c10::toString(pixel_values.scalar_type()),
           " (hint: run clip_preprocess on uint8 images first)");
  M4_CHECK(pixel_values.size(1) == c.num_channels, ErrorCode::kInvalidArgument, where_, ": CLIP vision expects ",
           c.num_channels, " channels, found ", pixel_values.size(1), " in shape ", shape_str(pixel_values.sizes()));
  M4_CHECK(pixel_values.size(2) == c.image_size && pixel_values.size(3) == c.image_size, ErrorCode::kInvalidArgument,
           where_, ": CLIP vision expects ", c.image_size, "x", c.image_size,
           " images (image_size of the config), found ", pixel_values.size(2), "x", pixel_values.size(3),
           " (hint: clip_preprocess resizes and crops to image_size)");

  EncoderOutput out;
  at::Tensor x = pre_layrnorm(embeddings(pixel_values.to(dtype_)));  // (B, 1+N, C)
  if (hidden_states) out.hidden_states.push_back(x);
  for (auto& layer : layer_list_) {
    x = layer->forward(x, at::Tensor());
    if (hidden_states) out.hidden_states.push_back(x);
  }
  out.last_hidden_state = x;
  out.pooler_output = post_layernorm(x.select(1, 0));                        // (B, C)
  if (visual_projection) out.embeds = visual_projection(out.pooler_output);  // (B, P)
  return out;
}

// ---- text tower ------------------------------------------------------------

std::string ClipTextImpl::internal_name(const std::string& stored) {
  if (stored == "logit_scale" || stored.starts_with("vision_model.") || stored.starts_with("visual_projection.") ||
      stored.ends_with("embeddings.position_ids")) {
    return "";
  }
  return strip_tower_prefix(stored, "text_model.");
}

std::map<std::string, std::vector<int64_t>> ClipTextImpl::expected_shapes(const ClipTextConfig& c,
                                                                          bool with_projection) {
  std::map<std::string, std::vector<int64_t>> m;
  const int64_t H = c.hidden_size;
  m["embeddings.token_embedding.weight"] = {c.vocab_size, H};
  m["embeddings.position_embedding.weight"] = {c.max_position_embeddings, H};
  EncoderStackSpec s;
  s.layers = c.num_hidden_layers;
  s.hidden = H;
  s.intermediate = c.intermediate_size;
  add_encoder_stack_shapes(s, &m);
  m["final_layer_norm.weight"] = {H};
  m["final_layer_norm.bias"] = {H};
  if (with_projection) m["text_projection.weight"] = {c.projection_dim, H};
  return m;
}

std::map<std::string, std::string> ClipTextImpl::validate(const ClipTextConfig& c, const WeightSet& w,
                                                          const std::string& where) {
  return validate_weights(expected_shapes(c, c.projection_dim > 0), w, internal_name, text_stored_name, where,
                          c.summary(), encoder_layer_quantizable);
}

ClipTextImpl::ClipTextImpl(const ClipTextConfig& c, const WeightSet& w, const std::string& where, at::ScalarType dtype)
    : config_(c), dtype_(dtype), where_(where) {
  M4_CHECK(at::isFloatingType(dtype), ErrorCode::kInvalidArgument, where, ": CLIP text dtype must be floating");
  const auto by_internal = validate(c, w, where);
  const auto get = getter(w, by_internal, dtype);
  embeddings =
      register_module("embeddings", ClipTextEmbeddings(Embedding(get("embeddings.token_embedding.weight")),
                                                       Embedding(get("embeddings.position_embedding.weight"))));
  layer_list_ = build_encoder_stack(stack_spec(c.num_hidden_layers, c.hidden_size, c.intermediate_size,
                                               c.num_attention_heads, c.layer_norm_eps, c.hidden_act, where),
                                    get, w, by_internal);
  layers = register_module("layers", torch::nn::ModuleList());
  for (auto& l : layer_list_) layers->push_back(l);
  final_layer_norm = register_module(
      "final_layer_norm", LayerNorm(get("final_layer_norm.weight"), get("final_layer_norm.bias"), c.layer_norm_eps));
  if (c.projection_dim > 0) {
    text_projection = register_module("text_projection", Linear(get("text_projection.weight"), at::Tensor()));
  }
}

EncoderOutput ClipTextImpl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask, bool hidden_states) {
  const auto& c = config_;
  M4_CHECK(input_ids.defined(), ErrorCode::kInvalidArgument, where_, ": CLIP text got no input_ids");
  M4_CHECK(input_ids.dim() == 2, ErrorCode::kInvalidArgument, where_,
           ": CLIP text expects input_ids (batch, seq), found shape ", shape_str(input_ids.sizes()));
  M4_CHECK(input_ids.scalar_type() == at::kLong || input_ids.scalar_type() == at::kInt, ErrorCode::kInvalidArgument,
           where_, ": CLIP text expects I64 or I32 input_ids, found ", c10::toString(input_ids.scalar_type()));
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  M4_CHECK(T > 0, ErrorCode::kInvalidArgument, where_, ": CLIP text got an empty sequence");
  M4_CHECK(T <= c.max_position_embeddings, ErrorCode::kInvalidArgument, where_, ": text of ", T,
           " tokens is longer than max_position_embeddings ", c.max_position_embeddings,
           " (hint: truncate with the tokenizer's max_length)");
  at::Tensor ids = input_ids.to(at::kLong);
  if (ids.numel() > 0) {
    const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    M4_CHECK(lo >= 0 && hi < c.vocab_size, ErrorCode::kInvalidArgument, where_, ": input_ids holds token id ",
             lo < 0 ? lo : hi, ", outside the vocabulary of ", c.vocab_size);
  }
  const auto dev = embeddings->token_embedding->weight.device();
  ids = ids.to(dev);

  // Additive masks as HF: causal (1, 1, T, T) plus padding (B, 1, 1, T), each
  // finfo.min where blocked (blocked by both sums to -inf; key 0 is never
  // causally blocked, so no row is all -inf).
  const auto fopts = at::TensorOptions().dtype(dtype_).device(dev);
  const auto lopts = at::TensorOptions().dtype(at::kLong).device(dev);
  at::Tensor future = at::arange(T, lopts).view({1, T}) > at::arange(T, lopts).view({T, 1});
  at::Tensor mask = at::zeros({1, 1, T, T}, fopts).masked_fill(future.view({1, 1, T, T}), mask_fill_value(dtype_));
  if (attention_mask.defined()) {
    M4_CHECK(attention_mask.dim() == 2 && attention_mask.size(0) == B && attention_mask.size(1) == T,
             ErrorCode::kInvalidArgument, where_, ": attention_mask must be (", B, ", ", T, "), found shape ",
             shape_str(attention_mask.sizes()));
    at::Tensor pad =
        at::zeros({B, 1, 1, T}, fopts).masked_fill(attention_mask.to(dev).eq(0).view({B, 1, 1, T}), mask_fill_value(dtype_));
    mask = mask + pad;  // (B, 1, T, T)
  }

  EncoderOutput out;
  at::Tensor x = embeddings(ids).to(dtype_);  // (B, T, C)
  if (hidden_states) out.hidden_states.push_back(x);
  for (auto& layer : layer_list_) {
    x = layer->forward(x, mask);
    if (hidden_states) out.hidden_states.push_back(x);
  }
  x = final_layer_norm(x);
  out.last_hidden_state = x;

  // Pool at the eos position: (B,) indices -> (B, C).
  at::Tensor idx = c.eos_token_id == 2 ? ids.to(at::kInt).argmax(-1) : ids.eq(c.eos_token_id).to(at::kInt).argmax(-1);
  out.pooler_output = x.gather(1, idx.view({B, 1, 1}).expand({B, 1, x.size(2)})).squeeze(1);
  if (text_projection) out.embeds = text_projection(out.pooler_output);  // (B, P)
  return out;
}

}  // namespace m4
