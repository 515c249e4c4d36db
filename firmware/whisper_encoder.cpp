// Whisper encoder matching HF transformers' WhisperEncoder (see whisper_encoder.h).
#include "firmware/whisper_encoder.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_file.h"
#include "firmware/weight_set.h"

namespace m4 {
namespace {

using json = nlohmann::json;

// HF's WhisperEncoderLayer / WhisperEncoder use nn.LayerNorm's default eps.
constexpr double kLayerNormEps = 1e-5;


// HF per-layer parts -> internal parts (inside "layers.{i}."); the attention
// projections keep their names.
const std::vector<std::pair<std::string, std::string>>& layer_parts() {
  static const std::vector<std::pair<std::string, std::string>> k = {
      {".self_attn_layer_norm.", ".layer_norm1."},
      {".final_layer_norm.", ".layer_norm2."},
      {".fc1.", ".mlp.fc1."},
      {".fc2.", ".mlp.fc2."},
  };
  return k;
}

// Rewrites the first matching part of a layer tensor name (HF -> internal, or back).
std::string map_layer_part(std::string n, bool reverse) {
  for (const auto& [hf, internal] : layer_parts()) {
    const std::string& from = reverse ? internal : hf;
    const size_t at = n.find(from);
    if (at != std::string::npos) return n.replace(at, from.size(), reverse ? hf : internal);
  }
  return n;
}

EncoderStackSpec stack_spec(const WhisperEncoderConfig& c) {
  EncoderStackSpec s;
  s.layers = c.encoder_layers;
  s.hidden = c.d_model;
  s.intermediate = c.encoder_ffn_dim;
  s.heads = c.encoder_attention_heads;
  s.eps = kLayerNormEps;
  s.k_bias = false;  // Whisper's k_proj has no bias
  return s;
}

}  // namespace

WhisperEncoderConfig WhisperEncoderConfig::from_json(const json& j, const std::string& where) {
  M4_CHECK(j.is_object(), ErrorCode::kBadInput, where, ": config must be a JSON object");
  std::vector<std::string> problems;
  WhisperEncoderConfig c;
  auto get_int = [&](const char* key, int64_t* out) {
    if (!j.contains(key) || j[key].is_null()) {
      problems.push_back(std::string("missing field '") + key + "'");
    } else if (!j[key].is_number_integer()) {
      problems.push_back(std::string("field '") + key + "' must be an integer, found " + j[key].dump());
    } else {
      *out = j[key].get<int64_t>();
      if (*out <= 0) problems.push_back(std::string("field '") + key + "' must be positive, found " + j[key].dump());
    }
  };
  get_int("d_model", &c.d_model);
  get_int("encoder_layers", &c.encoder_layers);
  get_int("encoder_attention_heads", &c.encoder_attention_heads);
  get_int("encoder_ffn_dim", &c.encoder_ffn_dim);
  get_int("num_mel_bins", &c.num_mel_bins);
  get_int("max_source_positions", &c.max_source_positions);
  if (j.contains("activation_function") && !j["activation_function"].is_null()) {
    if (!j["activation_function"].is_string()) {
      problems.push_back("field 'activation_function' must be a string, found " + j["activation_function"].dump());
    } else {
      c.activation_function = j["activation_function"].get<std::string>();
      try {
        activation_from_name(c.activation_function, "field 'activation_function'");
      } catch (const Error& e) {
        problems.push_back(e.what());
      }
    }
  }
  if (c.d_model > 0 && c.encoder_attention_heads > 0 && c.d_model % c.encoder_attention_heads != 0) {
    problems.push_back("d_model " + std::to_string(c.d_model) + " is not divisible by encoder_attention_heads " +
                       std::to_string(c.encoder_attention_heads));
  }
  check_problems(problems, where);
  return c;
}

WhisperEncoderConfig WhisperEncoderConfig::from_file(const std::filesystem::path& config_json) {
  return from_json(read_json_file(config_json), config_json.string());
}

json WhisperEncoderConfig::to_json() const {
  return {{"d_model", d_model},
          {"encoder_layers", encoder_layers},
          {"encoder_attention_heads", encoder_attention_heads},
          {"encoder_ffn_dim", encoder_ffn_dim},
          {"num_mel_bins", num_mel_bins},
          {"max_source_positions", max_source_positions},
          {"activation_function", activation_function}};
}

std::string WhisperEncoderConfig::summary() const {
  std::ostringstream os;
  os << "d_model " << d_model << ", " << encoder_layers << " layers, " << encoder_attention_heads << " heads, ffn "
     << encoder_ffn_dim << ", " << num_mel_bins << " mel bins, " << max_source_positions << " positions";
  return os.str();
}

WhisperConv1dImpl::WhisperConv1dImpl(at::Tensor w, at::Tensor b, int64_t s, int64_t p) : stride(s), padding(p) {
  weight = register_parameter("weight", std::move(w), false);
  bias = register_parameter("bias", std::move(b), false);
}

at::Tensor WhisperConv1dImpl::forward(const at::Tensor& x) { return at::conv1d(x, weight, bias, {stride}, {padding}); }

std::string WhisperEncoderImpl::internal_name(const std::string& stored) {
  std::string n = stored;
  if (n.starts_with("model.")) n = n.substr(6);
  if (!n.starts_with("encoder.")) return "";  // decoder, proj_out, ...: not ours
  n = n.substr(8);
  return n.starts_with("layers.") ? map_layer_part(n, false) : n;
}

std::map<std::string, std::vector<int64_t>> WhisperEncoderImpl::expected_shapes(const WhisperEncoderConfig& c) {
  std::map<std::string, std::vector<int64_t>> m;
  const int64_t C = c.d_model;
  m["conv1.weight"] = {C, c.num_mel_bins, 3};
  m["conv1.bias"] = {C};
  m["conv2.weight"] = {C, C, 3};
  m["conv2.bias"] = {C};
  m["embed_positions.weight"] = {c.max_source_positions, C};
  m["layer_norm.weight"] = {C};
  m["layer_norm.bias"] = {C};
  add_encoder_stack_shapes(stack_spec(c), &m);
  return m;
}

std::map<std::string, std::string> WhisperEncoderImpl::validate(const WhisperEncoderConfig& c, const WeightSet& w,
                                                                const std::string& where) {
  // Name missing tensors the way this file spells the others.
  bool bare = false;
  for (const auto& n : w.names()) {
    if (n.starts_with("model.encoder.")) {
      bare = false;
      break;
    }
    if (n.starts_with("encoder.")) bare = true;
  }
  auto spelled = [&](const std::string& internal) {
    const std::string n = stored_name(internal);
    return bare ? n.substr(6) : n;  // drop "model."
  };
  return validate_weights(expected_shapes(c), w, internal_name, spelled, where, c.summary(), encoder_layer_quantizable);
}

std::string WhisperEncoderImpl::stored_name(const std::string& internal) {
  return "model.encoder." + (internal.starts_with("layers.") ? map_layer_part(internal, true) : internal);
}

WhisperEncoderImpl::WhisperEncoderImpl(const WhisperEncoderConfig& c, const WeightSet& w, const std::string& where,
                                       at::ScalarType dtype)
    : config_(c), dtype_(dtype) {
  M4_CHECK(at::isFloatingType(dtype_), ErrorCode::kInvalidArgument, "aud_i_enc dtype must be floating");
  const std::map<std::string, std::string> by_internal = validate(c, w, where);
  auto get = [&](const std::string& name) -> at::Tensor {
    at::Tensor t = w.tensor(by_internal.at(name));
    return t.scalar_type() == dtype_ ? t : t.to(dtype_);
  };
  conv1 = register_module("conv1", WhisperConv1d(get("conv1.weight"), get("conv1.bias"), 1, 1));
  conv2 = register_module("conv2", WhisperConv1d(get("conv2.weight"), get("conv2.bias"), 2, 1));
  embed_positions = register_module("embed_positions", Embedding(get("embed_positions.weight")));
  EncoderStackSpec s = stack_spec(c);
  s.act = activation_from_name(c.activation_function, where);
  layers = register_module("layers", torch::nn::ModuleList());
  layer_list_ = build_encoder_stack(s, get, w, by_internal);
  for (const auto& l : layer_list_) layers->push_back(l);
  layer_norm =
      register_module("layer_norm", LayerNorm(get("layer_norm.weight"), get("layer_norm.bias"), kLayerNormEps));
}

EncoderOutput WhisperEncoderImpl::forward(const at::Tensor& input_features, bool hidden_states) {
  const auto& c = config_;
  M4_CHECK(input_features.defined() && input_features.dim() == 3, ErrorCode::kInvalidArgument,
           "aud_i_enc: input_features must be (batch, ", c.num_mel_bins, " mel bins, ", c.frames(), " frames), found ",
           input_features.defined() ? shape_str(input_features.sizes()) : "none");
  M4_CHECK(at::isFloatingType(input_features.scalar_type()), ErrorCode::kInvalidArgument,
           "aud_i_enc: input_features must be floating, found ", c10::toString(input_features.scalar_type()));
  M4_CHECK(input_features.size(1) == c.num_mel_bins, ErrorCode::kInvalidArgument, "aud_i_enc: expected ",
           c.num_mel_bins, " mel bins, found ", input_features.size(1), " (input_features ",
           shape_str(input_features.sizes()), ")");
  // As HF: the positions table is fixed, so the input length is too (Whisper pads
  // every clip to 30 s).
  M4_CHECK(input_features.size(2) == c.frames(), ErrorCode::kInvalidArgument, "aud_i_enc: expected ", c.frames(),
           " input frames (2 x max_source_positions ", c.max_source_positions, "), found ", input_features.size(2),
           " (hint: pad or trim the log-mel to ", c.frames(), " frames)");
  // x: (B, mel, 2P) -> conv1 (B, C, 2P) -> conv2 (B, C, P) -> (B, P, C)
  at::Tensor x = input_features.to(dtype_);
  x = at::gelu(conv1(x));
  x = at::gelu(conv2(x));
  x = x.permute({0, 2, 1}) + embed_positions->weight;
  EncoderOutput out;
  for (auto& layer : layer_list_) {
    if (hidden_states) out.hidden_states.push_back(x);
    x = layer->forward(x, at::Tensor());
  }
  x = layer_norm(x);
  if (hidden_states) out.hidden_states.push_back(x);
  out.last_hidden_state = x;
  return out;
}

}  // namespace m4
