// Shared pre-norm transformer encoder layer (CLIP / Whisper / AST / IMU).
#include "firmware/transformer_encoder.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "core/json_file.h"
#include "core/onednn_gemm.h"
#include "core/safetensors.h"
#include "firmware/quantized_weight.h"
#include "firmware/weight_set.h"

namespace m4 {
namespace {

std::string join_limited(const std::vector<std::string>& v, size_t limit = 12) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < limit; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > limit) s += ", ... (" + std::to_string(v.size() - limit) + " more)";
  return s;
}

}  // namespace

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

double mask_fill_value(at::ScalarType t) {
  switch (t) {
    case at::kDouble: return std::numeric_limits<double>::lowest();
    case at::kHalf: return -65504.0;
    case at::kBFloat16: return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
    default: return static_cast<double>(std::numeric_limits<float>::lowest());
  }
}

Activation activation_from_name(const std::string& name, const std::string& where) {
  if (name == "gelu") return Activation::kGelu;
  if (name == "quick_gelu") return Activation::kQuickGelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return Activation::kGeluTanh;
  M4_FAIL(ErrorCode::kBadInput, where, ": activation '", name,
          "' is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, quick_gelu)");
}

at::Tensor apply_activation(Activation a, const at::Tensor& x) {
  switch (a) {
    case Activation::kGelu: return at::gelu(x);
    case Activation::kGeluTanh: return at::gelu(x, "tanh");
    case Activation::kQuickGelu: return x * at::sigmoid(1.702 * x);
  }
  return x;
}

LayerNormImpl::LayerNormImpl(at::Tensor w, at::Tensor b, double e) : eps(e) {
  weight = register_parameter("weight", std::move(w), false);
  bias = register_parameter("bias", std::move(b), false);
}

at::Tensor LayerNormImpl::forward(const at::Tensor& x) {
  return at::layer_norm(x, {weight.size(0)}, weight, bias, eps);
}

EncoderAttentionImpl::EncoderAttentionImpl(Linear q, Linear k, Linear v, Linear out, int64_t h)
    : q_proj(register_module("q_proj", q)),
      k_proj(register_module("k_proj", k)),
      v_proj(register_module("v_proj", v)),
      out_proj(register_module("out_proj", out)),
      heads(h) {}

at::Tensor EncoderAttentionImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  const int64_t B = x.size(0), T = x.size(1), C = q_proj->out_features(), D = C / heads;
  // (B, T, C) -> (B, H, T, D); scores (B, H, T, T)
  at::Tensor q = q_proj(x).view({B, T, heads, D}).transpose(1, 2);
  at::Tensor k = k_proj(x).view({B, T, heads, D}).transpose(1, 2);
  at::Tensor v = v_proj(x).view({B, T, heads, D}).transpose(1, 2);
  at::Tensor m = mask;
  if (prefix) {
    auto [pk, pv] = prefix->key_value();  // (H, P, D) each
    const int64_t P = pk.size(1);
    k = at::cat({pk.to(k.scalar_type()).unsqueeze(0).expand({B, heads, P, D}), k}, 2);
    v = at::cat({pv.to(v.scalar_type()).unsqueeze(0).expand({B, heads, P, D}), v}, 2);
    if (m.defined()) m = at::constant_pad_nd(m, {P, 0}, 0);  // prefix columns: always visible
  }
  // differentiable_gemm: in oneDNN for f32 (core/onednn_gemm.h).
  at::Tensor scores = differentiable_gemm(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(D));
  if (m.defined()) scores = scores + m;
  at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
  return out_proj(differentiable_gemm(probs, v).transpose(1, 2).reshape({B, T, C}));
}

EncoderMLPImpl::EncoderMLPImpl(Linear f1, Linear f2, Activation a)
    : fc1(register_module("fc1", f1)), fc2(register_module("fc2", f2)), act(a) {}

EncoderLayerImpl::EncoderLayerImpl(LayerNorm ln1, EncoderAttention attn, LayerNorm ln2, EncoderMLP m)
    : layer_norm1(register_module("layer_norm1", ln1)),
      self_attn(register_module("self_attn", attn)),
      layer_norm2(register_module("layer_norm2", ln2)),
      mlp(register_module("mlp", m)) {}

at::Tensor EncoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  at::Tensor h = x + self_attn(layer_norm1(x), mask);
  return h + mlp(layer_norm2(h));
}

void add_encoder_stack_shapes(const EncoderStackSpec& s, std::map<std::string, std::vector<int64_t>>* m) {
  const int64_t C = s.hidden, I = s.intermediate;
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    for (const char* ln : {"layer_norm1", "layer_norm2"}) {
      (*m)[p + ln + ".weight"] = {C};
      (*m)[p + ln + ".bias"] = {C};
    }
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      (*m)[p + "self_attn." + proj + ".weight"] = {C, C};
      if (std::string(proj) != "k_proj" || s.k_bias) (*m)[p + "self_attn." + proj + ".bias"] = {C};
    }
    (*m)[p + "mlp.fc1.weight"] = {I, C};
    (*m)[p + "mlp.fc1.bias"] = {I};
    (*m)[p + "mlp.fc2.weight"] = {C, I};
    (*m)[p + "mlp.fc2.bias"] = {C};
  }
}

bool encoder_layer_quantizable(const std::string& internal) {
  return internal.starts_with("layers.") &&
         (internal.ends_with("_proj.weight") || internal.ends_with(".mlp.fc1.weight") || internal.ends_with(".mlp.fc2.weight"));
}

Linear load_linear(const std::string& prefix, bool bias, const std::function<at::Tensor(const std::string&)>& get,
                   const WeightSet& weights, const std::map<std::string, std::string>& by_internal) {
  const at::Tensor b = bias ? get(prefix + ".bias") : at::Tensor();
  const auto scale = by_internal.find(prefix + ".weight" + quantkeys::kScaleSuffix);
  if (scale == by_internal.end()) return Linear(get(prefix + ".weight"), b);
  return Linear(QuantizedWeight{weights.tensor(by_internal.at(prefix + ".weight")), weights.tensor(scale->second)}, b);
}

std::vector<EncoderLayer> build_encoder_stack(const EncoderStackSpec& s,
                                              const std::function<at::Tensor(const std::string&)>& get,
                                              const WeightSet& weights, const std::map<std::string, std::string>& by_internal) {
  std::vector<EncoderLayer> out;
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    auto lin = [&](const std::string& n, bool bias) { return load_linear(p + n, bias, get, weights, by_internal); };
    auto ln = [&](const std::string& n) { return LayerNorm(get(p + n + ".weight"), get(p + n + ".bias"), s.eps); };
    EncoderAttention attn(lin("self_attn.q_proj", true), lin("self_attn.k_proj", s.k_bias),
                          lin("self_attn.v_proj", true), lin("self_attn.out_proj", true), s.heads);
    out.emplace_back(ln("layer_norm1"), attn, ln("layer_norm2"),
                     EncoderMLP(lin("mlp.fc1", true), lin("mlp.fc2", true), s.act));
  }
  return out;
}

std::map<std::string, std::string> validate_weights(
    const std::map<std::string, std::vector<int64_t>>& expected, const WeightSet& weights,
    const std::function<std::string(const std::string&)>& to_internal,
    const std::function<std::string(const std::string&)>& stored_name, const std::string& where,
    const std::string& config_summary,
    const std::function<bool(const std::string&)>& quantized_ok) {
  std::map<std::string, std::string> by_internal;
  std::vector<std::string> unexpected, missing, problems;
  for (const auto& stored : weights.names()) {
    if (!quantized_weight_of_scale(weights, stored).empty()) continue;  // checked with its weight
    const std::string name = to_internal(stored);
    if (name.empty()) continue;  // known and ignored
    if (expected.count(name) == 0) {
      unexpected.push_back(stored);
      continue;
    }
    by_internal[name] = stored;
  }
  for (const auto& [name, shape] : expected) {
    auto it = by_internal.find(name);
    if (it == by_internal.end()) {
      missing.push_back(stored_name(name));
      continue;
    }
    const TensorInfo& info = weights.info(it->second);
    if (is_quantized_weight(weights, it->second)) {
      const std::string scale = quant_scale_name(it->second);
      if (!quantized_ok || !quantized_ok(name)) {
        problems.push_back("tensor '" + it->second + "' is quantized (" + scale +
                           "), but only the layers' projection weights load quantized");
        continue;
      }
      const std::string p = quantized_layout_problem(info, weights.info(scale), shape);
      if (!p.empty()) problems.push_back(p);
      by_internal[name + quantkeys::kScaleSuffix] = scale;
      continue;
    }
    if (info.shape != shape) {
      problems.push_back("tensor '" + it->second + "' has shape " + shape_str(info.shape) + " but the config (" +
                         config_summary + ") implies " + shape_str(shape));
    }
    if (info.dtype != DType::kF32 && info.dtype != DType::kF16 && info.dtype != DType::kBF16 &&
        info.dtype != DType::kF64) {
      problems.push_back("tensor '" + it->second + "' has dtype " + dtype_name(info.dtype) +
                         "; weights must be F32, F16, BF16 or F64");
    }
  }
  if (!missing.empty()) problems.insert(problems.begin(), "missing tensors: " + join_limited(missing));
  if (!unexpected.empty()) problems.push_back("unexpected tensors: " + join_limited(unexpected));
  if (!problems.empty()) {
    problems.push_back("hint: config.json and the weights must come from the same checkpoint");
    check_problems(problems, where, ErrorCode::kMismatch);
  }
  return by_internal;
}

}  // namespace m4
