// Quantized firmware (firmware/quantized_weight.h, quantize.h): the codes and
// scales against a plain-loop reference, the 4-bit nibble order, the
// quantized Linear's forward and gradient against its dequantized dense
// weight, `firmware quantize` on the HF fixture (own id, derived_from hashed,
// zero-copy views, logits near the source's), and every malformed layout.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_file.h"
#include "core/safetensors.h"
#include "firmware/clip.h"
#include "firmware/demo.h"
#include "firmware/firmware.h"
#include "firmware/linear.h"
#include "firmware/llama.h"
#include "firmware/module_loader.h"
#include "firmware/quantize.h"
#include "firmware/quantized_weight.h"
#include "firmware/weight_set.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using test::expect_error;
using test::max_abs_diff;

at::Tensor random_weight(int64_t out, int64_t in, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn({out, in}, gen);
}

// The reference: per row and group, scale = max|w| / qmax, q = clamp(round(w / scale)), in doubles.
void expect_matches_reference(const at::Tensor& w, const QuantizedWeight& q, int bits, int64_t group) {
  const int64_t out = w.size(0), in = w.size(1);
  const double qmax = bits == 8 ? 127 : 7;
  const at::Tensor deq = q.dequantize(at::kFloat);
  ASSERT_EQ(deq.sizes(), w.sizes());
  auto wa = w.accessor<float, 2>();
  auto da = deq.accessor<float, 2>();
  auto sa = q.scale.accessor<float, 2>();
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t g0 = 0, gi = 0; g0 < in; g0 += group, ++gi) {
      double amax = 0;
      for (int64_t c = g0; c < std::min(in, g0 + group); ++c) amax = std::max(amax, std::abs(double(wa[r][c])));
      const double scale = amax / qmax;
      ASSERT_NEAR(sa[r][gi], scale, 1e-7 * std::max(1.0, scale)) << "row " << r << " group " << gi;
      for (int64_t c = g0; c < std::min(in, g0 + group); ++c) {
        const double code = scale > 0 ? std::max(-qmax, std::min(qmax, std::nearbyint(wa[r][c] / scale))) : 0;
        ASSERT_NEAR(da[r][c], code * scale, 1e-6) << r << "," << c;
        ASSERT_LE(std::abs(da[r][c] - wa[r][c]), scale / 2 + 1e-6) << r << "," << c;
      }
    }
  }
}

TEST(QuantizedWeight, EightBitPerChannelMatchesTheReference) {
  const at::Tensor w = random_weight(6, 40, 1);
  const QuantizedWeight q = quantize_weight(w, 8, 0);
  EXPECT_EQ(q.data.scalar_type(), at::kChar);
  EXPECT_EQ(q.data.sizes(), w.sizes());
  EXPECT_EQ(q.scale.sizes(), (at::IntArrayRef{6, 1}));
  EXPECT_EQ(q.bits(), 8);
  EXPECT_EQ(q.group_size(), 40);
  expect_matches_reference(w, q, 8, 40);
  // The largest weight of each row is +-127 exactly.
  EXPECT_EQ(q.data.abs().amax(1).to(at::kLong).min().item<int64_t>(), 127);
}

TEST(QuantizedWeight, FourBitGroupsIncludingARaggedLastGroupMatchTheReference) {
  // 40 columns: groups of 8 (5), of 16 -> 3 groups of 14 (14, 14, 12), of 64 -> one of 40.
  for (auto [group, groups, width] : std::vector<std::array<int64_t, 3>>{{8, 5, 8}, {16, 3, 14}, {64, 1, 40}}) {
    const at::Tensor w = random_weight(5, 40, 2 + group);
    const QuantizedWeight q = quantize_weight(w, 4, group);
    EXPECT_EQ(q.data.scalar_type(), at::kByte);
    EXPECT_EQ(q.data.sizes(), (at::IntArrayRef{5, 20}));
    EXPECT_EQ(q.scale.size(1), groups) << group;
    EXPECT_EQ(q.group_size(), width) << group;
    EXPECT_EQ(q.in_features(), 40);
    expect_matches_reference(w, q, 4, width);
  }
}

TEST(QuantizedWeight, FourBitPacksColumnPairsLowNibbleFirstOffsetByEight) {
  // One row: -7, +7, 0, 3 (scale 1): codes + 8 = 1, 15, 8, 11 -> bytes 0xF1, 0xB8.
  const at::Tensor w = at::tensor({-7.0f, 7.0f, 0.0f, 3.0f}).view({1, 4});
  const QuantizedWeight q = quantize_weight(w, 4, 0);
  EXPECT_FLOAT_EQ(q.scale.item<float>(), 1.0f);
  EXPECT_EQ(q.data[0][0].item<int64_t>(), 0xF1);
  EXPECT_EQ(q.data[0][1].item<int64_t>(), 0xB8);
  EXPECT_EQ(max_abs_diff(q.dequantize(at::kFloat), w), 0.0);
  // A zero row gets scale 0 and dequantizes to zeros.
  const QuantizedWeight z = quantize_weight(at::zeros({2, 4}), 4, 2);
  EXPECT_EQ(z.scale.abs().sum().item<double>(), 0.0);
  EXPECT_EQ(z.dequantize(at::kFloat).abs().sum().item<double>(), 0.0);
}

// bf16 (autocast) takes ATen's ops, f32 a fused loop: the same values.
TEST(QuantizedWeight, Bf16DequantizationEqualsTheF32OneRounded) {
  for (int bits : {8, 4}) {
    for (int64_t group : {0, 16, 24}) {  // 40 columns: per channel, 3 groups, 2 groups (ragged)
      const QuantizedWeight q = quantize_weight(random_weight(7, 40, 11), bits, group);
      const at::Tensor f = q.dequantize(at::kFloat), b = q.dequantize(at::kBFloat16);
      EXPECT_EQ(b.scalar_type(), at::kBFloat16);
      EXPECT_LE(max_abs_diff(b.to(at::kFloat), f), 0.01 * f.abs().max().item<double>()) << bits << " " << group;
    }
  }
}

TEST(QuantizedWeight, BadArgumentsAreOneLineErrors) {
  expect_error([] { quantize_weight(at::zeros({2, 4}), 3, 0); }, {"bits must be 8 or 4, found 3"});
  expect_error([] { quantize_weight(at::zeros({2, 5}), 4, 0); }, {"even number of columns, found 5"});
  expect_error([] { quantize_weight(at::zeros({4}), 8, 0); }, {"only 2-D float weights"});
}

// The quantized Linear computes what a dense Linear of its dequantized weight
// does, forward and gradient, f32 and under bf16 autocast, without keeping the
// dequantized weight for backward.
TEST(QuantizedLinear, ForwardAndInputGradientEqualTheDequantizedDenseLayer) {
  // 300 x 8192 is dequantized 128 rows (4 MiB of f32) at a time: blocks of 128, 128 and 44.
  for (auto [bits, out, in] : std::vector<std::array<int64_t, 3>>{{8, 24, 32}, {4, 24, 32}, {8, 300, 8192}, {4, 300, 8192}}) {
    const at::Tensor w = random_weight(out, in, 7);
    const at::Tensor b = at::randn({out});
    QuantizedWeight q = quantize_weight(w, bits, bits == 8 ? 0 : 8);
    // With a bias and without one (a LLaMA projection has none).
    Linear quant(q, bits == 8 ? b : at::Tensor());
    Linear dense(q.dequantize(at::kFloat), bits == 8 ? b : at::Tensor());
    EXPECT_EQ(quant->in_features(), in);
    EXPECT_EQ(quant->out_features(), out);
    EXPECT_EQ(quant->weight_shape(), (std::vector<int64_t>{out, in}));
    EXPECT_FALSE(quant->weight.defined());
    auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
    const at::Tensor x0 = at::randn({3, 5, in}, gen);
    at::Tensor xa = x0.clone().requires_grad_(true), xb = x0.clone().requires_grad_(true);
    const at::Tensor ya = quant(xa), yb = dense(xb);
    const double tol = 1e-6 * std::sqrt(static_cast<double>(in)) * 10;
    EXPECT_LT(max_abs_diff(ya, yb), tol) << bits << " " << in;
    {
      at::NoGradGuard ng;  // the path without autograd
      EXPECT_LT(max_abs_diff(quant(x0), dense(x0)), tol) << bits << " " << in;
    }
    const at::Tensor g = at::randn(ya.sizes(), gen);
    (ya * g).sum().backward();
    (yb * g).sum().backward();
    EXPECT_LT(max_abs_diff(xa.grad(), xb.grad()), tol) << bits << " " << in;
    EXPECT_GT(xa.grad().abs().sum().item<double>(), 0.0);
    // Nothing frozen gets a gradient.
    for (const auto& p : quant->parameters()) EXPECT_FALSE(p.grad().defined());
  }
}

// ---------------------------------------------------------------------------
// firmware quantize

class QuantizedFirmware : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new test::TempDir();
    ImportHfOptions io;
    io.out = *tmp_ / "fw";
    io.name = "fixture";
    io.version = "1.2.3";
    io.backbone = test::fixtures() / "llama";
    import_hf(io);
    for (int bits : {8, 4}) quantize(bits, bits == 8 ? "q8" : "q4");
  }
  static void TearDownTestSuite() { delete tmp_; }
  static FirmwareManifest quantize(int bits, const std::string& out, int64_t group = -1) {
    QuantizeOptions o;
    o.source = *tmp_ / "fw";
    o.out = *tmp_ / out;
    o.bits = bits;
    o.group_size = group;
    return quantize_firmware(o);
  }
  static at::Tensor logits(const fs::path& dir) {
    const Firmware fw = Firmware::open(dir);
    auto m = fw.load_backbone({});
    at::NoGradGuard ng;
    const at::Tensor ids = at::arange(1, 33, at::kLong).view({2, 16});
    return m->forward(ids, at::Tensor(), at::Tensor(), nullptr, {}).logits;
  }
  static test::TempDir* tmp_;
};
test::TempDir* QuantizedFirmware::tmp_ = nullptr;

TEST_F(QuantizedFirmware, IsAFirmwareOfItsOwnWithItsLineageInTheId) {
  const Firmware src = Firmware::open(*tmp_ / "fw");
  const Firmware q8 = Firmware::open(*tmp_ / "q8"), q4 = Firmware::open(*tmp_ / "q4");
  EXPECT_NE(q8.id(), src.id());
  EXPECT_NE(q4.id(), q8.id());
  EXPECT_EQ(q8.manifest().name, "fixture-int8");
  EXPECT_EQ(q4.manifest().name, "fixture-int4");
  EXPECT_EQ(q8.manifest().version, "1.2.3");
  const json& d = q8.manifest().derived_from;
  EXPECT_EQ(d["firmware_id"], src.id());
  EXPECT_EQ(d["bits"], 8);
  EXPECT_EQ(d["group_size"], 0);
  EXPECT_EQ(d["method"], "symmetric-rtn");
  EXPECT_EQ(d["modules"], json::array({"backbone"}));
  EXPECT_EQ(q4.manifest().derived_from["group_size"], 64);
  EXPECT_EQ(describe_derivation(d), "an 8-bit quantization (backbone, per-channel scales) of fixture@1.2.3");
  // The id is over the actual bytes and the record: recomputing it agrees.
  EXPECT_NO_THROW(q8.verify());
  EXPECT_NO_THROW(q4.verify());
  // The tokenizer came along.
  EXPECT_EQ(q8.module("backbone").assets.size(), src.module("backbone").assets.size());
}

TEST_F(QuantizedFirmware, StoresI8AndPackedU8WithScalesAndKeepsEmbeddingsAndNorms) {
  const WeightSet w8 = Firmware::open(*tmp_ / "q8").weights("backbone");
  const WeightSet w4 = Firmware::open(*tmp_ / "q4").weights("backbone");
  const std::string q = "model.layers.0.self_attn.q_proj.weight", down = "model.layers.1.mlp.down_proj.weight";
  EXPECT_EQ(w8.info(q).dtype, DType::kI8);
  EXPECT_EQ(w8.info(q).shape, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(w8.info(q + "_scale").shape, (std::vector<int64_t>{64, 1}));
  EXPECT_EQ(w4.info(q).dtype, DType::kU8);
  EXPECT_EQ(w4.info(q).shape, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(w4.info(q + "_scale").shape, (std::vector<int64_t>{64, 1}));
  EXPECT_EQ(w4.info(down + "_scale").shape, (std::vector<int64_t>{64, 3}));  // 172 columns: 58 + 58 + 56
  for (const std::string kept : {"model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
                                 "model.layers.0.input_layernorm.weight"}) {
    EXPECT_EQ(w8.info(kept).dtype, DType::kF32) << kept;
    EXPECT_FALSE(w8.contains(kept + "_scale")) << kept;
  }
}

TEST_F(QuantizedFirmware, LoadsZeroCopyAndItsLogitsStayNearTheSource) {
  const Firmware q8 = Firmware::open(*tmp_ / "q8");
  const WeightSet ws = q8.weights("backbone");
  auto m = std::make_shared<LlamaImpl>(LlamaConfig::from_json(q8.module("backbone").config, "config"), ws, "q8");
  const auto& layer = m->layers[0]->as<LlamaDecoderLayerImpl>();
  ASSERT_TRUE(layer->self_attn->q_proj->quantized.has_value());
  const std::string q = "model.layers.0.self_attn.q_proj.weight";
  // The module's data is a view into the file's mapping, not a copy.
  EXPECT_EQ(layer->self_attn->q_proj->quantized->data.data_ptr(),
            static_cast<const void*>(ws.file_of(q).bytes(ws.info(q)).data()));
  const at::Tensor ref = logits(*tmp_ / "fw"), l8 = logits(*tmp_ / "q8"), l4 = logits(*tmp_ / "q4");
  const double scale = ref.abs().max().item<double>();
  const double d8 = max_abs_diff(l8, ref) / scale, d4 = max_abs_diff(l4, ref) / scale;
  std::cout << "[quantize] fixture logits max |diff| / max |logit|: int8 " << d8 << ", int4 " << d4 << "\n";
  EXPECT_GT(d8, 0.0);  // it is quantized
  EXPECT_LT(d8, 0.02);
  EXPECT_LT(d4, 0.3);
  EXPECT_LT(d8, d4);
}

TEST_F(QuantizedFirmware, AnEditedLineageRecordChangesNothingButIsRefused) {
  test::TempDir t;
  fs::copy(*tmp_ / "q8", t / "q8", fs::copy_options::recursive);
  json j = read_json_file(t / "q8" / "firmware.json");
  j["derived_from"]["bits"] = 4;  // a firmware claiming another lineage
  std::ofstream(t / "q8" / "firmware.json") << j.dump(1);
  expect_error([&] { Firmware::open(t / "q8"); }, {"firmware_id does not match", "derived_from"});
  j["derived_from"]["bits"] = 5;
  std::ofstream(t / "q8" / "firmware.json") << j.dump(1);
  expect_error([&] { Firmware::open(t / "q8"); }, {"'derived_from': 'bits' must be 8 or 4"});
  j["derived_from"]["bits"] = 8;
  j["derived_from"]["modules"] = json::array({"img_enc"});
  std::ofstream(t / "q8" / "firmware.json") << j.dump(1);
  expect_error([&] { Firmware::open(t / "q8"); }, {"'modules' lists \"img_enc\", which is not a module of this firmware"});
}

TEST_F(QuantizedFirmware, BadRequestsAreOneLineErrorsAndLeaveNothing) {
  expect_error([&] { quantize(3, "bad"); }, {"--bits must be 8 or 4, found 3"});
  expect_error([&] { quantize(8, "bad", 1); }, {"--group-size must be 0 (per channel) or >= 2"});
  QuantizeOptions again;
  again.source = *tmp_ / "q8";
  again.out = *tmp_ / "bad";
  expect_error([&] { quantize_firmware(again); }, {"is already an 8-bit quantization", "quantize the source firmware"});
  QuantizeOptions other;
  other.source = *tmp_ / "fw";
  other.out = *tmp_ / "bad";
  other.modules = {"img_enc"};
  expect_error([&] { quantize_firmware(other); }, {"has no module 'img_enc'"});
  expect_error([&] { quantize(8, "q4"); }, {"already exists and is not an empty directory"});
  EXPECT_FALSE(fs::exists(*tmp_ / "bad"));
}

// Every module of the demo quantized: each encoder's layer projections load as
// quantized Linears (embeddings, patch and head projections stay), and CLIP
// vision's output stays near the f32 one.
TEST(QuantizedDemo, EveryModulesLayerProjectionsQuantizeAndLoad) {
  test::TempDir t;
  DemoOptions d;
  d.out = t / "fw";
  init_demo(d);
  QuantizeOptions o;
  o.source = d.out;
  o.out = t / "q8";
  o.modules = {"backbone", "img_enc", "txt_enc", "aud_i_enc", "aud_b_enc", "imu_enc"};
  quantize_firmware(o);
  const Firmware fw = Firmware::open(d.out), q8 = Firmware::open(t / "q8");
  EXPECT_NO_THROW(q8.verify());
  EXPECT_EQ(q8.manifest().derived_from["modules"].size(), 6u);
  for (const auto& name : o.modules) {
    auto m = load_firmware_module(q8, name);
    // Every Linear of a layer is quantized, and no other (patch, head or LM-head projections).
    int64_t quantized = 0, dense = 0;
    for (const auto& item : m->named_modules("", /*include_self=*/false)) {
      auto* lin = dynamic_cast<LinearImpl*>(item.value().get());
      if (lin == nullptr) continue;
      EXPECT_EQ(lin->quantized.has_value(), item.key().rfind("layers.", 0) == 0) << name << " " << item.key();
      (lin->quantized ? quantized : dense) += 1;
    }
    EXPECT_GE(quantized, 6) << name;
    std::cout << "[quantize] demo " << name << ": " << quantized << " quantized Linears, " << dense << " dense\n";
  }
  auto vf = std::dynamic_pointer_cast<ClipVisionImpl>(load_firmware_module(fw, "img_enc"));
  auto vq = std::dynamic_pointer_cast<ClipVisionImpl>(load_firmware_module(q8, "img_enc"));
  ASSERT_TRUE(vf && vq);
  at::NoGradGuard ng;
  const int64_t S = vf->config().image_size;
  const at::Tensor pixels = at::randn({2, 3, S, S}, at::make_generator<at::CPUGeneratorImpl>(5));
  const at::Tensor a = vf->forward(pixels).pooler_output, b = vq->forward(pixels).pooler_output;
  const double rel = max_abs_diff(a, b) / a.abs().max().item<double>();
  std::cout << "[quantize] demo img_enc INT8 pooled output max |diff| / max = " << rel << "\n";
  EXPECT_GT(rel, 0.0);
  EXPECT_LT(rel, 0.05);
}

// A stored quantized weight that does not fit its config, or a quantized
// tensor that must not be, is refused at load naming the tensor.
class QuantizedLayout : public QuantizedFirmware {
 protected:
  // The q8 backbone's tensors with `edit` applied, validated against its config.
  void expect_refused(const std::function<void(NamedTensors&)>& edit, std::initializer_list<std::string> needles) {
    const Firmware q8 = Firmware::open(*tmp_ / "q8");
    const WeightSet ws = q8.weights("backbone");
    NamedTensors t;
    for (const auto& n : ws.names()) t.emplace_back(n, ws.tensor(n));
    edit(t);
    test::TempDir d;
    write_safetensors(d / "model.safetensors", t, {});
    const LlamaConfig c = LlamaConfig::from_json(q8.module("backbone").config, "config");
    expect_error([&] { LlamaImpl::validate(c, WeightSet::open({d / "model.safetensors"}), "hostile.safetensors"); },
                 needles);
  }
  static void replace(NamedTensors& t, const std::string& name, const at::Tensor& v) {
    for (auto& [n, x] : t) {
      if (n == name) x = v;
    }
  }
};

TEST_F(QuantizedLayout, MisshapenOrMistypedDataAndScalesAreRefused) {
  const std::string q = "model.layers.0.self_attn.q_proj.weight";
  expect_refused([&](NamedTensors& t) { replace(t, q + "_scale", at::ones({64, 30})); },
                 {"hostile.safetensors", "'" + q + "_scale' has 30 groups per row, which do not split 64 columns"});
  expect_refused([&](NamedTensors& t) { replace(t, q + "_scale", at::ones({32, 1})); },
                 {"'" + q + "_scale' has shape [32, 1]"});
  expect_refused([&](NamedTensors& t) { replace(t, q + "_scale", at::ones({64, 1}, at::kInt)); },
                 {"scales must be F32, F16 or BF16"});
  expect_refused([&](NamedTensors& t) { replace(t, q, at::zeros({64, 16}, at::kByte)); },
                 {"'" + q + "' has shape [64, 16] but a 4-bit weight of [64, 64] is stored as [64, 32]"});
  expect_refused([&](NamedTensors& t) { replace(t, q, at::zeros({64, 64})); },
                 {"has dtype F32; quantized data must be I8 (8 bits) or U8 (4 bits)"});
  // A norm or the embeddings are never quantized.
  expect_refused([&](NamedTensors& t) { t.emplace_back("model.norm.weight_scale", at::ones({64, 1})); },
                 {"'model.norm.weight' is quantized", "only the layers' projection weights load quantized"});
  // Data without scales is a non-float weight.
  expect_refused([&](NamedTensors& t) {
    NamedTensors kept;
    for (auto& e : t) {
      if (e.first != q + "_scale") kept.push_back(e);
    }
    t = kept;
  }, {"'" + q + "' has dtype I8; weights must be F32, F16, BF16 or F64"});
}

}  // namespace
}  // namespace m4
