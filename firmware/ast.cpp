// Audio Spectrogram Transformer matching HF transformers' ASTModel (see ast.h).
#include "firmware/ast.h"

#include <cmath>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_file.h"
#include "firmware/weight_set.h"

namespace m4 {
namespace {

using json = nlohmann::json;


// HF per-layer names (after "encoder.layer.{i}.") -> internal (after "layers.{i}.").
// Matched by prefix, so ".weight"/".bias" carry over.
const std::vector<std::pair<std::string, std::string>>& layer_names() {
  static const std::vector<std::pair<std::string, std::string>> k = {
      {"attention.attention.query.", "self_attn.q_proj."},
      {"attention.attention.key.", "self_attn.k_proj."},
      {"attention.attention.value.", "self_attn.v_proj."},
      {"attention.output.dense.", "self_attn.out_proj."},
      {"layernorm_before.", "layer_norm1."},
      {"layernorm_after.", "layer_norm2."},
      {"intermediate.dense.", "mlp.fc1."},
      {"output.dense.", "mlp.fc2."},
  };
  return k;
}

// Top-level HF names (after the optional model prefix) <-> internal names.
const std::vector<std::pair<std::string, std::string>>& top_names() {
  static const std::vector<std::pair<std::string, std::string>> k = {
      {"embeddings.cls_token", "cls_token"},
      {"embeddings.distillation_token", "distillation_token"},
      {"embeddings.position_embeddings", "position_embeddings"},
      {"embeddings.patch_embeddings.projection.", "patch_embedding."},
      {"layernorm.", "layer_norm."},
  };
  return k;
}

// Rewrites the first matching prefix (from -> to); returns whether one matched.
bool map_prefix(std::string* n, const std::vector<std::pair<std::string, std::string>>& table, bool reverse) {
  for (const auto& [hf, internal] : table) {
    const std::string& from = reverse ? internal : hf;
    const std::string& to = reverse ? hf : internal;
    if (n->starts_with(from)) {
      *n = to + n->substr(from.size());
      return true;
    }
  }
  return false;
}

// The fields ASTFeatureExtractor and our normalised config share, each optional: a present
// field must have the right type (and std > 0, numbers finite).
void read_feature_extractor(const json& f, const std::string& ctx, AstConfig::FeatureExtractor* out,
                            std::vector<std::string>* problems) {
  if (f.contains("sampling_rate")) {
    const json& v = f["sampling_rate"];
    if (!v.is_number_integer() || v.get<int64_t>() <= 0)
      problems->push_back(ctx + "'sampling_rate' must be a positive integer, found " + v.dump());
    else
      out->sampling_rate = v.get<int64_t>();
  }
  for (auto [key, field] : {std::pair{"mean", &out->mean}, std::pair{"std", &out->std}}) {
    if (!f.contains(key)) continue;
    const json& v = f[key];
    if (!v.is_number() || !std::isfinite(v.get<double>()) || (field == &out->std && v.get<double>() <= 0))
      problems->push_back(ctx + "'" + key + "' must be a finite number" + (field == &out->std ? " > 0" : "") +
                          ", found " + v.dump());
    else
      *field = v.get<double>();
  }
  if (f.contains("do_normalize")) {
    if (!f["do_normalize"].is_boolean())
      problems->push_back(ctx + "'do_normalize' must be true or false, found " + f["do_normalize"].dump());
    else
      out->do_normalize = f["do_normalize"].get<bool>();
  }
}

EncoderStackSpec stack_spec(const AstConfig& c) {
  EncoderStackSpec s;
  s.layers = c.num_hidden_layers;
  s.hidden = c.hidden_size;
  s.intermediate = c.intermediate_size;
  s.heads = c.num_attention_heads;
  s.eps = c.layer_norm_eps;
  s.k_bias = c.qkv_bias;
  return s;
}

}  // namespace

AstConfig AstConfig::from_json(const json& j, const std::string& where) {
  M4_CHECK(j.is_object(), ErrorCode::kBadInput, where, ": config must be a JSON object");
  std::vector<std::string> problems;
  AstConfig c;
  auto get_int = [&](const char* key, int64_t* out, bool required) {
    if (!j.contains(key) || j[key].is_null()) {
      if (required) problems.push_back(std::string("missing field '") + key + "'");
    } else if (!j[key].is_number_integer()) {
      problems.push_back(std::string("field '") + key + "' must be an integer, found " + j[key].dump());
    } else {
      *out = j[key].get<int64_t>();
      if (*out <= 0) problems.push_back(std::string("field '") + key + "' must be positive, found " + j[key].dump());
    }
  };
  get_int("hidden_size", &c.hidden_size, true);
  get_int("num_hidden_layers", &c.num_hidden_layers, true);
  get_int("num_attention_heads", &c.num_attention_heads, true);
  get_int("intermediate_size", &c.intermediate_size, true);
  get_int("num_mel_bins", &c.num_mel_bins, true);
  get_int("max_length", &c.max_length, true);
  get_int("patch_size", &c.patch_size, false);
  get_int("frequency_stride", &c.frequency_stride, false);
  get_int("time_stride", &c.time_stride, false);
  if (j.contains("layer_norm_eps") && !j["layer_norm_eps"].is_null()) {
    if (!j["layer_norm_eps"].is_number() || j["layer_norm_eps"].get<double>() <= 0)
      problems.push_back("field 'layer_norm_eps' must be a positive number, found " + j["layer_norm_eps"].dump());
    else
      c.layer_norm_eps = j["layer_norm_eps"].get<double>();
  }
  if (j.contains("qkv_bias") && !j["qkv_bias"].is_null()) {
    if (!j["qkv_bias"].is_boolean())
      problems.push_back("field 'qkv_bias' must be true or false, found " + j["qkv_bias"].dump());
    else
      c.qkv_bias = j["qkv_bias"].get<bool>();
  }
  if (j.contains("hidden_act") && !j["hidden_act"].is_null()) {
    if (!j["hidden_act"].is_string()) {
      problems.push_back("field 'hidden_act' must be a string, found " + j["hidden_act"].dump());
    } else {
      c.hidden_act = j["hidden_act"].get<std::string>();
      try {
        activation_from_name(c.hidden_act, "field 'hidden_act'");
      } catch (const Error& e) {
        problems.push_back(e.what());
      }
    }
  }
  if (j.contains("feature_extractor") && !j["feature_extractor"].is_null()) {
    const json& f = j["feature_extractor"];
    if (!f.is_object()) {
      problems.push_back("field 'feature_extractor' must be an object, found " + f.dump());
    } else {
      for (auto it = f.begin(); it != f.end(); ++it) {
        if (it.key() != "sampling_rate" && it.key() != "mean" && it.key() != "std" && it.key() != "do_normalize")
          problems.push_back("feature_extractor: unknown field '" + it.key() +
                             "' (known: sampling_rate, mean, std, do_normalize)");
      }
      read_feature_extractor(f, "feature_extractor: ", &c.feature_extractor, &problems);
    }
  }
  if (problems.empty()) {
    if (c.hidden_size % c.num_attention_heads != 0)
      problems.push_back("hidden_size " + std::to_string(c.hidden_size) + " is not divisible by num_attention_heads " +
                         std::to_string(c.num_attention_heads));
    if (c.patch_size > c.num_mel_bins)
      problems.push_back("patch_size " + std::to_string(c.patch_size) + " exceeds num_mel_bins " +
                         std::to_string(c.num_mel_bins));
    if (c.patch_size > c.max_length)
      problems.push_back("patch_size " + std::to_string(c.patch_size) + " exceeds max_length " +
                         std::to_string(c.max_length));
  }
  check_problems(problems, where);
  return c;
}

AstConfig AstConfig::from_file(const std::filesystem::path& config_json) {
  return from_json(read_json_file(config_json), config_json.string());
}

json AstConfig::to_json() const {
  return {{"hidden_size", hidden_size},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"intermediate_size", intermediate_size},
          {"num_mel_bins", num_mel_bins},
          {"max_length", max_length},
          {"patch_size", patch_size},
          {"frequency_stride", frequency_stride},
          {"time_stride", time_stride},
          {"layer_norm_eps", layer_norm_eps},
          {"hidden_act", hidden_act},
          {"qkv_bias", qkv_bias},
          {"feature_extractor",
           {{"sampling_rate", feature_extractor.sampling_rate},
            {"mean", feature_extractor.mean},
            {"std", feature_extractor.std},
            {"do_normalize", feature_extractor.do_normalize}}}};
}

AstConfig AstConfig::with_preprocessor(const json& p, const std::string& where) const {
  M4_CHECK(p.is_object(), ErrorCode::kBadInput, where, ": must be a JSON object");
  std::vector<std::string> problems;
  if (p.contains("feature_extractor_type") && p["feature_extractor_type"] != "ASTFeatureExtractor")
    problems.push_back("feature_extractor_type is " + p["feature_extractor_type"].dump() +
                       ", not \"ASTFeatureExtractor\" (hint: a preprocessor of another model)");
  // HF's ASTFeatureExtractor defaults for what the file leaves out.
  auto int_or = [&](const char* key, int64_t fallback) -> int64_t {
    if (!p.contains(key)) return fallback;
    if (!p[key].is_number_integer()) {
      problems.push_back(std::string("'") + key + "' must be an integer, found " + p[key].dump());
      return fallback;
    }
    return p[key].get<int64_t>();
  };
  const int64_t bins = int_or("num_mel_bins", 128), frames = int_or("max_length", 1024);
  if (bins != num_mel_bins)
    problems.push_back("num_mel_bins " + std::to_string(bins) + " but the model's config.json has " +
                       std::to_string(num_mel_bins));
  if (frames != max_length)
    problems.push_back("max_length " + std::to_string(frames) + " frames but the model's config.json has " +
                       std::to_string(max_length) + " (its position embeddings)");
  AstConfig c = *this;
  c.feature_extractor = FeatureExtractor{};
  read_feature_extractor(p, "", &c.feature_extractor, &problems);
  if (c.feature_extractor.sampling_rate != 16000)
    problems.push_back("sampling_rate " + std::to_string(c.feature_extractor.sampling_rate) +
                       " Hz: m4forge feeds encoders 16000 Hz audio");
  check_problems(problems, where);
  return c;
}

AstFeatureOptions AstConfig::feature_options() const {
  AstFeatureOptions o;
  o.sampling_rate = feature_extractor.sampling_rate;
  o.num_mel_bins = num_mel_bins;
  o.max_length = max_length;
  o.mean = feature_extractor.mean;
  o.std = feature_extractor.std;
  o.do_normalize = feature_extractor.do_normalize;
  return o;
}

std::string AstConfig::summary() const {
  std::ostringstream os;
  os << "hidden " << hidden_size << ", " << num_hidden_layers << " layers, " << num_attention_heads
     << " heads, intermediate " << intermediate_size << ", " << num_mel_bins << " mel x " << max_length
     << " frames, patch " << patch_size << " stride " << frequency_stride << "/" << time_stride << " (" << num_patches()
     << " patches); fbank " << feature_extractor.sampling_rate << " Hz";
  if (feature_extractor.do_normalize)
    os << std::setprecision(8) << ", mean " << feature_extractor.mean << " std " << feature_extractor.std;
  return os.str();
}

AstPatchEmbeddingImpl::AstPatchEmbeddingImpl(at::Tensor w, at::Tensor b, int64_t fs, int64_t ts)
    : frequency_stride(fs), time_stride(ts) {
  weight = register_parameter("weight", std::move(w), false);
  bias = register_parameter("bias", std::move(b), false);
}

at::Tensor AstPatchEmbeddingImpl::forward(const at::Tensor& x) {
  // (B, time, mel) -> (B, 1, mel, time) -> conv (B, C, Fp, Tp) -> (B, Fp*Tp, C)
  at::Tensor img = x.unsqueeze(1).transpose(2, 3);
  return at::conv2d(img, weight, bias, {frequency_stride, time_stride}).flatten(2).transpose(1, 2);
}

std::string AstImpl::internal_name(const std::string& stored) {
  std::string n = stored;
  if (n.starts_with("audio_spectrogram_transformer.")) n = n.substr(30);
  if (n.starts_with("classifier.")) return "";  // ASTForAudioClassification's head
  if (n.starts_with("encoder.layer.")) {
    n = n.substr(14);  // "{i}.rest"
    const size_t dot = n.find('.');
    if (dot == std::string::npos) return stored;
    std::string rest = n.substr(dot + 1);
    if (!map_prefix(&rest, layer_names(), false)) return stored;
    return "layers." + n.substr(0, dot) + "." + rest;
  }
  map_prefix(&n, top_names(), false);
  return n;
}

std::map<std::string, std::vector<int64_t>> AstImpl::expected_shapes(const AstConfig& c) {
  std::map<std::string, std::vector<int64_t>> m;
  const int64_t C = c.hidden_size, P = c.patch_size;
  m["cls_token"] = {1, 1, C};
  m["distillation_token"] = {1, 1, C};
  m["position_embeddings"] = {1, c.num_patches() + 2, C};
  m["patch_embedding.weight"] = {C, 1, P, P};
  m["patch_embedding.bias"] = {C};
  m["layer_norm.weight"] = {C};
  m["layer_norm.bias"] = {C};
  add_encoder_stack_shapes(stack_spec(c), &m);
  if (!c.qkv_bias) {
    // The shared stack only knows a bias-less key; HF's qkv_bias drops all three.
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = "layers." + std::to_string(i) + ".self_attn.";
      m.erase(p + "q_proj.bias");
      m.erase(p + "v_proj.bias");
    }
  }
  return m;
}

std::map<std::string, std::string> AstImpl::validate(const AstConfig& c, const WeightSet& w, const std::string& where) {
  bool prefixed = false;
  for (const auto& n : w.names()) prefixed = prefixed || n.starts_with("audio_spectrogram_transformer.");
  auto spelled = [&](const std::string& internal) {
    return (prefixed ? "audio_spectrogram_transformer." : "") + stored_name(internal);
  };
  return validate_weights(expected_shapes(c), w, internal_name, spelled, where, c.summary(), encoder_layer_quantizable);
}

std::string AstImpl::stored_name(const std::string& internal) {
  std::string n = internal;
  if (n.starts_with("layers.")) {
    n = n.substr(7);
    const size_t dot = n.find('.');
    std::string rest = n.substr(dot + 1);
    map_prefix(&rest, layer_names(), true);
    return "encoder.layer." + n.substr(0, dot) + "." + rest;
  }
  map_prefix(&n, top_names(), true);
  return n;
}

AstImpl::AstImpl(const AstConfig& c, const WeightSet& w, const std::string& where, at::ScalarType dtype)
    : config_(c), dtype_(dtype) {
  M4_CHECK(at::isFloatingType(dtype_), ErrorCode::kInvalidArgument, "aud_b_enc dtype must be floating");
  const std::map<std::string, std::string> by_internal = validate(c, w, where);
  auto get = [&](const std::string& name) -> at::Tensor {
    auto it = by_internal.find(name);
    if (it == by_internal.end()) return at::Tensor();  // q/v biases when !qkv_bias
    at::Tensor t = w.tensor(it->second);
    return t.scalar_type() == dtype_ ? t : t.to(dtype_);
  };
  cls_token = register_parameter("cls_token", get("cls_token"), false);
  distillation_token = register_parameter("distillation_token", get("distillation_token"), false);
  position_embeddings = register_parameter("position_embeddings", get("position_embeddings"), false);
  patch_embedding = register_module(
      "patch_embedding",
      AstPatchEmbedding(get("patch_embedding.weight"), get("patch_embedding.bias"), c.frequency_stride, c.time_stride));
  EncoderStackSpec s = stack_spec(c);
  s.act = activation_from_name(c.hidden_act, where);
  layers = register_module("layers", torch::nn::ModuleList());
  layer_list_ = build_encoder_stack(s, get, w, by_internal);
  for (const auto& l : layer_list_) layers->push_back(l);
  layer_norm =
      register_module("layer_norm", LayerNorm(get("layer_norm.weight"), get("layer_norm.bias"), c.layer_norm_eps));
}

EncoderOutput AstImpl::forward(const at::Tensor& input_values, bool hidden_states) {
  const auto& c = config_;
  M4_CHECK(input_values.defined() && input_values.dim() == 3, ErrorCode::kInvalidArgument,
           "aud_b_enc: input_values must be (batch, ", c.max_length, " frames, ", c.num_mel_bins, " mel bins), found ",
           input_values.defined() ? shape_str(input_values.sizes()) : "none");
  M4_CHECK(at::isFloatingType(input_values.scalar_type()), ErrorCode::kInvalidArgument,
           "aud_b_enc: input_values must be floating, found ", c10::toString(input_values.scalar_type()));
  M4_CHECK(input_values.size(2) == c.num_mel_bins, ErrorCode::kInvalidArgument, "aud_b_enc: expected ", c.num_mel_bins,
           " mel bins (last dim), found ", input_values.size(2), " (input_values ", shape_str(input_values.sizes()),
           ")");
  M4_CHECK(input_values.size(1) == c.max_length, ErrorCode::kInvalidArgument, "aud_b_enc: expected ", c.max_length,
           " frames (max_length), found ", input_values.size(1), " (input_values ", shape_str(input_values.sizes()),
           "; hint: pad or trim the fbank to ", c.max_length, " frames)");
  const int64_t B = input_values.size(0), C = c.hidden_size;
  // (B, time, mel) -> patches (B, N, C) -> with tokens (B, 2 + N, C)
  at::Tensor x = patch_embedding(input_values.to(dtype_));
  x = at::cat({cls_token.expand({B, 1, C}), distillation_token.expand({B, 1, C}), x}, 1) + position_embeddings;
  EncoderOutput out;
  for (auto& layer : layer_list_) {
    if (hidden_states) out.hidden_states.push_back(x);
    x = layer->forward(x, at::Tensor());
  }
  if (hidden_states) out.hidden_states.push_back(x);
  out.last_hidden_state = layer_norm(x);
  // (B, C): mean of the class and distillation tokens
  out.pooler_output = (out.last_hidden_state.select(1, 0) + out.last_hidden_state.select(1, 1)) / 2;
  return out;
}

}  // namespace m4
