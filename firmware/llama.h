// The LLaMA-family decoder as Hugging Face's LlamaForCausalLM computes it
// (modeling_llama.py): RMSNorm, rotary positions (optionally llama3-scaled),
// grouped-query attention, SwiGLU MLP, tied or untied LM head.
// Module names mirror HF's without the "model." prefix, so PEFT patterns read
// `layers.3.self_attn.q_proj` as they do in HF PEFT.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "firmware/linear.h"
#include "firmware/llama_config.h"

namespace m4 {

class WeightSet;

struct LlamaLoadOptions {
  // Weights stored in another dtype are converted on load (a copy); weights
  // already in this dtype stay zero-copy views into the mapping.
  at::ScalarType dtype = at::kFloat;
};

// Keys and values of every layer for incremental decoding.
struct KVCache {
  std::vector<at::Tensor> k, v;  // per layer: (B, KV, capacity, D)
  int64_t length = 0;            // positions filled
  int64_t capacity = 0;
};

struct LlamaForwardOptions {
  bool logits = true;
  bool hidden_states = false;
};

struct LlamaOutput {
  at::Tensor logits;                      // (B, T, vocab), f32
  std::vector<at::Tensor> hidden_states;  // L+1 x (B, T, hidden); last is after the final norm
};

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(at::Tensor weight, double eps);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

class EmbeddingImpl : public torch::nn::Module {
 public:
  explicit EmbeddingImpl(at::Tensor weight);
  at::Tensor forward(const at::Tensor& ids) { return at::embedding(weight, ids); }
  at::Tensor weight;
};
TORCH_MODULE(Embedding);

class LlamaAttentionImpl : public torch::nn::Module {
 public:
  LlamaAttentionImpl(const LlamaConfig& c, Linear q, Linear k, Linear v, Linear o);
  // x: (B, T, hidden); cos/sin: (B, T, D); mask: (B, 1, T, S) additive.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     const at::Tensor& mask, KVCache* cache, int64_t layer);
  Linear q_proj, k_proj, v_proj, o_proj;
  int64_t heads, kv_heads, head_dim;
  // Prefix tuning: keys/values before the real ones (their mask columns come
  // from LlamaImpl::forward_embeds, which knows LlamaImpl::prefix_tokens).
  std::shared_ptr<AttentionPrefix> prefix;
};
TORCH_MODULE(LlamaAttention);

class LlamaMLPImpl : public torch::nn::Module {
 public:
  LlamaMLPImpl(Linear gate, Linear up, Linear down);
  at::Tensor forward(const at::Tensor& x);
  Linear gate_proj, up_proj, down_proj;
};
TORCH_MODULE(LlamaMLP);

class LlamaDecoderLayerImpl : public torch::nn::Module {
 public:
  LlamaDecoderLayerImpl(RMSNorm in_norm, LlamaAttention attn, RMSNorm post_norm, LlamaMLP mlp);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     const at::Tensor& mask, KVCache* cache, int64_t layer);
  RMSNorm input_layernorm;
  LlamaAttention self_attn;
  RMSNorm post_attention_layernorm;
  LlamaMLP mlp;
};
TORCH_MODULE(LlamaDecoderLayer);

class LlamaImpl : public torch::nn::Module {
 public:
  // Builds the model from HF-named tensors (`model.layers.0...`, `lm_head.weight`;
  // the "model." prefix may be absent). Validates every tensor against the
  // config and reports missing, misshapen and unexpected tensors in one error.
  // `where` names the checkpoint in messages.
  LlamaImpl(const LlamaConfig& config, const WeightSet& weights, const std::string& where,
            const LlamaLoadOptions& options = {});

  // input_ids: (B, T) int64. attention_mask: (B, past + T) of 0/1, optional.
  // position_ids: (B, T), optional (default past .. past+T-1 on every row).
  LlamaOutput forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {},
                      const at::Tensor& position_ids = {}, KVCache* cache = nullptr,
                      const LlamaForwardOptions& options = {});
  // The same from input embeddings (B, T, hidden): the entry for soft prompts
  // and projected encoder outputs.
  LlamaOutput forward_embeds(const at::Tensor& inputs_embeds, const at::Tensor& attention_mask = {},
                             const at::Tensor& position_ids = {}, KVCache* cache = nullptr,
                             const LlamaForwardOptions& options = {});

  // Checked token embedding: input_ids (B, T) I64/I32 within the vocabulary -> (B, T, hidden).
  at::Tensor forward_embeds_of(const at::Tensor& input_ids);
  // The LM head on final hidden states (after the final norm; (..., hidden) ->
  // (..., vocab) f32): lets a loss compute logits only where it has targets.
  at::Tensor logits_of(const at::Tensor& final_hidden);

  KVCache new_cache(int64_t batch, int64_t capacity) const;
  const LlamaConfig& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }
  // Rotary inverse frequencies (D/2), f32, after any rope_scaling.
  const at::Tensor& inv_freq() const { return inv_freq_; }

  // The internal (module) name of an HF tensor name, and the shapes the config implies.
  static std::string internal_name(const std::string& hf_name);
  static std::string stored_name(const std::string& internal);  // inverse, in LlamaForCausalLM's spelling
  static std::map<std::string, std::vector<int64_t>> expected_shapes(const LlamaConfig& c);
  // Checks a checkpoint against a config without touching tensor data: every
  // expected tensor present with its shape and a float dtype, nothing unexpected.
  // Returns internal name -> stored name. Throws one m4::Error listing every problem.
  static std::map<std::string, std::string> validate(const LlamaConfig& c, const WeightSet& weights,
                                                     const std::string& where);
  // HF tensor names that carry no parameters and are ignored if present.
  static bool ignorable(const std::string& hf_name);
  // Whether an internal tensor name may be stored quantized: the weight of a
  // layer's attention or MLP projection (embeddings, norms and the LM head
  // stay as they are).
  static bool quantizable(const std::string& internal);

  // PEFT hooks. Callers keep passing attention_mask and position_ids for their
  // text only: the soft prompt's and the prefix's columns and the shift of text
  // positions (text starts at position prefix_tokens + prompt tokens, as HF
  // PEFT numbers them) are added here. The soft prompt enters on the first step
  // of a KV-cached run and stays in the cache.
  std::shared_ptr<InputPrompt> input_prompt;
  int64_t prefix_tokens = 0;  // every layer's self_attn.prefix yields this many

  Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  Linear lm_head{nullptr};  // null when tied to embed_tokens

 private:
  LlamaConfig config_;
  at::ScalarType dtype_;
  at::Tensor inv_freq_;
  std::vector<LlamaDecoderLayer> layer_list_;
};
TORCH_MODULE(Llama);

// Rotary inverse frequencies for a config, f32 (D/2), with llama3 scaling applied.
at::Tensor llama_inv_freq(const LlamaConfig& c);

// Path-1 input: projected encoder tokens (B, N, hidden) placed before the
// text's token embeddings; the mask gains N ones in front and positions count
// real tokens only, so left- or right-padded text works.
struct PrefixedInput {
  at::Tensor inputs_embeds;   // (B, N + T, hidden)
  at::Tensor attention_mask;  // (B, N + T)
  at::Tensor position_ids;    // (B, N + T)
};
PrefixedInput prepend_prefix(LlamaImpl& backbone, const at::Tensor& prefix, const at::Tensor& input_ids,
                             const at::Tensor& attention_mask);

struct GenerateOptions {
  int64_t max_new_tokens = 16;
  double temperature = 0.0;  // 0: greedy
  double top_p = 1.0;
  uint64_t seed = 0;
  std::vector<int64_t> stop_ids;  // a row stops after emitting one of these
  int64_t pad_id = 0;             // written after a row has stopped
};

// Autoregressive decoding with a KV cache. input_ids: (B, T); attention_mask:
// (B, T) with left padding allowed (positions are derived from the mask).
// `prefix` (B, N, hidden), optional, is placed before the text (Path-1).
// Returns the new tokens only: (B, N), N <= max_new_tokens.
at::Tensor generate(LlamaImpl& model, const at::Tensor& input_ids, const at::Tensor& attention_mask,
                    const GenerateOptions& options, const at::Tensor& prefix = {});

}  // namespace m4
