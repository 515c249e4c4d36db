// The pre-norm transformer encoder layer that CLIP (vision and text), Whisper's
// encoder, AST (ViT) and the IMU encoder share, with one internal naming:
//   layers.{i}.layer_norm1, layers.{i}.self_attn.{q,k,v,out}_proj,
//   layers.{i}.layer_norm2, layers.{i}.mlp.{fc1,fc2}
// Each encoder maps its Hugging Face names onto these (see EncoderNames).
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "firmware/linear.h"

namespace m4 {

class WeightSet;

// What every encoder's forward returns (HF's names; undefined when the
// encoder has no such output).
struct EncoderOutput {
  at::Tensor last_hidden_state;           // (B, T, C)
  at::Tensor pooler_output;               // (B, C)
  at::Tensor embeds;                      // (B, P): pooled then projected (image_embeds, text_embeds)
  std::vector<at::Tensor> hidden_states;  // L+1 x (B, T, C), HF's convention per encoder
};

// The most negative finite value of a floating dtype: HF masks attention with
// it (not -inf) so that fully masked rows give a uniform softmax, not NaN.
double mask_fill_value(at::ScalarType t);

enum class Activation { kGelu, kGeluTanh, kQuickGelu };
// "gelu", "gelu_new"/"gelu_pytorch_tanh", "quick_gelu"; throws for others.
Activation activation_from_name(const std::string& name, const std::string& where);
at::Tensor apply_activation(Activation a, const at::Tensor& x);

class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(at::Tensor weight, at::Tensor bias, double eps);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight, bias;
  double eps;
};
TORCH_MODULE(LayerNorm);

class EncoderAttentionImpl : public torch::nn::Module {
 public:
  EncoderAttentionImpl(Linear q, Linear k, Linear v, Linear out, int64_t heads);
  // x: (B, T, C); mask: additive (B, 1, T, T) or (B, 1, 1, T), or undefined.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask);
  Linear q_proj, k_proj, v_proj, out_proj;
  int64_t heads;
  // Prefix tuning: keys/values every position attends to, before the real ones.
  std::shared_ptr<AttentionPrefix> prefix;
};
TORCH_MODULE(EncoderAttention);

class EncoderMLPImpl : public torch::nn::Module {
 public:
  EncoderMLPImpl(Linear fc1, Linear fc2, Activation act);
  at::Tensor forward(const at::Tensor& x) { return fc2(apply_activation(act, fc1(x))); }
  Linear fc1, fc2;
  Activation act;
};
TORCH_MODULE(EncoderMLP);

// x + attn(ln1(x)); then + mlp(ln2(.)).
class EncoderLayerImpl : public torch::nn::Module {
 public:
  EncoderLayerImpl(LayerNorm ln1, EncoderAttention attn, LayerNorm ln2, EncoderMLP mlp);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask);
  LayerNorm layer_norm1;
  EncoderAttention self_attn;
  LayerNorm layer_norm2;
  EncoderMLP mlp;
};
TORCH_MODULE(EncoderLayer);

struct EncoderStackSpec {
  int64_t layers = 0;
  int64_t hidden = 0;
  int64_t intermediate = 0;
  int64_t heads = 0;
  double eps = 1e-5;
  Activation act = Activation::kGelu;
  bool k_bias = true;  // Whisper's k_proj has no bias
};

// Expected internal tensor names -> shapes for a stack of encoder layers
// (prefix "layers.").
void add_encoder_stack_shapes(const EncoderStackSpec& s, std::map<std::string, std::vector<int64_t>>* out);

// Builds the layers from a getter of internal tensor names (already
// validated). A projection whose weight has a scale in `by_internal`
// (validate_weights with encoder_layer_quantizable) is built quantized from
// `weights`' own tensors.
std::vector<EncoderLayer> build_encoder_stack(const EncoderStackSpec& s,
                                              const std::function<at::Tensor(const std::string&)>& get,
                                              const WeightSet& weights, const std::map<std::string, std::string>& by_internal);

// The Linear `prefix` names (internal: "layers.0.mlp.fc1"): quantized from
// `weights`' own tensors (mmap views) when validate_weights returned scales
// for its weight, else dense from `get` (which converts to the module's dtype).
Linear load_linear(const std::string& prefix, bool bias, const std::function<at::Tensor(const std::string&)>& get,
                   const WeightSet& weights, const std::map<std::string, std::string>& by_internal);

// The encoder tensors that may be stored quantized: the weights of a layer's
// attention projections and MLP (layers.*.self_attn.*_proj, layers.*.mlp.fc1/fc2).
bool encoder_layer_quantizable(const std::string& internal);

// Checks a checkpoint against the expected internal names/shapes, through a
// mapping from stored (HF) names to internal names (empty string: ignore the
// tensor). Reports missing, misshapen, non-float and unexpected tensors in one
// m4::Error; `stored_name` turns an internal name into the name the checkpoint
// should have used, for the message. Returns internal name -> stored name.
// A weight for which `quantized_ok` (internal name) is true, in a module that
// builds it as a quantized Linear, may be stored quantized
// (firmware/quantized_weight.h): data and scales are checked against the
// expected shape and the scales returned as internal name + "_scale"; any
// other quantized weight is refused.
std::map<std::string, std::string> validate_weights(
    const std::map<std::string, std::vector<int64_t>>& expected, const WeightSet& weights,
    const std::function<std::string(const std::string&)>& to_internal,
    const std::function<std::string(const std::string&)>& stored_name, const std::string& where,
    const std::string& config_summary,
    const std::function<bool(const std::string&)>& quantized_ok = nullptr);

std::string shape_str(at::IntArrayRef shape);

}  // namespace m4
