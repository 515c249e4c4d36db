// Demo firmware: seeded random LLaMA weights + a SentencePiece tokenizer.
#include "firmware/demo.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <fstream>

#include "firmware/atomic_file.h"
#include "firmware/error.h"
#include "firmware/llama.h"
#include "firmware/safetensors.h"
#include "firmware/sha256.h"
#include "firmware/tokenizer.h"

namespace m4 {
namespace fs = std::filesystem;

namespace {
constexpr const char* kCorpusDir = "/usr/share/common-licenses";
constexpr const char* kCorpusFiles[] = {"GPL-3", "LGPL-2.1", "Apache-2.0", "MPL-2.0", "Artistic", "GFDL-1.3"};
constexpr int64_t kDemoVocab = 1024;
}  // namespace

std::vector<std::string> demo_tokenizer_corpus() {
  std::vector<std::string> lines;
  for (const char* f : kCorpusFiles) {
    const fs::path p = fs::path(kCorpusDir) / f;
    M4_CHECK(fs::exists(p), ErrorCode::kIo, p.string(),
             ": missing (the demo tokenizer trains on Debian's base-files license texts)");
    std::ifstream in(p);
    for (std::string line; std::getline(in, line);) {
      size_t a = line.find_first_not_of(" \t");
      if (a == std::string::npos) continue;
      lines.push_back(line.substr(a));
    }
  }
  return lines;
}

LlamaConfig demo_backbone_config(int64_t vocab_size) {
  LlamaConfig c;
  c.vocab_size = vocab_size;
  c.hidden_size = 128;
  c.intermediate_size = 344;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 32;
  c.max_position_embeddings = 512;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000.0;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  c.pad_token_id = 0;
  return c;
}

FirmwareManifest init_demo(const DemoOptions& o) {
  // Train the tokenizer first: its vocabulary size fixes the embedding shape.
  // BPE training on one thread is deterministic, so the seed only drives the weights.
  const std::string spm = Tokenizer::train(
      "--model_type=bpe --vocab_size=" + std::to_string(kDemoVocab) +
          " --character_coverage=1.0 --num_threads=1"
          " --pad_id=0 --unk_id=3 --bos_id=1 --eos_id=2 --max_sentence_length=4096"
          "  --minloglevel=4 --byte_fallback=true",
      demo_tokenizer_corpus());
  LlamaConfig c = demo_backbone_config(kDemoVocab);

  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  NamedTensors tensors;
  for (const auto& [name, shape] : LlamaImpl::expected_shapes(c)) {
    at::Tensor t = at::empty(shape, at::kFloat);
    if (name.find("norm") != std::string::npos) {
      t.normal_(1.0, 0.02, gen);  // norm gains near 1, not exactly 1
    } else {
      t.normal_(0.0, 0.02, gen);  // HF's initializer_range
    }
    tensors.emplace_back(name == "lm_head.weight" ? name : "model." + name, t);
  }
  nlohmann::json hf_config = c.to_json();
  hf_config["architectures"] = {"LlamaForCausalLM"};
  hf_config["model_type"] = "llama";
  hf_config["torch_dtype"] = "float32";

  nlohmann::json provenance = {
      {"backbone", {{"source", "m4forge firmware init-demo"}, {"seed", o.seed},
                    {"weights", "random N(0, 0.02^2), norms N(1, 0.02^2): untrained"},
                    {"tokenizer_corpus", std::string(kCorpusDir) + " (Debian base-files)"}}}};
  return create_firmware(o.out, o.name, o.version, provenance, [&](const fs::path& staging) {
    fs::create_directories(staging / "backbone");
    write_safetensors(staging / "backbone/model.safetensors", tensors, {{"format", "pt"}});
    write_file_atomic(staging / "backbone/config.json", hf_config.dump(1) + "\n");
    write_file_atomic(staging / "backbone/tokenizer.model", spm);
    FirmwareModule m;
    m.arch = fwkeys::kArchLlama;
    m.config = c.to_json();
    m.weights = {"backbone/model.safetensors"};
    m.assets["tokenizer.model"] = "backbone/tokenizer.model";
    return std::map<std::string, FirmwareModule>{{fwkeys::kBackbone, m}};
  });
}

}  // namespace m4
