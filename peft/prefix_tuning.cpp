// Prefix tables, their MLP reparameterisation and folding.
#include "peft/prefix_tuning.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "firmware/llama.h"
#include "firmware/module_loader.h"
#include "firmware/transformer_encoder.h"

namespace m4 {
namespace {

class LayerHook : public AttentionPrefix {
 public:
  LayerHook(PrefixTuningImpl* owner, int64_t layer) : owner_(owner), layer_(layer) {}
  std::pair<at::Tensor, at::Tensor> key_value() override { return owner_->layer_kv(layer_); }

 private:
  PrefixTuningImpl* owner_;
  int64_t layer_;
};

}  // namespace

PrefixTuningImpl::PrefixTuningImpl(const PrefixTuningOptions& o) : options(o) {
  M4_CHECK(o.tokens() >= 1, ErrorCode::kInvalidArgument, "prefix tuning needs num_virtual_tokens >= 1, found ",
           o.tokens());
  M4_CHECK(o.projection_hidden() == 0 || o.token_dim() > 0, ErrorCode::kInvalidArgument,
           "prefix projection needs the token width");
  reset();
}

void PrefixTuningImpl::reset() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed());
  const int64_t P = options.tokens(), KV = options.kv_heads(), D = options.head_dim(), L = options.layers();
  keys.clear();
  values.clear();
  if (options.projection_hidden() == 0) {
    // nn.Embedding's N(0, 1), as PEFT's PrefixEncoder.
    for (int64_t i = 0; i < L; ++i) {
      keys.push_back(register_parameter("key" + std::to_string(i), at::empty({KV, P, D}).normal_(0, 1, gen)));
      values.push_back(register_parameter("value" + std::to_string(i), at::empty({KV, P, D}).normal_(0, 1, gen)));
    }
    return;
  }
  const int64_t H = options.projection_hidden(), C = options.token_dim(), O = L * 2 * KV * D;
  embedding = register_parameter("embedding", at::empty({P, C}).normal_(0, 1, gen));
  // PyTorch's Linear default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
  const double b1 = 1.0 / std::sqrt(static_cast<double>(C)), b2 = 1.0 / std::sqrt(static_cast<double>(H));
  fc1_weight = register_parameter("fc1_weight", at::empty({H, C}).uniform_(-b1, b1, gen));
  fc1_bias = register_parameter("fc1_bias", at::empty({H}).uniform_(-b1, b1, gen));
  fc2_weight = register_parameter("fc2_weight", at::empty({O, H}).uniform_(-b2, b2, gen));
  fc2_bias = register_parameter("fc2_bias", at::empty({O}).uniform_(-b2, b2, gen));
}

std::pair<at::Tensor, at::Tensor> PrefixTuningImpl::layer_kv(int64_t layer) {
  if (!reparameterized()) return {keys.at(layer), values.at(layer)};
  const int64_t P = options.tokens(), KV = options.kv_heads(), D = options.head_dim(), W = KV * D;
  at::Tensor h = at::tanh(at::linear(embedding, fc1_weight, fc1_bias));  // (P, H)
  // Output columns are laid out (L*2, KV, D): layer i's key is block 2i, value 2i+1;
  // only those 2 blocks of fc2 are computed.
  at::Tensor rows = fc2_weight.narrow(0, 2 * layer * W, 2 * W), bias = fc2_bias.narrow(0, 2 * layer * W, 2 * W);
  at::Tensor out = at::linear(h, rows, bias).view({P, 2, KV, D}).permute({1, 2, 0, 3});  // (2, KV, P, D)
  return {out[0], out[1]};
}

void PrefixTuningImpl::fold() {
  if (!reparameterized()) return;
  at::NoGradGuard ng;
  std::vector<at::Tensor> k, v;
  for (int64_t i = 0; i < options.layers(); ++i) {
    auto [ki, vi] = layer_kv(i);
    k.push_back(ki.contiguous());
    v.push_back(vi.contiguous());
  }
  // The MLP is gone from here on: the module is the tables it computed.
  for (const char* n : {"embedding", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"}) {
    parameters_.erase(n);
  }
  embedding = fc1_weight = fc1_bias = fc2_weight = fc2_bias = at::Tensor();
  for (int64_t i = 0; i < options.layers(); ++i) {
    keys.push_back(register_parameter("key" + std::to_string(i), k[i]));
    values.push_back(register_parameter("value" + std::to_string(i), v[i]));
  }
  folded_ = true;
}

std::shared_ptr<AttentionPrefix> PrefixTuningImpl::hook(int64_t layer) {
  M4_CHECK(layer >= 0 && layer < options.layers(), ErrorCode::kInternal, "prefix layer ", layer, " out of range");
  return std::make_shared<LayerHook>(this, layer);
}

}  // namespace m4

namespace m4 {
namespace {

// One attention layer a prefix attaches to, either kind.
struct PrefixSite {
  std::string name;  // full dotted name of the attention module
  std::shared_ptr<torch::nn::Module> attn;
};

class PrefixAttachment : public Attachment {
 public:
  std::string component;
  std::vector<PrefixSite> sites;
  PrefixTuning prefix{nullptr};
  std::shared_ptr<LlamaImpl> llama;  // set for the backbone: prefix_tokens

  std::vector<NamedParameter> plain() {
    std::vector<NamedParameter> out;
    for (size_t i = 0; i < sites.size(); ++i) {
      out.push_back({sites[i].name + ".prefix_key", prefix->keys[i]});
      out.push_back({sites[i].name + ".prefix_value", prefix->values[i]});
    }
    return out;
  }
  std::vector<NamedParameter> parameters() override {
    if (!prefix->reparameterized()) return plain();
    const std::string p = component + ".prefix.";
    return {{p + "embedding", prefix->embedding},
            {p + "mlp.fc1.weight", prefix->fc1_weight},
            {p + "mlp.fc1.bias", prefix->fc1_bias},
            {p + "mlp.fc2.weight", prefix->fc2_weight},
            {p + "mlp.fc2.bias", prefix->fc2_bias}};
  }
  std::vector<NamedParameter> export_tensors() override {
    if (!prefix->reparameterized()) return plain();
    // The tables the MLP computes now, without folding the live module.
    at::NoGradGuard ng;
    std::vector<NamedParameter> out;
    for (size_t i = 0; i < sites.size(); ++i) {
      auto [k, v] = prefix->layer_kv(static_cast<int64_t>(i));
      out.push_back({sites[i].name + ".prefix_key", k.contiguous()});
      out.push_back({sites[i].name + ".prefix_value", v.contiguous()});
    }
    return out;
  }
  std::vector<std::vector<NamedParameter>> accepted_layouts() override {
    if (!prefix->reparameterized()) return {plain()};
    return {parameters(), export_tensors()};
  }
  void load(const std::map<std::string, at::Tensor>& tensors) override {
    if (prefix->reparameterized() && !tensors.count(component + ".prefix.embedding")) {
      prefix->fold();  // an exported adapter: plain tables, no MLP
    }
    Attachment::load(tensors);
  }
  std::vector<PlanRow> plan() override {
    std::vector<PlanRow> rows;
    const auto& o = prefix->options;
    int64_t total = 0;
    for (auto& p : parameters()) total += p.tensor.numel();
    for (size_t i = 0; i < sites.size(); ++i) {
      rows.push_back({component, sites[i].name, "prefix",
                      std::to_string(o.tokens()) + " tokens x " + std::to_string(o.kv_heads()) + " kv heads x " +
                          std::to_string(o.head_dim()) + (o.projection_hidden() > 0 ? " (via MLP, folded at export)" : ""),
                      i + 1 == sites.size() ? total : 0});
    }
    return rows;
  }
  std::vector<TouchedTensor> touched() override {
    std::vector<TouchedTensor> out;
    for (auto& s : sites) {
      std::shared_ptr<LinearImpl> k, v;
      if (auto a = std::dynamic_pointer_cast<LlamaAttentionImpl>(s.attn)) k = a->k_proj.ptr(), v = a->v_proj.ptr();
      if (auto a = std::dynamic_pointer_cast<EncoderAttentionImpl>(s.attn)) k = a->k_proj.ptr(), v = a->v_proj.ptr();
      out.push_back({s.name + ".k_proj.weight", k->weight_shape()});
      out.push_back({s.name + ".v_proj.weight", v->weight_shape()});
    }
    return out;
  }
  void train(bool on) override { prefix->train(on); }
  void detach() override {
    for (auto& s : sites) {
      if (auto a = std::dynamic_pointer_cast<LlamaAttentionImpl>(s.attn)) a->prefix.reset();
      if (auto a = std::dynamic_pointer_cast<EncoderAttentionImpl>(s.attn)) a->prefix.reset();
    }
    if (llama) llama->prefix_tokens = 0;
  }
  void attach() override {
    for (size_t i = 0; i < sites.size(); ++i) {
      auto hook = prefix->hook(static_cast<int64_t>(i));
      if (auto l = std::dynamic_pointer_cast<LlamaAttentionImpl>(sites[i].attn)) l->prefix = hook;
      if (auto e = std::dynamic_pointer_cast<EncoderAttentionImpl>(sites[i].attn)) e->prefix = hook;
    }
    if (llama) llama->prefix_tokens = prefix->options.tokens();
  }
};

}  // namespace

std::unique_ptr<Attachment> attach_prefix(const AttachContext& ctx) {
  auto a = std::make_unique<PrefixAttachment>();
  a->component = ctx.component;
  a->llama = std::dynamic_pointer_cast<LlamaImpl>(ctx.module);
  int64_t kv_heads = 0, head_dim = 0;
  for (const auto& item : ctx.module->named_modules("", false)) {
    if (auto l = std::dynamic_pointer_cast<LlamaAttentionImpl>(item.value())) {
      kv_heads = l->kv_heads;
      head_dim = l->head_dim;
    } else if (auto e = std::dynamic_pointer_cast<EncoderAttentionImpl>(item.value())) {
      kv_heads = e->heads;
      head_dim = e->q_proj->out_features() / e->heads;
    } else {
      continue;
    }
    a->sites.push_back({ctx.component + "." + item.key(), item.value()});
  }
  M4_CHECK(!a->sites.empty(), ErrorCode::kMismatch, "prefix tuning: ", ctx.component, " has no attention layer");
  const PrefixConfig& cfg = ctx.config->prefix;
  PrefixTuningOptions o(cfg.num_virtual_tokens, static_cast<int64_t>(a->sites.size()), kv_heads, head_dim);
  o.projection_hidden(cfg.projection_hidden).token_dim(firmware_module_width(*ctx.module)).seed(ctx.config->seed);
  a->prefix = PrefixTuning(o);
  a->attach();
  return a;
}

}  // namespace m4
