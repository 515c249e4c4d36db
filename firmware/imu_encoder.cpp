// ImageBind-style IMU encoder with m4forge's own tensor naming (see the header).
#include "firmware/imu_encoder.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/json_file.h"
#include "firmware/weight_set.h"

namespace m4 {
using json = nlohmann::json;

ImuEncoderConfig ImuEncoderConfig::from_json(const json& j, const std::string& where) {
  M4_CHECK(j.is_object(), ErrorCode::kBadInput, where, ": IMU encoder config must be a JSON object");
  std::vector<std::string> problems;
  ImuEncoderConfig c;
  auto get_int = [&](const char* key, int64_t* out, bool required) {
    if (!j.contains(key)) {
      if (required) problems.push_back(std::string("missing field '") + key + "'");
      return;
    }
    if (!j[key].is_number_integer() || j[key].get<int64_t>() <= 0) {
      problems.push_back(std::string("field '") + key + "' must be a positive integer, found " + j[key].dump());
      return;
    }
    *out = j[key].get<int64_t>();
  };
  get_int("channels", &c.channels, false);
  get_int("window", &c.window, true);
  get_int("patch", &c.patch, false);
  get_int("hidden_size", &c.hidden_size, true);
  get_int("num_hidden_layers", &c.num_hidden_layers, true);
  get_int("num_attention_heads", &c.num_attention_heads, true);
  get_int("intermediate_size", &c.intermediate_size, true);
  get_int("projection_dim", &c.projection_dim, true);
  if (j.contains("layer_norm_eps")) {
    if (j["layer_norm_eps"].is_number() && j["layer_norm_eps"].get<double>() > 0) c.layer_norm_eps = j["layer_norm_eps"];
    else problems.push_back("field 'layer_norm_eps' must be a positive number");
  }
  if (j.contains("hidden_act")) {
    if (j["hidden_act"].is_string()) c.hidden_act = j["hidden_act"];
    else problems.push_back("field 'hidden_act' must be a string");
  }
  if (problems.empty()) {
    if (c.channels != 6) problems.push_back("channels must be 6 (3-axis accelerometer + 3-axis gyroscope)");
    if (c.window % c.patch != 0)
      problems.push_back("window " + std::to_string(c.window) + " is not a multiple of patch " + std::to_string(c.patch));
    if (c.hidden_size % c.num_attention_heads != 0)
      problems.push_back("hidden_size " + std::to_string(c.hidden_size) + " is not divisible by num_attention_heads " +
                         std::to_string(c.num_attention_heads));
  }
  check_problems(problems, where);
  activation_from_name(c.hidden_act, where);
  return c;
}

json ImuEncoderConfig::to_json() const {
  return {{"channels", channels},
          {"window", window},
          {"patch", patch},
          {"hidden_size", hidden_size},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"intermediate_size", intermediate_size},
          {"projection_dim", projection_dim},
          {"layer_norm_eps", layer_norm_eps},
          {"hidden_act", hidden_act}};
}

std::string ImuEncoderConfig::summary() const {
  std::ostringstream os;
  os << "window " << window << " x " << channels << ", patch " << patch << ", hidden " << hidden_size << ", "
     << num_hidden_layers << " layers, " << num_attention_heads << " heads, projection " << projection_dim;
  return os.str();
}

namespace {
EncoderStackSpec stack_spec(const ImuEncoderConfig& c) {
  EncoderStackSpec s;
  s.layers = c.num_hidden_layers;
  s.hidden = c.hidden_size;
  s.intermediate = c.intermediate_size;
  s.heads = c.num_attention_heads;
  s.eps = c.layer_norm_eps;
  s.act = activation_from_name(c.hidden_act, "imu_enc");
  return s;
}
}  // namespace

std::map<std::string, std::vector<int64_t>> ImuEncoderImpl::expected_shapes(const ImuEncoderConfig& c) {
  const int64_t C = c.hidden_size;
  std::map<std::string, std::vector<int64_t>> m = {
      {"patch_embed.proj.weight", {C, c.channels * c.patch}},
      {"patch_embed.norm.weight", {C}},
      {"patch_embed.norm.bias", {C}},
      {"cls_token", {1, 1, C}},
      {"pos_embed", {1, 1 + c.num_patches(), C}},
      {"head.norm.weight", {C}},
      {"head.norm.bias", {C}},
      {"head.proj.weight", {c.projection_dim, C}},
  };
  add_encoder_stack_shapes(stack_spec(c), &m);
  return m;
}

std::map<std::string, std::string> ImuEncoderImpl::validate(const ImuEncoderConfig& c, const WeightSet& w,
                                                            const std::string& where) {
  return validate_weights(expected_shapes(c), w, internal_name, stored_name, where, c.summary(), encoder_layer_quantizable);
}

ImuEncoderImpl::ImuEncoderImpl(const ImuEncoderConfig& c, const WeightSet& w, const std::string& where,
                               at::ScalarType dtype)
    : config_(c) {
  const auto by_internal = validate(c, w, where);
  auto get = [&](const std::string& n) {
    at::Tensor t = w.tensor(by_internal.at(n));
    return t.scalar_type() == dtype ? t : t.to(dtype);
  };
  // Submodules are registered under the checkpoint's own dotted names
  // (patch_embed.proj, head.norm, ...), so that every parameter path is a
  // firmware tensor name (adapters and bundles refer to them).
  auto patch_embed = register_module("patch_embed", std::make_shared<torch::nn::Module>());
  patch_proj = patch_embed->register_module("proj", Linear(get("patch_embed.proj.weight"), at::Tensor()));
  patch_norm = patch_embed->register_module(
      "norm", LayerNorm(get("patch_embed.norm.weight"), get("patch_embed.norm.bias"), c.layer_norm_eps));
  cls_token = register_parameter("cls_token", get("cls_token"), false);
  pos_embed = register_parameter("pos_embed", get("pos_embed"), false);
  layers = register_module("layers", torch::nn::ModuleList());
  layer_list_ = build_encoder_stack(stack_spec(c), get, w, by_internal);
  for (auto& l : layer_list_) layers->push_back(l);
  auto head = register_module("head", std::make_shared<torch::nn::Module>());
  head_norm = head->register_module("norm", LayerNorm(get("head.norm.weight"), get("head.norm.bias"), c.layer_norm_eps));
  head_proj = head->register_module("proj", Linear(get("head.proj.weight"), at::Tensor()));
}

EncoderOutput ImuEncoderImpl::forward(const at::Tensor& imu, bool hidden_states) {
  M4_CHECK(imu.dim() == 3 && imu.size(2) == config_.channels, ErrorCode::kInvalidArgument,
           "imu must be (batch, time, 6) [accelerometer xyz, gyroscope xyz], found ", shape_str(imu.sizes()));
  M4_CHECK(imu.size(1) == config_.window, ErrorCode::kInvalidArgument, "imu window has ", imu.size(1),
           " time steps but the IMU encoder takes windows of ", config_.window);
  M4_CHECK(at::isFloatingType(imu.scalar_type()), ErrorCode::kInvalidArgument, "imu must be floating point, found ",
           c10::toString(imu.scalar_type()));
  const int64_t B = imu.size(0), N = config_.num_patches(), P = config_.patch;
  // (B, T, 6) -> (B, 6, N, P) -> (B, N, 6, P) -> (B, N, 6*P): ImageBind's unfold order.
  at::Tensor x = imu.to(patch_proj->weight.scalar_type()).transpose(1, 2).reshape({B, config_.channels, N, P});
  x = x.permute({0, 2, 1, 3}).reshape({B, N, config_.channels * P});
  x = patch_norm(patch_proj(x));                                      // (B, N, C)
  x = at::cat({cls_token.expand({B, 1, x.size(2)}), x}, 1) + pos_embed;  // (B, 1+N, C)
  EncoderOutput out;
  for (auto& layer : layer_list_) {
    if (hidden_states) out.hidden_states.push_back(x);
    x = layer->forward(x, at::Tensor());
  }
  if (hidden_states) out.hidden_states.push_back(x);
  out.last_hidden_state = x;
  out.pooler_output = head_norm(x.select(1, 0));
  out.embeds = head_proj(out.pooler_output);
  return out;
}

}  // namespace m4
