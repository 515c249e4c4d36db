// The LLaMA configurations the HF fixture (tests/fixtures/hf-reference/llama)
// does not cover, each derived from the fixture's checkpoint and checked against
// an independent computation: sharded and f16/bf16 checkpoints, the tied head,
// attention/MLP biases, rope_theta and llama3 rope scaling, grouped-query heads,
// every load/forward error, the KV cache, and generate().
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "firmware/llama.h"
#include "firmware/weight_set.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::expect_error;
using test::max_abs_diff;
using test::TempDir;

fs::path fixture_dir() { return test::fixtures() / "llama"; }

SafetensorsFile reference() { return SafetensorsFile::open(fixture_dir() / "reference.safetensors"); }

// A checkpoint in memory: HF config.json and HF-named tensors (owned copies).
struct Checkpoint {
  json config;
  NamedTensors tensors;

  at::Tensor& at(const std::string& name) {
    for (auto& [n, t] : tensors)
      if (n == name) return t;
    throw std::out_of_range("no tensor " + name);
  }
  void erase(const std::string& name) {
    auto it = std::find_if(tensors.begin(), tensors.end(), [&](const auto& p) { return p.first == name; });
    ASSERT_NE(it, tensors.end()) << name;
    tensors.erase(it);
  }
  std::map<std::string, at::Tensor> map() const { return {tensors.begin(), tensors.end()}; }
};

Checkpoint fixture_checkpoint() {
  Checkpoint c;
  c.config = json::parse(read_text_file(fixture_dir() / "config.json"));
  WeightSet ws = WeightSet::open_hf_dir(fixture_dir());
  for (const auto& name : ws.names()) c.tensors.emplace_back(name, ws.tensor(name).clone());
  return c;
}

void write_checkpoint(const fs::path& dir, const Checkpoint& c) {
  fs::create_directories(dir);
  write_file_atomic(dir / "config.json", c.config.dump(1) + "\n");
  write_safetensors(dir / "model.safetensors", c.tensors, {{"format", "pt"}});
}

Llama load_dir(const fs::path& dir, const LlamaLoadOptions& o = {}) {
  return Llama(LlamaConfig::from_file(dir / "config.json"), WeightSet::open_hf_dir(dir), dir.string(), o);
}

Llama load_fixture_model() { return load_dir(fixture_dir()); }

// ---------------------------------------------------------------------------
// Independent references, written from the published formulas in double.

// HF default rope: inv[i] = 1 / theta^(2i/D).
std::vector<double> ref_inv_freq(double theta, int64_t D) {
  std::vector<double> inv;
  for (int64_t i = 0; i < D / 2; ++i) inv.push_back(1.0 / std::pow(theta, static_cast<double>(2 * i) / D));
  return inv;
}

// Llama 3.1's rope scaling (Meta's apply_scaling / transformers' llama3 rope),
// one frequency at a time.
struct Llama3Counts {
  int kept = 0, divided = 0, smoothed = 0;
};
std::vector<double> ref_inv_freq_llama3(double theta, int64_t D, double factor, double low, double high,
                                        double old_ctx, Llama3Counts* counts = nullptr) {
  const double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
  std::vector<double> out;
  for (double inv : ref_inv_freq(theta, D)) {
    const double wavelen = 2 * M_PI / inv;
    if (wavelen < high_wavelen) {
      out.push_back(inv);
      if (counts) counts->kept++;
    } else if (wavelen > low_wavelen) {
      out.push_back(inv / factor);
      if (counts) counts->divided++;
    } else {
      const double smooth = (old_ctx / wavelen - low) / (high - low);
      out.push_back((1 - smooth) * inv / factor + smooth * inv);
      if (counts) counts->smoothed++;
    }
  }
  return out;
}

at::Tensor rotate_half_ref(const at::Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}

// LlamaForCausalLM's forward in double, from HF tensor names: plain multi-head
// attention with each kv head repeated for its query heads, an explicit causal
// mask, positions 0..T-1. Biases are used where the map has them.
at::Tensor ref_logits(const std::map<std::string, at::Tensor>& w, const json& cfg, const at::Tensor& ids,
                      const std::vector<double>& inv) {
  const int64_t H = cfg["num_attention_heads"], hidden = cfg["hidden_size"];
  const int64_t KV = cfg.value("num_key_value_heads", H), D = hidden / H, L = cfg["num_hidden_layers"];
  const double eps = cfg["rms_norm_eps"];
  const int64_t B = ids.size(0), T = ids.size(1);
  auto d = [&](const std::string& n) { return w.at(n).to(at::kDouble); };
  auto rms = [&](const at::Tensor& x, const std::string& n) {
    return d(n) * (x * at::rsqrt(x.pow(2).mean(-1, true) + eps));
  };
  auto lin = [&](const std::string& p, const at::Tensor& x) {
    at::Tensor y = at::matmul(x, d(p + ".weight").t());
    if (w.count(p + ".bias")) y = y + d(p + ".bias");
    return y;
  };
  const auto dopt = at::TensorOptions().dtype(at::kDouble);
  at::Tensor x = at::embedding(d("model.embed_tokens.weight"), ids);  // (B, T, hidden)
  at::Tensor ang = at::arange(T, dopt).unsqueeze(1) * at::tensor(inv, dopt).unsqueeze(0);  // (T, D/2)
  at::Tensor emb = at::cat({ang, ang}, -1);
  at::Tensor cos = emb.cos(), sin = emb.sin();  // (T, D)
  at::Tensor future = at::ones({T, T}, at::TensorOptions().dtype(at::kBool)).triu(1);
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    at::Tensor h = rms(x, p + "input_layernorm.weight");
    at::Tensor q = lin(p + "self_attn.q_proj", h).view({B, T, H, D}).transpose(1, 2);  // (B, H, T, D)
    at::Tensor k = lin(p + "self_attn.k_proj", h).view({B, T, KV, D}).transpose(1, 2);
    at::Tensor v = lin(p + "self_attn.v_proj", h).view({B, T, KV, D}).transpose(1, 2);
    q = q * cos + rotate_half_ref(q) * sin;
    k = k * cos + rotate_half_ref(k) * sin;
    k = k.repeat_interleave(H / KV, 1);
    v = v.repeat_interleave(H / KV, 1);
    at::Tensor s = at::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(D));
    s = s.masked_fill(future, -INFINITY);
    at::Tensor a = at::matmul(at::softmax(s, -1), v).transpose(1, 2).reshape({B, T, H * D});
    x = x + lin(p + "self_attn.o_proj", a);
    h = rms(x, p + "post_attention_layernorm.weight");
    x = x + lin(p + "mlp.down_proj", at::silu(lin(p + "mlp.gate_proj", h)) * lin(p + "mlp.up_proj", h));
  }
  x = rms(x, "model.norm.weight");
  const bool tied = cfg.value("tie_word_embeddings", false);
  return at::matmul(x, (tied ? d("model.embed_tokens.weight") : d("lm_head.weight")).t());
}

double max_rel_diff(const at::Tensor& got, const std::vector<double>& want) {
  EXPECT_EQ(got.numel(), static_cast<int64_t>(want.size()));
  double m = 0;
  at::Tensor g = got.to(at::kDouble).contiguous();
  for (size_t i = 0; i < want.size(); ++i)
    m = std::max(m, std::abs(g[static_cast<int64_t>(i)].item<double>() - want[i]) / std::abs(want[i]));
  return m;
}

// The reference forward itself must agree with HF before it can judge variants.
TEST(LlamaVariants, IndependentReferenceMatchesHF) {
  at::NoGradGuard ng;
  Checkpoint ck = fixture_checkpoint();
  auto ref = reference();
  at::Tensor want = ref_logits(ck.map(), ck.config, ref.tensor("input_ids"), ref_inv_freq(10000.0, 16));
  double d = max_abs_diff(want, ref.tensor("logits"));
  std::cout << "[parity] double-precision reference forward vs HF logits max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);
}

// ---------------------------------------------------------------------------
// Sharded checkpoints.

constexpr int kShards = 3;
std::string shard_name(int i) {
  return "model-0000" + std::to_string(i + 1) + "-of-0000" + std::to_string(kShards) + ".safetensors";
}

// Writes the fixture as kShards shards (round robin) + index; returns the index JSON.
json write_sharded(const fs::path& dir, const Checkpoint& ck) {
  fs::create_directories(dir);
  write_file_atomic(dir / "config.json", ck.config.dump(1));
  std::vector<NamedTensors> shards(kShards);
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
  int64_t total = 0;
  for (size_t i = 0; i < ck.tensors.size(); ++i) {
    const auto& [name, t] = ck.tensors[i];
    shards[i % kShards].emplace_back(name, t);
    index["weight_map"][name] = shard_name(static_cast<int>(i % kShards));
    total += t.numel() * static_cast<int64_t>(t.element_size());
  }
  index["metadata"]["total_size"] = total;
  for (int s = 0; s < kShards; ++s) write_safetensors(dir / shard_name(s), shards[s], {{"format", "pt"}});
  write_file_atomic(dir / "model.safetensors.index.json", index.dump(1));
  return index;
}

TEST(LlamaVariants, ShardedCheckpointGivesIdenticalLogits) {
  at::NoGradGuard ng;
  TempDir tmp;
  Checkpoint ck = fixture_checkpoint();
  write_sharded(tmp.path(), ck);
  WeightSet ws = WeightSet::open_hf_dir(tmp.path());
  ASSERT_EQ(ws.files().size(), static_cast<size_t>(kShards));
  EXPECT_EQ(ws.names().size(), ck.tensors.size());
  Llama sharded = load_dir(tmp.path());
  Llama single = load_fixture_model();
  at::Tensor ids = reference().tensor("input_ids");
  double d = max_abs_diff(sharded->forward(ids).logits, single->forward(ids).logits);
  std::cout << "[parity] sharded (3 files) vs single-file logits max |diff| = " << d << "\n";
  EXPECT_EQ(d, 0.0);
}

TEST(LlamaVariants, ShardIndexListsMissingShard) {
  TempDir tmp;
  write_sharded(tmp.path(), fixture_checkpoint());
  fs::remove(tmp / shard_name(2));
  expect_error([&] { WeightSet::open_hf_dir(tmp.path()); },
               {"model.safetensors.index.json", "lists shard '" + shard_name(2) + "'", "does not exist"});
}

TEST(LlamaVariants, ShardIndexAssignsTensorToWrongShard) {
  TempDir tmp;
  Checkpoint ck = fixture_checkpoint();
  json index = write_sharded(tmp.path(), ck);
  const std::string victim = "model.norm.weight";
  const std::string actual = index["weight_map"][victim];
  const std::string wrong = actual == shard_name(0) ? shard_name(1) : shard_name(0);
  index["weight_map"][victim] = wrong;
  write_file_atomic(tmp / "model.safetensors.index.json", index.dump());
  expect_error([&] { WeightSet::open_hf_dir(tmp.path()); },
               {"tensor '" + victim + "' is in " + actual, "not in " + wrong, "as the index says"});
}

TEST(LlamaVariants, ShardHoldsTensorTheIndexDoesNotList) {
  TempDir tmp;
  json index = write_sharded(tmp.path(), fixture_checkpoint());
  index["weight_map"].erase("model.layers.1.mlp.up_proj.weight");
  write_file_atomic(tmp / "model.safetensors.index.json", index.dump());
  expect_error([&] { WeightSet::open_hf_dir(tmp.path()); },
               {"tensor 'model.layers.1.mlp.up_proj.weight' is not listed in", "model.safetensors.index.json"});
}

TEST(LlamaVariants, ShardIndexListsTensorNoShardHolds) {
  TempDir tmp;
  json index = write_sharded(tmp.path(), fixture_checkpoint());
  index["weight_map"]["model.layers.7.mlp.up_proj.weight"] = shard_name(1);
  write_file_atomic(tmp / "model.safetensors.index.json", index.dump());
  expect_error([&] { WeightSet::open_hf_dir(tmp.path()); },
               {"tensor 'model.layers.7.mlp.up_proj.weight' is not in its shard " + shard_name(1)});
}

TEST(LlamaVariants, ShardIndexBadJsonAndBadShardName) {
  TempDir tmp;
  json index = write_sharded(tmp.path(), fixture_checkpoint());
  write_file_atomic(tmp / "model.safetensors.index.json", "{\"weight_map\": ");
  expect_error([&] { WeightSet::open_hf_dir(tmp.path()); }, {"model.safetensors.index.json", "not valid JSON"});
  write_file_atomic(tmp / "model.safetensors.index.json", "{\"metadata\": {}}");
  expect_error([&] { WeightSet::open_hf_dir(tmp.path()); }, {"missing object 'weight_map'"});
  index["weight_map"]["model.norm.weight"] = "../elsewhere.safetensors";
  write_file_atomic(tmp / "model.safetensors.index.json", index.dump());
  expect_error([&] { WeightSet::open_hf_dir(tmp.path()); },
               {"shard name '../elsewhere.safetensors'", "plain file name"});
}

TEST(LlamaVariants, TensorInTwoShardsIsRefused) {
  TempDir tmp;
  write_safetensors(tmp / "a.safetensors", {{"x", at::zeros({2})}, {"y", at::zeros({2})}});
  write_safetensors(tmp / "b.safetensors", {{"y", at::zeros({2})}});
  expect_error([&] { WeightSet::open({tmp / "a.safetensors", tmp / "b.safetensors"}); },
               {"b.safetensors", "tensor 'y' is also in", "a.safetensors"});
}

TEST(LlamaVariants, DirectoryWithoutWeightsIsRefused) {
  TempDir tmp;
  expect_error([&] { WeightSet::open_hf_dir(tmp.path()); },
               {tmp.path().string(), "no model.safetensors or model.safetensors.index.json"});
}

// ---------------------------------------------------------------------------
// Half-precision checkpoints, converted to f32 on load.

void check_half_checkpoint(at::ScalarType dt, const char* label, double max_vs_hf) {
  at::NoGradGuard ng;
  TempDir tmp;
  Checkpoint half = fixture_checkpoint(), rounded = fixture_checkpoint();
  for (auto& [n, t] : half.tensors) t = t.to(dt);
  for (auto& [n, t] : rounded.tensors) t = t.to(dt).to(at::kFloat);
  half.config["torch_dtype"] = dt == at::kHalf ? "float16" : "bfloat16";
  write_checkpoint(tmp / "half", half);
  write_checkpoint(tmp / "rounded", rounded);
  {
    WeightSet ws = WeightSet::open_hf_dir(tmp / "half");
    ASSERT_EQ(ws.info("model.norm.weight").dtype, dt == at::kHalf ? DType::kF16 : DType::kBF16);
  }
  LlamaLoadOptions f32;
  f32.dtype = at::kFloat;
  Llama m_half = load_dir(tmp / "half", f32);
  Llama m_rounded = load_dir(tmp / "rounded");
  EXPECT_EQ(m_half->dtype(), at::kFloat);
  for (const auto& p : m_half->named_parameters()) EXPECT_EQ(p.value().scalar_type(), at::kFloat) << p.key();

  auto ref = reference();
  at::Tensor ids = ref.tensor("input_ids");
  at::Tensor logits = m_half->forward(ids).logits;
  double d_same = max_abs_diff(logits, m_rounded->forward(ids).logits);
  double d_hf = max_abs_diff(logits, ref.tensor("logits"));
  std::cout << "[parity] " << label << " checkpoint (loaded as f32) vs f32 model on the rounded weights max |diff| = "
            << d_same << "\n";
  std::cout << "[parity] " << label << " checkpoint vs HF f32 reference logits max |diff| = " << d_hf
            << " (rounding of the weights)\n";
  EXPECT_LT(d_same, 1e-4);
  EXPECT_GT(d_hf, 0.0);          // the weights were rounded, so something changed ...
  EXPECT_LT(d_hf, max_vs_hf);    // ... but only by what that rounding explains
}

TEST(LlamaVariants, Float16CheckpointLoadsAsFloat32) { check_half_checkpoint(at::kHalf, "f16", 5e-3); }
TEST(LlamaVariants, BFloat16CheckpointLoadsAsFloat32) { check_half_checkpoint(at::kBFloat16, "bf16", 5e-2); }

// ---------------------------------------------------------------------------
// Tied LM head.

TEST(LlamaVariants, TiedHeadUsesEmbeddings) {
  at::NoGradGuard ng;
  TempDir tmp;
  Checkpoint ck = fixture_checkpoint();
  ck.erase("lm_head.weight");
  ck.config["tie_word_embeddings"] = true;
  write_checkpoint(tmp.path(), ck);
  Llama model = load_dir(tmp.path());
  EXPECT_TRUE(model->lm_head.is_empty());
  auto ref = reference();
  at::Tensor logits = model->forward(ref.tensor("input_ids")).logits;
  // Independent: HF's final hidden state (after the norm) times the fixture's embeddings.
  at::Tensor want = at::matmul(ref.tensor("hidden_states.2").to(at::kDouble),
                               ck.at("model.embed_tokens.weight").to(at::kDouble).t());
  double d = max_abs_diff(logits, want);
  std::cout << "[parity] tied head logits vs HF hidden_states.2 @ embed_tokens^T max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-5);
}

TEST(LlamaVariants, TiedConfigIgnoresAPresentLmHead) {
  at::NoGradGuard ng;
  TempDir tmp;
  Checkpoint ck = fixture_checkpoint();
  ck.config["tie_word_embeddings"] = true;
  write_checkpoint(tmp / "with_head", ck);
  ck.erase("lm_head.weight");
  write_checkpoint(tmp / "without_head", ck);
  Llama with_head = load_dir(tmp / "with_head");
  Llama without_head = load_dir(tmp / "without_head");
  EXPECT_TRUE(with_head->lm_head.is_empty());
  at::Tensor ids = reference().tensor("input_ids");
  at::Tensor logits = with_head->forward(ids).logits;
  EXPECT_EQ(max_abs_diff(logits, without_head->forward(ids).logits), 0.0);
  // The untied head really was ignored: the logits are not the fixture's.
  EXPECT_GT(max_abs_diff(logits, reference().tensor("logits")), 1e-2);
}

// ---------------------------------------------------------------------------
// attention_bias / mlp_bias.

const char* kAttnBias[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"};
const char* kMlpBias[] = {"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};

// Adds bias tensors of the right sizes: zeros when std == 0, else N(0, std^2) seeded.
void add_biases(Checkpoint& ck, bool attn, bool mlp, double std) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
  for (int64_t l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    std::vector<std::string> mods;
    if (attn) mods.insert(mods.end(), std::begin(kAttnBias), std::end(kAttnBias));
    if (mlp) mods.insert(mods.end(), std::begin(kMlpBias), std::end(kMlpBias));
    for (const auto& m : mods) {
      const int64_t out = ck.at(p + m + ".weight").size(0);
      at::Tensor b = at::zeros({out}, at::kFloat);
      if (std > 0) b.normal_(0.0, std, gen);
      ck.tensors.emplace_back(p + m + ".bias", b);
    }
  }
  ck.config["attention_bias"] = attn;
  ck.config["mlp_bias"] = mlp;
}

TEST(LlamaVariants, BiasFlagsWithoutBiasTensorsNameTheMissingTensor) {
  TempDir tmp;
  {
    Checkpoint ck = fixture_checkpoint();
    ck.config["attention_bias"] = true;
    write_checkpoint(tmp / "attn", ck);
  }
  auto msg = expect_error([&] { load_dir(tmp / "attn"); },
                          {"missing tensors:", "model.layers.0.self_attn.q_proj.bias",
                           "model.layers.1.self_attn.o_proj.bias"});
  EXPECT_EQ(msg.find("mlp."), std::string::npos) << msg;
  {
    Checkpoint ck = fixture_checkpoint();
    ck.config["mlp_bias"] = true;
    write_checkpoint(tmp / "mlp", ck);
  }
  msg = expect_error([&] { load_dir(tmp / "mlp"); },
                     {"missing tensors:", "model.layers.0.mlp.gate_proj.bias", "model.layers.1.mlp.down_proj.bias"});
  EXPECT_EQ(msg.find("self_attn."), std::string::npos) << msg;
  // And bias tensors without the flags are unexpected, not silently ignored.
  {
    Checkpoint ck = fixture_checkpoint();
    add_biases(ck, true, false, 0.1);
    ck.config["attention_bias"] = false;
    write_checkpoint(tmp / "noflag", ck);
  }
  expect_error([&] { load_dir(tmp / "noflag"); }, {"unexpected tensors:", "model.layers.0.self_attn.q_proj.bias"});
}

TEST(LlamaVariants, ZeroBiasesLeaveTheLogitsUnchanged) {
  at::NoGradGuard ng;
  TempDir tmp;
  Checkpoint ck = fixture_checkpoint();
  add_biases(ck, true, true, 0.0);
  write_checkpoint(tmp.path(), ck);
  Llama model = load_dir(tmp.path());
  EXPECT_EQ(model->named_parameters().size(), ck.tensors.size());
  auto ref = reference();
  double d = max_abs_diff(model->forward(ref.tensor("input_ids")).logits, ref.tensor("logits"));
  std::cout << "[parity] zero attention+mlp biases vs HF logits max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-5);
}

TEST(LlamaVariants, NonzeroBiasesMatchIndependentForward) {
  at::NoGradGuard ng;
  TempDir tmp;
  Checkpoint ck = fixture_checkpoint();
  add_biases(ck, true, true, 0.1);
  write_checkpoint(tmp.path(), ck);
  Llama model = load_dir(tmp.path());
  auto ref = reference();
  at::Tensor ids = ref.tensor("input_ids");
  at::Tensor logits = model->forward(ids).logits;

  at::Tensor want = ref_logits(ck.map(), ck.config, ids, ref_inv_freq(10000.0, 16));
  double d = max_abs_diff(logits, want);
  double moved = max_abs_diff(logits, ref.tensor("logits"));
  std::cout << "[parity] biased model vs double-precision reference forward max |diff| = " << d
            << " (biases moved the logits by up to " << moved << ")\n";
  EXPECT_LT(d, 1e-4);
  EXPECT_GT(moved, 1e-2);

  // Layer 0's q_proj applies exactly the stored bias.
  auto layer0 = model->layers->ptr<LlamaDecoderLayerImpl>(0);
  ASSERT_TRUE(layer0);
  Linear q = layer0->self_attn->q_proj;
  ASSERT_TRUE(q->bias.defined());
  EXPECT_TRUE(q->bias.equal(ck.at("model.layers.0.self_attn.q_proj.bias")));
  at::Tensor x = at::embedding(ck.at("model.embed_tokens.weight"), ids);
  at::Tensor manual = at::matmul(x.to(at::kDouble), ck.at("model.layers.0.self_attn.q_proj.weight").to(at::kDouble).t()) +
                      ck.at("model.layers.0.self_attn.q_proj.bias").to(at::kDouble);
  double dq = max_abs_diff(q->forward(x), manual);
  std::cout << "[parity] layer 0 q_proj(x) vs x W^T + b max |diff| = " << dq << "\n";
  EXPECT_LT(dq, 1e-6);
}

// ---------------------------------------------------------------------------
// Rotary frequencies.

TEST(LlamaVariants, RopeInvFreqDefault) {
  for (auto [theta, D] : std::vector<std::pair<double, int64_t>>{{10000.0, 16}, {500000.0, 128}, {10000.0, 96}}) {
    LlamaConfig c;
    c.rope_theta = theta;
    c.head_dim = D;
    at::Tensor inv = llama_inv_freq(c);
    EXPECT_EQ(inv.scalar_type(), at::kFloat);
    double r = max_rel_diff(inv, ref_inv_freq(theta, D));
    std::cout << "[parity] inv_freq theta " << theta << " head_dim " << D << " max relative diff = " << r << "\n";
    EXPECT_LT(r, 1e-6);
  }
}

TEST(LlamaVariants, RopeInvFreqLlama3Scaling) {
  LlamaConfig c;
  c.rope_theta = 500000.0;
  c.head_dim = 128;
  c.rope_scaling.type = "llama3";
  c.rope_scaling.factor = 8.0;
  c.rope_scaling.low_freq_factor = 1.0;
  c.rope_scaling.high_freq_factor = 4.0;
  c.rope_scaling.original_max_position_embeddings = 8192;
  Llama3Counts counts;
  auto want = ref_inv_freq_llama3(500000.0, 128, 8.0, 1.0, 4.0, 8192.0, &counts);
  // The case must exercise all three branches of the formula.
  EXPECT_GT(counts.kept, 0);
  EXPECT_GT(counts.divided, 0);
  EXPECT_GT(counts.smoothed, 0);
  double r = max_rel_diff(llama_inv_freq(c), want);
  std::cout << "[parity] llama3 inv_freq (" << counts.kept << " kept, " << counts.smoothed << " smoothed, "
            << counts.divided << " divided) max relative diff = " << r << "\n";
  EXPECT_LT(r, 1e-6);
}

TEST(LlamaVariants, RopeScalingConfigParsing) {
  json base = json::parse(read_text_file(fixture_dir() / "config.json"));
  json j = base;
  j["rope_scaling"] = {{"type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  LlamaConfig c = LlamaConfig::from_json(j, "cfg");
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 64);
  // The normalised form round-trips.
  LlamaConfig back = LlamaConfig::from_json(c.to_json(), "normalised");
  EXPECT_EQ(back.to_json(), c.to_json());

  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  expect_error([&] { LlamaConfig::from_json(j, "cfg.json"); },
               {"cfg.json", "rope_scaling type 'linear' is not supported"});
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 64}};
  expect_error([&] { LlamaConfig::from_json(j, "cfg.json"); }, {"llama3 needs a number 'factor'"});
}

TEST(LlamaVariants, Llama3ScaledLogitsMatchIndependentForward) {
  at::NoGradGuard ng;
  TempDir tmp;
  Checkpoint ck = fixture_checkpoint();
  // With head_dim 16 and theta 1e4, a 64-position original context puts the
  // frequencies in all three bands (kept / smoothed / divided).
  ck.config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                               {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  write_checkpoint(tmp.path(), ck);
  Llama model = load_dir(tmp.path());
  Llama3Counts counts;
  auto inv = ref_inv_freq_llama3(10000.0, 16, 8.0, 1.0, 4.0, 64.0, &counts);
  EXPECT_GT(counts.kept, 0);
  EXPECT_GT(counts.smoothed, 0);
  EXPECT_GT(counts.divided, 0);
  auto ref = reference();
  at::Tensor logits = model->forward(ref.tensor("input_ids")).logits;
  double d = max_abs_diff(logits, ref_logits(ck.map(), ck.config, ref.tensor("input_ids"), inv));
  double moved = max_abs_diff(logits, ref.tensor("logits"));
  std::cout << "[parity] llama3-scaled rope logits vs double-precision reference max |diff| = " << d
            << " (scaling moved them by up to " << moved << ")\n";
  EXPECT_LT(d, 1e-4);
  EXPECT_GT(moved, 1e-3);
}

TEST(LlamaVariants, RopeThetaChangesTheLogits) {
  at::NoGradGuard ng;
  TempDir tmp;
  Checkpoint ck = fixture_checkpoint();
  ck.config["rope_theta"] = 500000.0;
  write_checkpoint(tmp.path(), ck);
  Llama model = load_dir(tmp.path());
  auto ref = reference();
  at::Tensor logits = model->forward(ref.tensor("input_ids")).logits;
  double moved = max_abs_diff(logits, ref.tensor("logits"));
  double d = max_abs_diff(logits, ref_logits(ck.map(), ck.config, ref.tensor("input_ids"), ref_inv_freq(500000.0, 16)));
  std::cout << "[parity] rope_theta 500000 logits vs double-precision reference max |diff| = " << d
            << " (vs theta 10000: " << moved << ")\n";
  EXPECT_GT(moved, 1e-3);
  EXPECT_LT(d, 1e-4);
}

// ---------------------------------------------------------------------------
// Grouped-query attention.

TEST(LlamaVariants, GroupedQueryEqualsRepeatedKvHeads) {
  at::NoGradGuard ng;
  TempDir tmp;
  Checkpoint ck = fixture_checkpoint();
  const int64_t H = ck.config["num_attention_heads"], KV = ck.config["num_key_value_heads"];
  const int64_t hidden = ck.config["hidden_size"], D = hidden / H, rep = H / KV;
  ASSERT_GT(rep, 1) << "the fixture is meant to be grouped-query";
  for (int64_t l = 0; l < 2; ++l) {
    for (const char* m : {"k_proj", "v_proj"}) {
      at::Tensor& w = ck.at("model.layers." + std::to_string(l) + ".self_attn." + m + ".weight");
      // (KV*D, hidden) -> (KV, D, hidden): kv head j serves query heads j*rep .. j*rep+rep-1.
      w = w.view({KV, D, hidden}).repeat_interleave(rep, 0).reshape({H * D, hidden}).contiguous();
    }
  }
  ck.config["num_key_value_heads"] = H;
  write_checkpoint(tmp.path(), ck);
  Llama mha = load_dir(tmp.path());
  EXPECT_EQ(mha->config().num_key_value_heads, H);
  Llama gqa = load_fixture_model();
  auto ref = reference();
  at::Tensor ids = ref.tensor("input_ids");
  at::Tensor logits = mha->forward(ids).logits;
  double d = max_abs_diff(logits, gqa->forward(ids).logits);
  double d_hf = max_abs_diff(logits, ref.tensor("logits"));
  std::cout << "[parity] multi-head model with repeated kv weights vs grouped-query model max |diff| = " << d
            << " (vs HF: " << d_hf << ")\n";
  EXPECT_LT(d, 1e-5);
  EXPECT_LT(d_hf, 1e-4);
}

// ---------------------------------------------------------------------------
// Errors: each bad input, its m4::Error and message.

TEST(LlamaVariantsErrors, ConfigMissingFieldsReportedTogether) {
  TempDir tmp;
  json j = json::parse(read_text_file(fixture_dir() / "config.json"));
  j.erase("hidden_size");
  j.erase("vocab_size");
  write_file_atomic(tmp / "config.json", j.dump());
  try {
    LlamaConfig::from_file(tmp / "config.json");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
  }
  expect_error([&] { LlamaConfig::from_file(tmp / "config.json"); },
               {(tmp / "config.json").string(), "missing field 'hidden_size'", "missing field 'vocab_size'"});
}

TEST(LlamaVariantsErrors, ConfigBadValues) {
  json base = json::parse(read_text_file(fixture_dir() / "config.json"));
  json j = base;
  j["num_attention_heads"] = 3;  // 64 % 3 != 0 and 3 % 2 != 0
  expect_error([&] { LlamaConfig::from_json(j, "cfg.json"); },
               {"cfg.json", "hidden_size 64 is not divisible by num_attention_heads 3"});
  j = base;
  j["num_key_value_heads"] = 3;
  expect_error([&] { LlamaConfig::from_json(j, "cfg.json"); },
               {"num_attention_heads 4 is not a multiple of num_key_value_heads 3"});
  j = base;
  j["hidden_size"] = "64";
  expect_error([&] { LlamaConfig::from_json(j, "cfg.json"); }, {"field 'hidden_size' must be an integer", "\"64\""});
  j = base;
  j["intermediate_size"] = -1;
  expect_error([&] { LlamaConfig::from_json(j, "cfg.json"); }, {"field 'intermediate_size' must be positive"});
  TempDir tmp;
  write_file_atomic(tmp / "config.json", "{ not json");
  expect_error([&] { LlamaConfig::from_file(tmp / "config.json"); }, {(tmp / "config.json").string(), "not valid JSON"});
  expect_error([&] { LlamaConfig::from_file(tmp / "absent.json"); }, {(tmp / "absent.json").string(), "cannot open"});
}

TEST(LlamaVariantsErrors, HiddenActGeluRefused) {
  json j = json::parse(read_text_file(fixture_dir() / "config.json"));
  j["hidden_act"] = "gelu";
  expect_error([&] { LlamaConfig::from_json(j, "cfg.json"); },
               {"cfg.json", "hidden_act \"gelu\" is not supported"});
}

TEST(LlamaVariantsErrors, WrongShapeNamesTensorAndShapes) {
  TempDir tmp;
  Checkpoint ck = fixture_checkpoint();
  ck.at("model.layers.1.mlp.up_proj.weight") = ck.at("model.layers.1.mlp.up_proj.weight").narrow(0, 0, 170).contiguous();
  write_checkpoint(tmp.path(), ck);
  try {
    load_dir(tmp.path());
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kMismatch);
  }
  expect_error([&] { load_dir(tmp.path()); },
               {tmp.path().string(), "tensor 'model.layers.1.mlp.up_proj.weight' has shape [170, 64]",
                "implies [172, 64]"});
}

TEST(LlamaVariantsErrors, MissingTensorIsNamed) {
  TempDir tmp;
  Checkpoint ck = fixture_checkpoint();
  ck.erase("model.layers.1.post_attention_layernorm.weight");
  write_checkpoint(tmp.path(), ck);
  expect_error([&] { load_dir(tmp.path()); },
               {"missing tensors: model.layers.1.post_attention_layernorm.weight"});
  ck = fixture_checkpoint();
  ck.erase("lm_head.weight");
  write_checkpoint(tmp.path(), ck);
  expect_error([&] { load_dir(tmp.path()); }, {"missing tensors: lm_head.weight"});
}

TEST(LlamaVariantsErrors, UnexpectedTensorsAreListed) {
  TempDir tmp;
  Checkpoint ck = fixture_checkpoint();
  ck.tensors.emplace_back("model.layers.2.self_attn.q_proj.weight", at::zeros({64, 64}));
  ck.tensors.emplace_back("model.extra.weight", at::zeros({3}));
  write_checkpoint(tmp.path(), ck);
  expect_error([&] { load_dir(tmp.path()); },
               {"unexpected tensors:", "model.layers.2.self_attn.q_proj.weight", "model.extra.weight"});
}

// BUG (firmware/llama.cpp:165, LlamaImpl::ignorable): the suffix test compares
// the last 22 characters with "rotary_emb.inv_freq", which has 19, so it never
// matches; a checkpoint from older transformers that saved
// `model.layers.0.self_attn.rotary_emb.inv_freq` is refused as "unexpected
// tensors: model.layers.0.self_attn.rotary_emb.inv_freq". Enable when fixed.
TEST(LlamaVariantsErrors, RotaryBufferIsIgnored) {
  at::NoGradGuard ng;
  EXPECT_TRUE(LlamaImpl::ignorable("model.layers.0.self_attn.rotary_emb.inv_freq"));
  EXPECT_FALSE(LlamaImpl::ignorable("model.layers.0.self_attn.q_proj.weight"));
  TempDir tmp;
  Checkpoint ck = fixture_checkpoint();
  ck.tensors.emplace_back("model.layers.0.self_attn.rotary_emb.inv_freq", at::ones({8}));
  write_checkpoint(tmp.path(), ck);
  Llama model = load_dir(tmp.path());
  auto ref = reference();
  EXPECT_LT(max_abs_diff(model->forward(ref.tensor("input_ids")).logits, ref.tensor("logits")), 1e-4);
}

TEST(LlamaVariantsErrors, IntegerWeightsRefused) {
  TempDir tmp;
  Checkpoint ck = fixture_checkpoint();
  ck.at("model.norm.weight") = at::ones({64}, at::kInt);
  write_checkpoint(tmp.path(), ck);
  expect_error([&] { load_dir(tmp.path()); }, {"tensor 'model.norm.weight' has dtype I32", "F32, F16, BF16 or F64"});
}

TEST(LlamaVariantsErrors, TokenIdOutsideVocabRefused) {
  at::NoGradGuard ng;
  Llama model = load_fixture_model();
  at::Tensor ids = reference().tensor("input_ids").clone();
  ids[1][5] = 256;
  expect_error([&] { model->forward(ids); }, {"token id 256", "outside the vocabulary of 256"});
  ids[1][5] = -1;
  expect_error([&] { model->forward(ids); }, {"token id -1", "outside the vocabulary of 256"});
  expect_error([&] { model->forward(ids.to(at::kFloat)); }, {"input_ids must be I64 or I32"});
  expect_error([&] { model->forward(ids[0]); }, {"input_ids must be (batch, seq)", "[16]"});
}

TEST(LlamaVariantsErrors, AttentionMaskWrongShapeRefused) {
  at::NoGradGuard ng;
  Llama model = load_fixture_model();
  at::Tensor ids = reference().tensor("input_ids");
  expect_error([&] { model->forward(ids, at::ones({2, 15}, at::kLong)); },
               {"attention_mask must be (2, 16)", "found [2, 15]"});
  expect_error([&] { model->forward(ids, at::ones({16}, at::kLong)); }, {"attention_mask must be (2, 16)", "[16]"});
}

TEST(LlamaVariantsErrors, LoadDtypeMustBeFloating) {
  LlamaLoadOptions o;
  o.dtype = at::kInt;
  expect_error([&] { load_dir(fixture_dir(), o); }, {"backbone dtype must be floating"});
}

// ---------------------------------------------------------------------------
// KV cache.

TEST(LlamaVariants, KvCacheIncrementalEqualsFullForward) {
  at::NoGradGuard ng;
  Llama model = load_fixture_model();
  at::Tensor ids = reference().tensor("input_ids");  // (2, 16)
  at::Tensor full = model->forward(ids).logits;
  KVCache cache = model->new_cache(2, 16);
  std::vector<at::Tensor> parts{model->forward(ids.narrow(1, 0, 10), {}, {}, &cache).logits};
  EXPECT_EQ(cache.length, 10);
  for (int64_t t = 10; t < 16; ++t) parts.push_back(model->forward(ids.narrow(1, t, 1), {}, {}, &cache).logits);
  EXPECT_EQ(cache.length, 16);
  double d = max_abs_diff(at::cat(parts, 1), full);
  std::cout << "[parity] prefill 10 + 6 cached single-token steps vs full forward max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-5);
  // A full cache refuses another position.
  expect_error([&] { model->forward(ids.narrow(1, 0, 1), {}, {}, &cache); },
               {"KV cache holds 16 positions, 17 needed"});
}

// ---------------------------------------------------------------------------
// generate().

// Greedy decoding by hand: full re-forward of the whole sequence every step.
at::Tensor greedy_by_hand(LlamaImpl& model, at::Tensor seq, int64_t n) {
  const int64_t T = seq.size(1);
  for (int64_t i = 0; i < n; ++i) {
    at::Tensor logits = model.forward(seq).logits;
    at::Tensor next = logits.select(1, logits.size(1) - 1).argmax(-1);  // (B)
    seq = at::cat({seq, next.unsqueeze(1)}, 1);
  }
  return seq.narrow(1, T, n);
}

GenerateOptions greedy(int64_t n) {
  GenerateOptions o;
  o.max_new_tokens = n;
  return o;
}

TEST(LlamaGenerate, GreedyEqualsRecomputingWithoutCache) {
  at::NoGradGuard ng;
  Llama model = load_fixture_model();
  at::Tensor ids = reference().tensor("input_ids").narrow(1, 0, 8).contiguous();  // (2, 8)
  at::Tensor got = generate(*model, ids, {}, greedy(12));
  at::Tensor want = greedy_by_hand(*model, ids, 12);
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_TRUE(got.equal(want)) << "generate:\n" << got << "\nby hand:\n" << want;
  EXPECT_EQ(generate(*model, ids, {}, greedy(0)).sizes(), (std::vector<int64_t>{2, 0}));
}

TEST(LlamaGenerate, LeftPaddedRowMatchesGeneratingItAlone) {
  at::NoGradGuard ng;
  Llama model = load_fixture_model();
  at::Tensor ids = reference().tensor("input_ids");
  at::Tensor a = ids[0].narrow(0, 0, 10), b = ids[1];
  at::Tensor batch = at::stack({at::cat({at::zeros({6}, at::kLong), a}), b});
  at::Tensor mask = at::ones({2, 16}, at::kLong);
  mask[0].narrow(0, 0, 6).zero_();
  at::Tensor got = generate(*model, batch, mask, greedy(8));
  at::Tensor alone_a = generate(*model, a.unsqueeze(0), {}, greedy(8));
  at::Tensor alone_b = generate(*model, b.unsqueeze(0), {}, greedy(8));
  EXPECT_TRUE(got[0].equal(alone_a[0])) << "padded row:\n" << got[0] << "\nalone:\n" << alone_a[0];
  EXPECT_TRUE(got[1].equal(alone_b[0])) << "unpadded row:\n" << got[1] << "\nalone:\n" << alone_b[0];
  // Independent of the cache too.
  EXPECT_TRUE(alone_a.equal(greedy_by_hand(*model, a.unsqueeze(0), 8)));
  expect_error([&] { generate(*model, batch, at::ones({2, 15}, at::kLong), greedy(2)); },
               {"attention_mask must have the shape of input_ids"});
}

TEST(LlamaGenerate, StopIdEndsRowWithPadding) {
  at::NoGradGuard ng;
  Llama model = load_fixture_model();
  at::Tensor ids = reference().tensor("input_ids").narrow(1, 0, 8).contiguous();
  const int64_t N = 12;
  at::Tensor free_run = generate(*model, ids, {}, greedy(N));
  // Stop on row 0's third token; find where each row first emits it.
  const int64_t stop = free_run[0][2].item<int64_t>();
  GenerateOptions o = greedy(N);
  o.stop_ids = {stop};
  o.pad_id = 7;
  at::Tensor got = generate(*model, ids, {}, o);
  ASSERT_GE(got.size(1), 3);
  for (int64_t r = 0; r < 2; ++r) {
    int64_t first = -1;
    for (int64_t i = 0; i < free_run.size(1); ++i)
      if (free_run[r][i].item<int64_t>() == stop) {
        first = i;
        break;
      }
    const int64_t len = got.size(1);
    for (int64_t i = 0; i < len; ++i) {
      if (first < 0 || i <= first) {
        EXPECT_EQ(got[r][i].item<int64_t>(), free_run[r][i].item<int64_t>()) << "row " << r << " step " << i;
      } else {
        EXPECT_EQ(got[r][i].item<int64_t>(), 7) << "row " << r << " step " << i << " after its stop id";
      }
    }
  }
  // A single row stops right after its stop id: the output is shorter.
  const int64_t first0 = [&] {
    for (int64_t i = 0;; ++i)
      if (free_run[0][i].item<int64_t>() == stop) return i;
  }();
  at::Tensor single = generate(*model, ids.narrow(0, 0, 1), {}, o);
  EXPECT_EQ(single.size(1), first0 + 1);
  EXPECT_EQ(single[0][first0].item<int64_t>(), stop);
}

// BUG (firmware/llama.cpp:395-399, generate): after a row stops, its pad_id is
// fed back into the model as the next input token, so a pad_id outside the
// vocabulary (e.g. -1, a common "no pad token" value; the fixture has no
// pad_token_id) makes generate throw "input_ids holds token id -1, outside the
// vocabulary of 256" -- but only when one row stops before the others (a single
// row, or all rows stopping together, never re-enters the model). Input: the
// fixture's first 8 tokens of both rows, greedy, max_new_tokens 12,
// stop_ids = {row 0's third greedy token}, pad_id = -1. Enable when fixed
// (either validate pad_id up front or stop feeding finished rows' pads).
TEST(LlamaGenerate, OutOfVocabPadIdAfterEarlyStop) {
  at::NoGradGuard ng;
  Llama model = load_fixture_model();
  at::Tensor ids = reference().tensor("input_ids").narrow(1, 0, 8).contiguous();
  at::Tensor free_run = generate(*model, ids, {}, greedy(12));
  GenerateOptions o = greedy(12);
  o.stop_ids = {free_run[0][2].item<int64_t>()};
  o.pad_id = -1;
  at::Tensor got;
  ASSERT_NO_THROW(got = generate(*model, ids, {}, o));
  EXPECT_EQ(got[0][3].item<int64_t>(), -1);
}

TEST(LlamaGenerate, SamplingIsSeededAndVariesAcrossSeeds) {
  at::NoGradGuard ng;
  Llama model = load_fixture_model();
  at::Tensor ids = reference().tensor("input_ids").narrow(1, 0, 8).contiguous();
  GenerateOptions o;
  o.max_new_tokens = 10;
  o.temperature = 5.0;  // near-uniform over 256 tokens: two seeds agreeing on 20 draws is ~impossible
  o.seed = 42;
  at::Tensor first = generate(*model, ids, {}, o);
  at::Tensor again = generate(*model, ids, {}, o);
  EXPECT_TRUE(first.equal(again)) << "same seed must reproduce";
  EXPECT_GE(first.min().item<int64_t>(), 0);
  EXPECT_LT(first.max().item<int64_t>(), 256);
  int differing = 0;
  for (uint64_t seed : {1, 2, 3, 4, 5}) {
    o.seed = seed;
    if (!generate(*model, ids, {}, o).equal(first)) ++differing;
  }
  EXPECT_GE(differing, 1) << "temperature 5 sampling gave the same tokens for 6 seeds";
  EXPECT_FALSE(first.equal(generate(*model, ids, {}, greedy(10)))) << "temperature 5 sampling looks greedy";
}

TEST(LlamaGenerate, TinyTopPEqualsGreedy) {
  at::NoGradGuard ng;
  Llama model = load_fixture_model();
  at::Tensor ids = reference().tensor("input_ids").narrow(1, 0, 8).contiguous();
  GenerateOptions o;
  o.max_new_tokens = 10;
  o.temperature = 1.0;
  o.top_p = 1e-6;
  for (uint64_t seed : {0, 1, 2}) {
    o.seed = seed;
    EXPECT_TRUE(generate(*model, ids, {}, o).equal(generate(*model, ids, {}, greedy(10)))) << "seed " << seed;
  }
}

TEST(LlamaGenerate, BadOptionsRefused) {
  at::NoGradGuard ng;
  Llama model = load_fixture_model();
  at::Tensor ids = reference().tensor("input_ids");
  GenerateOptions o;
  o.temperature = -1;
  expect_error([&] { generate(*model, ids, {}, o); }, {"temperature must be >= 0"});
  o = {};
  o.top_p = 0;
  expect_error([&] { generate(*model, ids, {}, o); }, {"top_p must be in (0, 1]"});
  o = {};
  o.max_new_tokens = -1;
  expect_error([&] { generate(*model, ids, {}, o); }, {"max_new_tokens must be >= 0"});
  expect_error([&] { generate(*model, ids.narrow(1, 0, 0), {}, GenerateOptions{}); },
               {"generate needs input_ids (batch, seq>0)"});
}

}  // namespace
}  // namespace m4
