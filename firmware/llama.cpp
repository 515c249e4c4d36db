// LLaMA decoder matching HF transformers' modeling_llama.py (see llama.h).
#include "firmware/llama.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>

#include <cmath>
#include <limits>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/onednn_gemm.h"
#include "firmware/transformer_encoder.h"
#include "firmware/weight_set.h"

namespace m4 {
namespace {

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}

}  // namespace

RMSNormImpl::RMSNormImpl(at::Tensor w, double e) : eps(e) {
  weight = register_parameter("weight", std::move(w), false);
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  // As HF: normalise in f32, cast back, then scale.
  at::Tensor h = x.to(at::kFloat);
  at::Tensor var = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * at::rsqrt(var + eps);
  return weight * h.to(x.scalar_type());
}

EmbeddingImpl::EmbeddingImpl(at::Tensor w) { weight = register_parameter("weight", std::move(w), false); }

LlamaAttentionImpl::LlamaAttentionImpl(const LlamaConfig& c, Linear q, Linear k, Linear v, Linear o)
    : q_proj(register_module("q_proj", q)),
      k_proj(register_module("k_proj", k)),
      v_proj(register_module("v_proj", v)),
      o_proj(register_module("o_proj", o)),
      heads(c.num_attention_heads),
      kv_heads(c.num_key_value_heads),
      head_dim(c.head_dim) {}

at::Tensor LlamaAttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                       const at::Tensor& mask, KVCache* cache, int64_t layer) {
  const int64_t B = x.size(0), T = x.size(1), D = head_dim;
  // (B, T, H*D) -> (B, H, T, D)
  at::Tensor q = q_proj(x).view({B, T, heads, D}).transpose(1, 2);
  at::Tensor k = k_proj(x).view({B, T, kv_heads, D}).transpose(1, 2);
  at::Tensor v = v_proj(x).view({B, T, kv_heads, D}).transpose(1, 2);
  at::Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);  // (B, 1, T, D)
  q = q * c + rotate_half(q) * s;
  k = k * c + rotate_half(k) * s;
  if (cache != nullptr) {
    const int64_t past = cache->length;
    M4_CHECK(past + T <= cache->capacity, ErrorCode::kInvalidArgument, "KV cache holds ",
             cache->capacity, " positions, ", past + T, " needed");
    cache->k[layer].narrow(2, past, T).copy_(k);
    cache->v[layer].narrow(2, past, T).copy_(v);
    k = cache->k[layer].narrow(2, 0, past + T);
    v = cache->v[layer].narrow(2, 0, past + T);
  }
  if (prefix) {
    auto [pk, pv] = prefix->key_value();  // (KV, P, D) each
    k = at::cat({pk.to(k.scalar_type()).unsqueeze(0).expand({B, kv_heads, pk.size(1), D}), k}, 2);
    v = at::cat({pv.to(v.scalar_type()).unsqueeze(0).expand({B, kv_heads, pv.size(1), D}), v}, 2);
  }
  const int64_t S = k.size(2), rep = heads / kv_heads;
  at::Tensor out;
#if TORCH_VERSION_MAJOR >= 2
  if (x.is_cuda()) {
    at::Tensor kk = rep == 1 ? k : k.repeat_interleave(rep, 1);
    at::Tensor vv = rep == 1 ? v : v.repeat_interleave(rep, 1);
    // (B, H, T, D). Without a mask the attention is causal alone (forward_embeds
    // leaves it out then), which lets LibTorch take its flash kernel; a mask is
    // given in the query's dtype, as SDPA requires under autocast.
    out = mask.defined() ? at::scaled_dot_product_attention(q, kk, vv, mask.to(q.scalar_type()))
                         : at::scaled_dot_product_attention(q, kk, vv, {}, 0.0, /*is_causal=*/true);
  }
#endif
  if (!out.defined()) {
    // Grouped-query attention without materialising repeated keys: head h uses
    // kv head h / rep, so fold the rep heads into the query length.
    at::Tensor qg = q.reshape({B, kv_heads, rep * T, D});
    // differentiable_gemm: in oneDNN for f32 (core/onednn_gemm.h).
    at::Tensor scores = differentiable_gemm(qg, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(D));
    scores = scores.view({B, kv_heads, rep, T, S}) + mask.unsqueeze(1);  // mask: (B,1,1,T,S)
    at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
    out = differentiable_gemm(probs.view({B, kv_heads, rep * T, S}), v).view({B, heads, T, D});
  }
  return o_proj(out.transpose(1, 2).reshape({B, T, heads * D}));
}

LlamaMLPImpl::LlamaMLPImpl(Linear gate, Linear up, Linear down)
    : gate_proj(register_module("gate_proj", gate)),
      up_proj(register_module("up_proj", up)),
      down_proj(register_module("down_proj", down)) {}

at::Tensor LlamaMLPImpl::forward(const at::Tensor& x) {
  return down_proj(at::silu(gate_proj(x)) * up_proj(x));
}

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(RMSNorm in_norm, LlamaAttention attn, RMSNorm post_norm,
                                             LlamaMLP m)
    : input_layernorm(register_module("input_layernorm", in_norm)),
      self_attn(register_module("self_attn", attn)),
      post_attention_layernorm(register_module("post_attention_layernorm", post_norm)),
      mlp(register_module("mlp", m)) {}

at::Tensor LlamaDecoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                          const at::Tensor& mask, KVCache* cache, int64_t layer) {
  at::Tensor h = x + self_attn(input_layernorm(x), cos, sin, mask, cache, layer);
  return h + mlp(post_attention_layernorm(h));
}

at::Tensor llama_inv_freq(const LlamaConfig& c) {
  const int64_t D = c.head_dim;
  // HF: 1 / base ** (arange(0, D, 2) / D), in f32.
  at::Tensor exponent = at::arange(0, D, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) /
                        static_cast<double>(D);
  at::Tensor inv = at::pow(c.rope_theta, exponent).reciprocal();
  if (c.rope_scaling.type == "llama3") {
    // transformers' _compute_llama3_parameters: long wavelengths are divided by
    // `factor`, short ones kept, the band between smoothly interpolated.
    const auto& r = c.rope_scaling;
    const double old_ctx = static_cast<double>(r.original_max_position_embeddings);
    const double low_wavelen = old_ctx / r.low_freq_factor;
    const double high_wavelen = old_ctx / r.high_freq_factor;
    at::Tensor wavelen = 2 * M_PI / inv;
    at::Tensor scaled = at::where(wavelen > low_wavelen, inv / r.factor, inv);
    at::Tensor smooth = (old_ctx / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
    at::Tensor smoothed = (1 - smooth) * scaled / r.factor + smooth * scaled;
    at::Tensor medium = at::logical_not(wavelen < high_wavelen).logical_and(at::logical_not(wavelen > low_wavelen));
    inv = at::where(medium, smoothed, scaled);
  }
  return inv;
}

std::string LlamaImpl::internal_name(const std::string& hf_name) {
  return hf_name.rfind("model.", 0) == 0 ? hf_name.substr(6) : hf_name;
}

std::string LlamaImpl::stored_name(const std::string& internal) {
  return internal == "lm_head.weight" ? internal : "model." + internal;
}

bool LlamaImpl::ignorable(const std::string& hf_name) {
  // Older transformers saved the rotary buffer; it is derived, not a weight.
  static constexpr std::string_view kRotary = "rotary_emb.inv_freq";
  return hf_name.size() >= kRotary.size() &&
         hf_name.compare(hf_name.size() - kRotary.size(), kRotary.size(), kRotary) == 0;
}

std::map<std::string, std::vector<int64_t>> LlamaImpl::expected_shapes(const LlamaConfig& c) {
  std::map<std::string, std::vector<int64_t>> m;
  const int64_t H = c.hidden_size, I = c.intermediate_size, D = c.head_dim;
  const int64_t q = c.num_attention_heads * D, kv = c.num_key_value_heads * D;
  m["embed_tokens.weight"] = {c.vocab_size, H};
  m["norm.weight"] = {H};
  if (!c.tie_word_embeddings) m["lm_head.weight"] = {c.vocab_size, H};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    m[p + "input_layernorm.weight"] = {H};
    m[p + "post_attention_layernorm.weight"] = {H};
    m[p + "self_attn.q_proj.weight"] = {q, H};
    m[p + "self_attn.k_proj.weight"] = {kv, H};
    m[p + "self_attn.v_proj.weight"] = {kv, H};
    m[p + "self_attn.o_proj.weight"] = {H, q};
    if (c.attention_bias) {
      m[p + "self_attn.q_proj.bias"] = {q};
      m[p + "self_attn.k_proj.bias"] = {kv};
      m[p + "self_attn.v_proj.bias"] = {kv};
      m[p + "self_attn.o_proj.bias"] = {H};
    }
    m[p + "mlp.gate_proj.weight"] = {I, H};
    m[p + "mlp.up_proj.weight"] = {I, H};
    m[p + "mlp.down_proj.weight"] = {H, I};
    if (c.mlp_bias) {
      m[p + "mlp.gate_proj.bias"] = {I};
      m[p + "mlp.up_proj.bias"] = {I};
      m[p + "mlp.down_proj.bias"] = {H};
    }
  }
  return m;
}

std::map<std::string, std::string> LlamaImpl::validate(const LlamaConfig& config, const WeightSet& weights,
                                                       const std::string& where) {
  auto to_internal = [&](const std::string& stored) -> std::string {
    if (ignorable(stored)) return "";
    const std::string name = internal_name(stored);
    if (name == "lm_head.weight" && config.tie_word_embeddings) return "";  // HF ignores it too
    return name;
  };
  return validate_weights(expected_shapes(config), weights, to_internal, stored_name, where, config.summary(),
                          quantizable);
}

bool LlamaImpl::quantizable(const std::string& internal) {
  return internal.starts_with("layers.") && internal.ends_with("_proj.weight");
}

LlamaImpl::LlamaImpl(const LlamaConfig& config, const WeightSet& weights, const std::string& where,
                     const LlamaLoadOptions& options)
    : config_(config), dtype_(options.dtype) {
  M4_CHECK(at::isFloatingType(dtype_), ErrorCode::kInvalidArgument, "backbone dtype must be floating");
  const std::map<std::string, std::string> by_internal = validate(config, weights, where);

  auto w = [&](const std::string& name) -> at::Tensor {
    at::Tensor t = weights.tensor(by_internal.at(name));
    return t.scalar_type() == dtype_ ? t : t.to(dtype_);
  };
  auto linear = [&](const std::string& p, bool bias) { return load_linear(p, bias, w, weights, by_internal); };
  embed_tokens = register_module("embed_tokens", Embedding(w("embed_tokens.weight")));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    LlamaAttention attn(config, linear(p + "self_attn.q_proj", config.attention_bias),
                        linear(p + "self_attn.k_proj", config.attention_bias),
                        linear(p + "self_attn.v_proj", config.attention_bias),
                        linear(p + "self_attn.o_proj", config.attention_bias));
    LlamaMLP mlp(linear(p + "mlp.gate_proj", config.mlp_bias), linear(p + "mlp.up_proj", config.mlp_bias),
                 linear(p + "mlp.down_proj", config.mlp_bias));
    LlamaDecoderLayer layer(RMSNorm(w(p + "input_layernorm.weight"), config.rms_norm_eps), attn,
                            RMSNorm(w(p + "post_attention_layernorm.weight"), config.rms_norm_eps), mlp);
    layers->push_back(layer);
    layer_list_.push_back(layer);
  }
  norm = register_module("norm", RMSNorm(w("norm.weight"), config.rms_norm_eps));
  if (!config.tie_word_embeddings) lm_head = register_module("lm_head", linear("lm_head", false));
  inv_freq_ = llama_inv_freq(config);
}

KVCache LlamaImpl::new_cache(int64_t batch, int64_t capacity) const {
  KVCache c;
  capacity += input_prompt ? input_prompt->tokens() : 0;  // the soft prompt lives in the cache
  c.capacity = capacity;
  auto opts = at::TensorOptions().dtype(dtype_).device(embed_tokens->weight.device());
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    c.k.push_back(at::zeros({batch, config_.num_key_value_heads, capacity, config_.head_dim}, opts));
    c.v.push_back(at::zeros({batch, config_.num_key_value_heads, capacity, config_.head_dim}, opts));
  }
  return c;
}

at::Tensor LlamaImpl::forward_embeds_of(const at::Tensor& input_ids) {
  M4_CHECK(input_ids.dim() == 2, ErrorCode::kInvalidArgument, "input_ids must be (batch, seq), found ",
           shape_str(input_ids.sizes()));
  M4_CHECK(input_ids.scalar_type() == at::kLong || input_ids.scalar_type() == at::kInt,
           ErrorCode::kInvalidArgument, "input_ids must be I64 or I32, found ",
           c10::toString(input_ids.scalar_type()));
  if (input_ids.numel() > 0) {
    const int64_t lo = input_ids.min().item<int64_t>(), hi = input_ids.max().item<int64_t>();
    M4_CHECK(lo >= 0 && hi < config_.vocab_size, ErrorCode::kInvalidArgument, "input_ids holds token id ",
             lo < 0 ? lo : hi, ", outside the vocabulary of ", config_.vocab_size);
  }
  return embed_tokens(input_ids.to(at::kLong));
}

LlamaOutput LlamaImpl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                               const at::Tensor& position_ids, KVCache* cache,
                               const LlamaForwardOptions& options) {
  return forward_embeds(forward_embeds_of(input_ids), attention_mask, position_ids, cache, options);
}

LlamaOutput LlamaImpl::forward_embeds(const at::Tensor& inputs_embeds, const at::Tensor& attention_mask,
                                      const at::Tensor& position_ids, KVCache* cache,
                                      const LlamaForwardOptions& options) {
  M4_CHECK(inputs_embeds.dim() == 3 && inputs_embeds.size(2) == config_.hidden_size,
           ErrorCode::kInvalidArgument, "inputs_embeds must be (batch, seq, ", config_.hidden_size,
           "), found ", shape_str(inputs_embeds.sizes()));
  const int64_t B = inputs_embeds.size(0);
  const int64_t past = cache != nullptr ? cache->length : 0;
  const auto dev = inputs_embeds.device();
  auto lopts = at::TensorOptions().dtype(at::kLong).device(dev);
  at::Tensor x = inputs_embeds.to(dtype_);

  // Soft prompt (prompt tuning): prepended on the first step only.
  const int64_t prompt = input_prompt ? input_prompt->tokens() : 0;
  const int64_t added = past == 0 ? prompt : 0;
  if (added > 0) {
    at::Tensor p = input_prompt->embeddings().to(dtype_).to(dev);  // (P, hidden)
    x = at::cat({p.unsqueeze(0).expand({B, added, config_.hidden_size}), x}, 1);
  }
  const int64_t T = x.size(1), S = past + T;
  const int64_t text_offset = prefix_tokens + prompt;

  at::Tensor pos = position_ids;
  if (!pos.defined()) {
    pos = at::arange(past, S, lopts).unsqueeze(0).expand({B, T}) + prefix_tokens;
  } else {
    M4_CHECK(pos.dim() == 2 && pos.size(0) == B && pos.size(1) == T - added, ErrorCode::kInvalidArgument,
             "position_ids must be (", B, ", ", T - added, "), found ", shape_str(pos.sizes()));
    pos = pos.to(lopts) + text_offset;
    if (added > 0) pos = at::cat({at::arange(prefix_tokens, text_offset, lopts).unsqueeze(0).expand({B, added}), pos}, 1);
  }
  // cos/sin: (B, T, D), as HF: freqs = pos * inv_freq, emb = cat(freqs, freqs).
  at::Tensor freqs = pos.to(at::kFloat).unsqueeze(-1) * inv_freq_.to(dev);
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  at::Tensor cos = emb.cos().to(dtype_), sin = emb.sin().to(dtype_);

  // Additive mask (B, 1, T, prefix + S): causal, plus padding from attention_mask.
  at::Tensor allowed = at::arange(S, lopts).view({1, S}) <= (at::arange(T, lopts) + past).view({T, 1});
  allowed = allowed.view({1, 1, T, S});
  if (attention_mask.defined()) {
    M4_CHECK(attention_mask.dim() == 2 && attention_mask.size(0) == B && attention_mask.size(1) == S - prompt,
             ErrorCode::kInvalidArgument, "attention_mask must be (", B, ", ", S - prompt, "), found ",
             shape_str(attention_mask.sizes()));
    at::Tensor m = attention_mask.to(dev).ne(0);
    if (prompt > 0) m = at::cat({at::ones({B, prompt}, m.options()), m}, 1);
    allowed = allowed.logical_and(m.view({B, 1, 1, S}));
  }
  if (prefix_tokens > 0) {
    allowed = at::cat({at::ones({allowed.size(0), 1, T, prefix_tokens}, allowed.options()), allowed.expand({allowed.size(0), 1, T, S})}, 3);
  }
  // Causal alone (no padding, prefix, soft prompt or cache) on CUDA: no mask,
  // and attention runs SDPA with is_causal (LlamaAttentionImpl::forward).
  bool causal_only = false;
#if TORCH_VERSION_MAJOR >= 2
  causal_only = dev.is_cuda() && !attention_mask.defined() && prefix_tokens == 0 && prompt == 0 && past == 0;
#endif
  at::Tensor mask;
  if (!causal_only) {
    mask = at::zeros(allowed.sizes(), at::TensorOptions().dtype(dtype_).device(dev))
               .masked_fill(allowed.logical_not(), mask_fill_value(dtype_));
  }

  LlamaOutput out;
  for (size_t i = 0; i < layer_list_.size(); ++i) {
    if (options.hidden_states) out.hidden_states.push_back(x);
    x = layer_list_[i]->forward(x, cos, sin, mask, cache, static_cast<int64_t>(i));
  }
  x = norm(x);
  if (options.hidden_states) out.hidden_states.push_back(x);
  if (cache != nullptr) cache->length += T;
  if (options.logits) out.logits = logits_of(x);
  return out;
}

at::Tensor LlamaImpl::logits_of(const at::Tensor& x) {
  return (lm_head ? lm_head(x) : at::linear(x, embed_tokens->weight)).to(at::kFloat);
}

at::Tensor generate(LlamaImpl& model, const at::Tensor& input_ids, const at::Tensor& attention_mask,
                    const GenerateOptions& o, const at::Tensor& prefix) {
  M4_CHECK(input_ids.dim() == 2 && input_ids.size(1) > 0, ErrorCode::kInvalidArgument,
           "generate needs input_ids (batch, seq>0), found ", shape_str(input_ids.sizes()));
  M4_CHECK(o.max_new_tokens >= 0, ErrorCode::kInvalidArgument, "max_new_tokens must be >= 0");
  M4_CHECK(o.temperature >= 0, ErrorCode::kInvalidArgument, "temperature must be >= 0");
  M4_CHECK(o.top_p > 0 && o.top_p <= 1, ErrorCode::kInvalidArgument, "top_p must be in (0, 1]");
  const int64_t B = input_ids.size(0);
  const auto dev = input_ids.device();
  at::Tensor mask = attention_mask.defined()
                        ? attention_mask.to(at::kLong)
                        : at::ones(input_ids.sizes(), at::TensorOptions().dtype(at::kLong).device(dev));
  M4_CHECK(mask.sizes() == input_ids.sizes(), ErrorCode::kInvalidArgument,
           "attention_mask must have the shape of input_ids");
  at::Tensor embeds;
  if (prefix.defined()) {
    PrefixedInput p = prepend_prefix(model, prefix, input_ids, mask);
    embeds = p.inputs_embeds;
    mask = p.attention_mask;
  } else {
    embeds = model.forward_embeds_of(input_ids);
  }
  const int64_t T = embeds.size(1);
  // Left padding: positions count real tokens only (as HF generate does).
  at::Tensor pos = (mask.cumsum(-1) - 1).masked_fill(mask.eq(0), 1);
  KVCache cache = model.new_cache(B, T + o.max_new_tokens);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  at::Tensor stop = at::tensor(o.stop_ids.empty() ? std::vector<int64_t>{-1} : o.stop_ids, at::kLong).to(dev);

  LlamaOutput out = model.forward_embeds(embeds, mask, pos, &cache);
  at::Tensor last_pos = pos.select(1, T - 1);
  at::Tensor finished = at::zeros({B}, at::TensorOptions().dtype(at::kBool).device(dev));
  std::vector<at::Tensor> tokens;
  for (int64_t n = 0; n < o.max_new_tokens; ++n) {
    at::Tensor logits = out.logits.select(1, out.logits.size(1) - 1);  // (B, V)
    at::Tensor next;
    if (o.temperature == 0) {
      next = logits.argmax(-1);
    } else {
      at::Tensor probs = at::softmax(logits / o.temperature, -1);
      if (o.top_p < 1) {
        // Keep the smallest set of most likely tokens whose mass reaches top_p.
        auto [sorted, idx] = probs.sort(-1, /*descending=*/true);
        at::Tensor before = sorted.cumsum(-1) - sorted;
        sorted = sorted.masked_fill(before >= o.top_p, 0);
        probs = at::zeros_like(probs).scatter(-1, idx, sorted);
      }
      next = at::multinomial(probs.cpu(), 1, false, gen).squeeze(1).to(dev);
    }
    next = next.masked_fill(finished, o.pad_id);
    tokens.push_back(next);
    finished = finished.logical_or(at::isin(next, stop));
    if (finished.all().item<bool>() || n + 1 == o.max_new_tokens) break;
    mask = at::cat({mask, at::ones({B, 1}, mask.options())}, 1);
    last_pos = last_pos + 1;
    // Finished rows still run (the batch stays rectangular); feed them a valid
    // id rather than pad_id, which need not be in the vocabulary.
    out = model.forward(next.masked_fill(finished, 0).unsqueeze(1), mask, last_pos.unsqueeze(1), &cache);
  }
  if (tokens.empty()) return at::empty({B, 0}, at::TensorOptions().dtype(at::kLong).device(dev));
  return at::stack(tokens, 1);
}

PrefixedInput prepend_prefix(LlamaImpl& backbone, const at::Tensor& prefix, const at::Tensor& input_ids,
                             const at::Tensor& attention_mask) {
  const int64_t H = backbone.config().hidden_size;
  M4_CHECK(prefix.dim() == 3 && prefix.size(2) == H, ErrorCode::kInvalidArgument,
           "the projected prefix must be (batch, tokens, ", H, "), found ", shape_str(prefix.sizes()));
  M4_CHECK(input_ids.dim() == 2 && input_ids.size(0) == prefix.size(0), ErrorCode::kInvalidArgument,
           "input_ids must be (", prefix.size(0), ", T), found ", shape_str(input_ids.sizes()));
  const int64_t B = prefix.size(0), N = prefix.size(1);
  at::Tensor text_mask = attention_mask.defined() ? attention_mask.to(at::kLong) : at::ones_like(input_ids, at::kLong);
  // (B, N, H) ++ (B, T, H)
  at::Tensor text = backbone.forward_embeds_of(input_ids);
  PrefixedInput p;
  p.inputs_embeds = at::cat({prefix.to(text.scalar_type()), text}, 1);
  p.attention_mask = at::cat({at::ones({B, N}, text_mask.options()), text_mask}, 1);
  p.position_ids = (p.attention_mask.cumsum(-1) - 1).masked_fill(p.attention_mask.eq(0), 1);
  return p;
}

}  // namespace m4
