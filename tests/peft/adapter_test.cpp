// Adapters on the demo firmware: every method attaches and trains on its
// module (frozen bytes unchanged by hash), save/load is fail-closed, the PEFT
// config reports every problem, and HF PEFT import/export round-trips.
#include "peft/adapter.h"

#include <gtest/gtest.h>

#include <limits>
#include <torch/optim/adamw.h>

#include "core/atomic_file.h"
#include "core/safetensors.h"
#include "core/sha256.h"
#include "firmware/clip.h"
#include "firmware/demo.h"
#include "firmware/firmware.h"
#include "firmware/module_loader.h"
#include "firmware/projector.h"
#include "firmware/quantize.h"
#include "firmware/transformer_encoder.h"
#include "peft/head.h"
#include "peft/hf_peft.h"
#include "tests/peft/peft_test_util.h"

namespace m4 {
namespace {

using test::max_abs_diff;

class DemoFirmware : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    DemoOptions o;
    o.out = dir_->path() / "fw";
    init_demo(o);
    QuantizeOptions q;
    q.source = o.out;
    q.out = dir_->path() / "q4";
    q.bits = 4;
    q.group_size = 8;
    quantize_firmware(q);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::filesystem::path fw_dir() { return dir_->path() / "fw"; }
  static std::map<std::string, std::string> file_hashes(const std::filesystem::path& dir = fw_dir()) {
    std::map<std::string, std::string> h;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
      if (e.is_regular_file()) h[e.path().string()] = to_hex(sha256_file(e.path()));
    }
    return h;
  }
  static test::TempDir* dir_;
};
test::TempDir* DemoFirmware::dir_ = nullptr;

// A few AdamW steps on a loss of the component's output; returns (first, last) loss.
std::pair<double, double> train_steps(Adapter& adapter, const std::function<at::Tensor()>& loss_fn, int steps = 8) {
  torch::optim::AdamW opt(adapter.trainable_tensors(), torch::optim::AdamWOptions(1e-2));
  adapter.train();
  double first = 0, last = 0;
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    at::Tensor loss = loss_fn();
    loss.backward();
    adapter.check_frozen();
    opt.step();
    (i == 0 ? first : last) = loss.item<double>();
  }
  return {first, last};
}

TEST_F(DemoFirmware, EveryMethodTrainsAndTheFirmwareStaysByteIdentical) {
  const auto before = file_hashes();
  Firmware fw = Firmware::open(fw_dir());
  auto backbone = std::dynamic_pointer_cast<LlamaImpl>(load_firmware_module(fw, "backbone"));
  auto img = load_firmware_module(fw, "img_enc");
  const int64_t V = backbone->config().vocab_size;
  const at::Tensor ids = at::randint(0, V, {2, 12}, at::kLong);

  for (const char* method : {"lora", "prefix", "prompt"}) {
    Adapter a({{"backbone", backbone}},
              test::peft_config(std::string(R"({"trainable": {"backbone": ")") + method + R"("}})"), "demo");
    EXPECT_GT(a.trainable_count(), 0) << method;
    auto [first, last] = train_steps(a, [&] { return test::causal_lm_loss(backbone->forward(ids).logits, at::cat({at::full({2, a.config().trainable.at("backbone") == "prompt" ? a.config().prompt.num_virtual_tokens : 0}, -100, at::kLong), ids}, 1)); });
    EXPECT_LT(last, first) << method;
  }
  // LoRA + prefix on an encoder, with a classifier head on its pooled output.
  auto* vision = dynamic_cast<ClipVisionImpl*>(img.get());
  ASSERT_NE(vision, nullptr);
  const int64_t S = vision->config().image_size;
  const at::Tensor pixels = at::randn({4, 3, S, S});
  const at::Tensor labels = at::tensor(std::vector<int64_t>{0, 1, 2, 1}, at::kLong);
  for (const char* method : {"lora", "prefix"}) {
    Adapter a({{"img_enc", img}},
              test::peft_config(std::string(R"({"trainable": {"img_enc": ")") + method +
                                R"(", "head": "full"}, "peft": {"head": {"classes": 3, "hidden": 16})" +
                                (std::string(method) == "lora" ? R"(, "lora": {"targets": ["img_enc.layers.*.mlp.*"]})" : "") +
                                "}}"),
              "demo");
    auto* head = dynamic_cast<ClassifierHeadImpl*>(a.part("head"));
    ASSERT_NE(head, nullptr);
    auto [first, last] = train_steps(a, [&] {
      return at::cross_entropy_loss(head->forward(vision->forward(pixels).pooler_output), labels);
    });
    EXPECT_LT(last, first) << method;
  }
  // Path-1: projector from an audio encoder into the backbone.
  Adapter p({{"aud_i_enc", load_firmware_module(fw, "aud_i_enc")}, {"backbone", backbone}},
            test::peft_config(R"({"trainable": {"projector": "full", "backbone": "lora"}, "peft": {"projector": {"kind": "mlp"}}})"),
            "demo");
  auto* proj = dynamic_cast<ProjectorImpl*>(p.part("projector"));
  ASSERT_NE(proj, nullptr);
  EXPECT_EQ(proj->options().out_features, backbone->config().hidden_size);
  EXPECT_EQ(file_hashes(), before);
}

// The same methods over the demo's 4-bit backbone (QLoRA-style): each trains,
// no frozen tensor gets a gradient, and the quantized firmware's bytes stay as they were.
TEST_F(DemoFirmware, EveryBackboneMethodTrainsOverAQuantizedBackbone) {
  const std::filesystem::path q4 = dir_->path() / "q4";
  const auto before = file_hashes(q4);
  Firmware fw = Firmware::open(q4);
  auto backbone = std::dynamic_pointer_cast<LlamaImpl>(load_firmware_module(fw, "backbone"));
  ASSERT_TRUE(backbone->layers[0]->as<LlamaDecoderLayerImpl>()->mlp->down_proj->quantized.has_value());
  const int64_t V = backbone->config().vocab_size;
  const at::Tensor ids = at::randint(0, V, {2, 12}, at::kLong);
  for (const char* method : {"lora", "prefix", "prompt"}) {
    Adapter a({{"backbone", backbone}},
              test::peft_config(std::string(R"({"trainable": {"backbone": ")") + method + R"("})" +
                                (std::string(method) == "lora"
                                     ? R"(, "peft": {"lora": {"targets": ["backbone.layers.*.mlp.*_proj", "backbone.layers.*.self_attn.o_proj"]}})"
                                     : "") +
                                "}"),
              "demo-int4");
    const int64_t prompt = a.config().trainable.at("backbone") == "prompt" ? a.config().prompt.num_virtual_tokens : 0;
    auto [first, last] = train_steps(a, [&] {
      return test::causal_lm_loss(backbone->forward(ids).logits, at::cat({at::full({2, prompt}, -100, at::kLong), ids}, 1));
    });
    EXPECT_LT(last, first) << method;
    for (const auto& t : a.touched()) EXPECT_EQ(t.shape.size(), 2u) << method << " " << t.name;
  }
  // Path-1: a projector from an encoder into the quantized backbone, with LoRA on it.
  auto aud = load_firmware_module(fw, "aud_i_enc");
  Adapter p({{"aud_i_enc", aud}, {"backbone", backbone}},
            test::peft_config(R"({"trainable": {"projector": "full", "backbone": "lora"}, "peft": {"projector": {"kind": "linear"}}})"),
            "demo-int4");
  auto* proj = dynamic_cast<ProjectorImpl*>(p.part("projector"));
  ASSERT_NE(proj, nullptr);
  const at::Tensor embeds = at::randn({2, 6, proj->options().in_features});
  auto [first, last] = train_steps(p, [&] {
    return backbone->forward_embeds(proj->forward(embeds)).logits.pow(2).mean();
  });
  EXPECT_LT(last, first);
  EXPECT_EQ(file_hashes(q4), before);
}

TEST_F(DemoFirmware, AdaptersTakeTurnsOnOneSharedModule) {
  // What `m4forge serve` does with many adapters over one resident backbone:
  // each is detached between requests and attached for its own.
  Firmware fw = Firmware::open(fw_dir());
  auto backbone = std::dynamic_pointer_cast<LlamaImpl>(load_firmware_module(fw, "backbone"));
  const at::Tensor ids = at::randint(0, backbone->config().vocab_size, {1, 8}, at::kLong);
  at::NoGradGuard ng;
  const at::Tensor base = backbone->forward(ids).logits.clone();
  std::vector<std::unique_ptr<Adapter>> adapters;
  std::vector<at::Tensor> own;
  for (const char* method : {"lora", "prefix", "prompt"}) {
    adapters.push_back(std::make_unique<Adapter>(
        Adapter::Modules{{"backbone", backbone}},
        test::peft_config(std::string(R"({"trainable": {"backbone": ")") + method + R"("}})"), "demo"));
    for (auto& p : adapters.back()->parameters()) p.tensor.normal_(0, 0.5);
    adapters.back()->eval();
    at::Tensor out = backbone->forward(ids).logits;
    own.push_back(out.narrow(1, out.size(1) - 8, 8).clone());  // prompt tuning prepends soft tokens
    EXPECT_GT(max_abs_diff(own.back(), base), 1e-3) << method;
    // Another adapter may not attach while this one is.
    EXPECT_THROW(Adapter({{"backbone", backbone}}, test::peft_config(R"({"trainable": {"backbone": "lora"}})"), "demo"), Error);
    adapters.back()->detach();
    EXPECT_FALSE(adapters.back()->attached());
    EXPECT_EQ(max_abs_diff(backbone->forward(ids).logits, base), 0) << "detached: the firmware's own outputs";
  }
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < adapters.size(); ++i) {
      adapters[i]->attach();
      at::Tensor out = backbone->forward(ids).logits;
      EXPECT_EQ(max_abs_diff(out.narrow(1, out.size(1) - 8, 8), own[i]), 0) << i;
      const size_t other = (i + 1) % adapters.size();
      test::expect_error([&] { adapters[other]->attach(); }, {"already carries another adapter"});
      adapters[i]->detach();
    }
  }
  EXPECT_EQ(max_abs_diff(backbone->forward(ids).logits, base), 0);
}

TEST_F(DemoFirmware, SaveLoadRoundTripsAndLoadingFailsClosed) {
  Firmware fw = Firmware::open(fw_dir());
  auto backbone = load_firmware_module(fw, "backbone");
  const auto cfg = test::peft_config(R"({"trainable": {"backbone": "lora"}, "peft": {"lora": {"r": 4}}})");
  test::TempDir tmp;
  std::vector<NamedParameter> saved;
  {
    Adapter a({{"backbone", backbone}}, cfg, "firmware m4-demo");
    for (auto& p : a.parameters()) {
      at::NoGradGuard ng;
      p.tensor.normal_();
    }
    a.save(tmp / "a.safetensors");
    saved = a.parameters();
    for (auto& s : saved) s.tensor = s.tensor.detach().clone();
    SafetensorsFile f = SafetensorsFile::open(tmp / "a.safetensors");
    EXPECT_EQ(f.metadata().at("format"), kAdapterFormat);
    EXPECT_EQ(f.tensors().front().name.rfind("backbone.layers.0.self_attn.", 0), 0u);
  }
  Adapter b({{"backbone", backbone}}, cfg, "firmware m4-demo");
  b.load(tmp / "a.safetensors");
  auto loaded = b.parameters();
  ASSERT_EQ(loaded.size(), saved.size());
  for (size_t i = 0; i < saved.size(); ++i) EXPECT_TRUE(at::equal(loaded[i].tensor, saved[i].tensor)) << saved[i].name;

  // Missing tensor, extra tensor, wrong shape: each named, all in one message.
  SafetensorsFile f = SafetensorsFile::open(tmp / "a.safetensors");
  std::map<std::string, at::Tensor> t;
  for (const auto& info : f.tensors()) t[info.name] = f.tensor(info);
  auto missing = t;
  missing.erase("backbone.layers.1.self_attn.v_proj.lora_b");
  test::expect_error([&] { b.load_tensors(missing, "x.safetensors"); },
                     {"x.safetensors", "tensor 'backbone.layers.1.self_attn.v_proj.lora_b'", "is missing"});
  auto extra = t;
  extra["backbone.layers.0.self_attn.k_proj.lora_a"] = at::zeros({4, 8});
  test::expect_error([&] { b.load_tensors(extra, "x.safetensors"); },
                     {"tensor 'backbone.layers.0.self_attn.k_proj.lora_a' [4, 8] binds to no module", "nearest: backbone.layers.*.self_attn.q_proj.lora_a"});
  auto wrong = t;
  wrong["backbone.layers.0.self_attn.q_proj.lora_a"] = at::zeros({4, 7});
  test::expect_error([&] { b.load_tensors(wrong, "x.safetensors"); },
                     {"adapter tensor 'backbone.layers.0.self_attn.q_proj.lora_a' has shape [4, 7] but firmware m4-demo expects [4, ",
                      "hint: the adapter was built for another firmware"});
  // NaN or infinity in an adapter: refused, counted, naming the tensor.
  auto nan = t;
  nan["backbone.layers.0.self_attn.q_proj.lora_b"] = t["backbone.layers.0.self_attn.q_proj.lora_b"].clone();
  nan["backbone.layers.0.self_attn.q_proj.lora_b"].view({-1})[0] = std::numeric_limits<float>::quiet_NaN();
  nan["backbone.layers.0.self_attn.q_proj.lora_b"].view({-1})[1] = std::numeric_limits<float>::infinity();
  test::expect_error([&] { b.load_tensors(nan, "n.safetensors"); },
                     {"n.safetensors: adapter tensor 'backbone.layers.0.self_attn.q_proj.lora_b'", "1 NaN, 1 infinite"});
  // A failed load changes nothing.
  auto after = b.parameters();
  for (size_t i = 0; i < saved.size(); ++i) EXPECT_TRUE(at::equal(after[i].tensor, saved[i].tensor));
  // An adapter file for nothing at all is not a silent no-op.
  write_safetensors(tmp / "other.safetensors", {{"img_enc.layers.0.mlp.fc1.lora_a", at::zeros({2, 2})}});
  test::expect_error([&] { b.load(tmp / "other.safetensors"); }, {"other.safetensors", "is missing", "binds to no module"});
}

TEST(PeftConfig, ReportsEveryProblemAtOnce) {
  const std::string msg = test::expect_error(
      [] {
        test::peft_config(R"({"trainable": {"backbone": "lorra", "img_enc": "full", "txt_enc": "prompt", "decoder": "lora", "projector": "lora"},
          "peft": {"lora": {"r": 0, "dropout": 1.5, "targets": ["img_enc.layers.*.{q,v"], "rank": 3}, "prefx": {}}})");
      },
      {"test config", "trainable.backbone: unknown method 'lorra' (known: frozen, full, lora, prefix, prompt)",
       "trainable.img_enc: 'full' would copy a firmware module", "trainable.txt_enc: prompt tuning prepends",
       "trainable.decoder: unknown component", "trainable.projector: projector is an adapter part",
       "peft.lora.r must be >= 1", "peft.lora.dropout must be in [0, 1)", "unclosed '{'",
       "peft.lora: unknown key 'rank'", "peft: unknown key 'prefx'"});
  EXPECT_FALSE(msg.empty());
  test::expect_error([] { test::peft_config(R"({"trainable": {"backbone": "frozen"}, "peft": {"lora": {"targets": ["backbone.layers.*.mlp.up_proj"]}}})"); },
                     {"targets backbone, which trainable does not set to lora"});
}

TEST(PeftConfig, ComponentNotLoadedIsAnError) {
  auto llama = test::fixture_llama("llama");
  test::expect_error([&] { Adapter a({{"backbone", llama}}, test::peft_config(R"({"trainable": {"img_enc": "lora"}})"), "fw"); },
                     {"trainable.img_enc is lora, but img_enc is not loaded (loaded: backbone)"});
}

TEST(HfPeft, ImportExportRoundTripsEveryMethod) {
  for (const char* sub : {"lora", "prompt_tuning", "prefix_tuning"}) {
    auto llama = test::fixture_llama(std::string(sub) == "prefix_tuning" ? "prefix_tuning/base" : "llama");
    const auto dir = test::fixtures() / sub / "adapter";
    HfPeftAdapter hf = read_hf_peft(dir, *llama);
    Adapter a({{"backbone", llama}}, hf.config, "fixture");
    a.load_tensors(hf.tensors, dir.string());
    test::TempDir tmp;
    write_hf_peft(tmp / "out", a, *llama);
    // Same tensors under the same HF names, byte for byte.
    SafetensorsFile orig = SafetensorsFile::open(dir / "adapter_model.safetensors");
    SafetensorsFile back = SafetensorsFile::open(tmp / "out" / "adapter_model.safetensors");
    ASSERT_EQ(orig.tensors().size(), back.tensors().size()) << sub;
    for (const auto& info : orig.tensors()) {
      ASSERT_TRUE(back.contains(info.name)) << sub << " " << info.name;
      EXPECT_TRUE(at::equal(orig.tensor(info), back.tensor(info.name))) << sub << " " << info.name;
    }
    const auto cfg_in = nlohmann::json::parse(read_text_file(dir / "adapter_config.json"));
    const auto cfg_out = nlohmann::json::parse(read_text_file(tmp / "out" / "adapter_config.json"));
    for (const char* k : {"peft_type", "r", "lora_alpha", "target_modules", "num_virtual_tokens", "task_type"}) {
      if (cfg_in.contains(k)) {
        EXPECT_EQ(cfg_in[k], cfg_out[k]) << sub << " " << k;
      }
    }
    HfPeftAdapter again = read_hf_peft(tmp / "out", *llama);
    EXPECT_EQ(again.config.to_json(), hf.config.to_json()) << sub;
  }
}

TEST(HfPeft, SubsetOfLayersExportsAsAFullMatchRegex) {
  auto llama = test::fixture_llama("llama");
  Adapter a({{"backbone", llama}},
            test::peft_config(R"({"trainable": {"backbone": "lora"}, "peft": {"lora": {"targets": [{"pattern": "backbone.layers.1.self_attn.q_proj", "r": 2}, "backbone.layers.1.mlp.down_proj"]}}})"),
            "fixture");
  test::TempDir tmp;
  write_hf_peft(tmp / "out", a, *llama);
  const auto cfg = nlohmann::json::parse(read_text_file(tmp / "out" / "adapter_config.json"));
  EXPECT_TRUE(cfg["target_modules"].is_string());
  EXPECT_EQ(cfg["rank_pattern"]["model.layers.1.self_attn.q_proj"], 2);
  HfPeftAdapter back = read_hf_peft(tmp / "out", *llama);
  Adapter b({{"backbone", test::fixture_llama("llama")}}, back.config, "fixture");
  std::vector<std::string> na, nb;
  for (auto& p : a.parameters()) na.push_back(p.name + shape_str(p.tensor.sizes()));
  for (auto& p : b.parameters()) nb.push_back(p.name + shape_str(p.tensor.sizes()));
  EXPECT_EQ(na, nb);
}

TEST(HfPeft, BadAdapterDirectoriesGiveOneLineErrors) {
  auto llama = test::fixture_llama("llama");
  test::TempDir tmp;
  test::expect_error([&] { read_hf_peft(tmp.path(), *llama); }, {"no adapter_config.json"});
  std::filesystem::create_directories(tmp / "a");
  write_file_atomic(tmp / "a" / "adapter_config.json", R"({"peft_type": "IA3", "task_type": "CAUSAL_LM"})");
  write_safetensors(tmp / "a" / "adapter_model.safetensors", {{"x", at::zeros({1})}});
  test::expect_error([&] { read_hf_peft(tmp / "a", *llama); }, {"adapter_config.json", "peft_type 'IA3' is not supported"});
  write_file_atomic(tmp / "a" / "adapter_config.json",
                    R"({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 8, "target_modules": ["qq_proj"]})");
  test::expect_error([&] { read_hf_peft(tmp / "a", *llama); }, {"target module 'qq_proj' matches no Linear"});
  write_file_atomic(tmp / "a" / "adapter_config.json",
                    R"({"peft_type": "PREFIX_TUNING", "task_type": "CAUSAL_LM", "num_virtual_tokens": 8})");
  write_safetensors(tmp / "a" / "adapter_model.safetensors", {{"prompt_embeddings", at::zeros({8, 512})}});
  test::expect_error([&] { read_hf_peft(tmp / "a", *llama); },
                     {"prompt_embeddings has shape [8, 512]", "grouped-query attention"});
}

}  // namespace
}  // namespace m4
