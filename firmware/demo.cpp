// Demo firmware: seeded random LLaMA weights + a SentencePiece tokenizer.
#include "firmware/demo.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/sha256.h"
#include "firmware/clip_tokenizer.h"
#include "firmware/llama.h"
#include "firmware/module_arch.h"
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

LlamaConfig demo_backbone_config(int64_t vocab_size, int64_t width) {
  LlamaConfig c;
  c.vocab_size = vocab_size;
  c.hidden_size = 128 * width;
  c.intermediate_size = 344 * width;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 32 * width;
  c.max_position_embeddings = 512;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000.0;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  c.pad_token_id = 0;
  return c;
}

NamedTensors random_module_weights(const ModuleArch& arch, const nlohmann::json& config, at::Generator& gen) {
  NamedTensors tensors;
  for (const auto& [name, shape] : arch.expected_shapes(config)) {
    at::Tensor t = at::empty(shape, at::kFloat);
    const size_t dot = name.rfind('.');
    const std::string owner = name.substr(0, dot == std::string::npos ? 0 : dot);
    const bool gain = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0 &&
                      owner.substr(owner.rfind('.') == std::string::npos ? 0 : owner.rfind('.') + 1).find("norm") !=
                          std::string::npos;
    t.normal_(gain ? 1.0 : 0.0, 0.02, gen);
    tensors.emplace_back(arch.stored_name(name), t);
  }
  return tensors;
}

namespace {

// A small CLIP byte-level BPE vocabulary (vocab.json + merges.txt) learned on
// the corpus, through ClipTokenizer's own pre-tokenisation: a merge-less
// tokenizer over the 256 byte symbols (and their "</w>" forms, CLIP's vocab
// order) splits text into symbols with "</w>" ending each word, then
// the most frequent adjacent pair is merged `merges` times (ties broken by the
// pair's text, so the result is deterministic).
std::pair<std::string, std::string> train_clip_bpe(const std::vector<std::string>& corpus, int merges) {
  const auto& bytes = clip_byte_symbols();
  std::vector<std::string> symbols(bytes.begin(), bytes.end());
  std::vector<std::string> vocab_order = symbols;
  for (const auto& sym : symbols) vocab_order.push_back(sym + "</w>");
  nlohmann::json vocab = nlohmann::json::object();
  for (const auto& v : vocab_order) vocab[v] = static_cast<int64_t>(vocab.size());
  nlohmann::json with_specials = vocab;
  with_specials["<|startoftext|>"] = static_cast<int64_t>(vocab.size());
  with_specials["<|endoftext|>"] = static_cast<int64_t>(vocab.size()) + 1;
  ClipTokenizer splitter =
      ClipTokenizer::from_strings(with_specials.dump(), "#version: 0.2\n", "demo vocab", "demo merges");

  // word (as symbols) -> count
  std::map<std::vector<std::string>, int64_t> words;
  for (const auto& line : corpus) {
    std::vector<std::string> word;
    for (auto& tok : splitter.tokenize(line)) {
      word.push_back(tok);
      if (tok.size() >= 4 && tok.compare(tok.size() - 4, 4, "</w>") == 0) {
        ++words[word];
        word.clear();
      }
    }
  }
  std::string merges_txt = "#version: 0.2\n";
  for (int m = 0; m < merges; ++m) {
    std::map<std::pair<std::string, std::string>, int64_t> pairs;
    for (const auto& [w, n] : words)
      for (size_t i = 0; i + 1 < w.size(); ++i) pairs[{w[i], w[i + 1]}] += n;
    if (pairs.empty()) break;
    auto best = pairs.begin();
    for (auto it = pairs.begin(); it != pairs.end(); ++it)
      if (it->second > best->second) best = it;  // map order breaks ties
    const auto [first, second] = best->first;
    merges_txt += first + " " + second + "\n";
    vocab[first + second] = static_cast<int64_t>(vocab.size());
    std::map<std::vector<std::string>, int64_t> next;
    for (const auto& [w, n] : words) {
      std::vector<std::string> out;
      for (size_t i = 0; i < w.size(); ++i) {
        if (i + 1 < w.size() && w[i] == first && w[i + 1] == second) {
          out.push_back(first + second);
          ++i;
        } else {
          out.push_back(w[i]);
        }
      }
      next[out] += n;
    }
    words = std::move(next);
  }
  vocab["<|startoftext|>"] = static_cast<int64_t>(vocab.size());
  vocab["<|endoftext|>"] = static_cast<int64_t>(vocab.size());
  return {vocab.dump(), merges_txt};
}

}  // namespace

FirmwareManifest init_demo(const DemoOptions& o) {
  // Train the tokenizers first: their vocabularies fix the embedding shapes.
  // BPE training on one thread is deterministic, so the seed only drives the weights.
  const std::vector<std::string> corpus = demo_tokenizer_corpus();
  const std::string spm = Tokenizer::train(
      "--model_type=bpe --vocab_size=" + std::to_string(kDemoVocab) +
          " --character_coverage=1.0 --num_threads=1"
          " --pad_id=0 --unk_id=3 --bos_id=1 --eos_id=2 --max_sentence_length=4096"
          "  --minloglevel=4 --byte_fallback=true",
      corpus);
  const auto [clip_vocab, clip_merges] = train_clip_bpe(corpus, 256);
  const ClipTokenizer clip_tok = ClipTokenizer::from_strings(clip_vocab, clip_merges, "demo vocab", "demo merges");

  // Every module, small. The encoders share one embedding width (64) so that
  // Path-2 can compare image/audio/IMU embeddings with text embeddings.
  M4_CHECK(o.width >= 1 && o.width <= 64, ErrorCode::kInvalidArgument, "demo firmware width must be in [1, 64], not ", o.width);
  const int64_t w = o.width, e = 64 * o.width, f = 128 * o.width;  // encoder width and feed-forward size
  nlohmann::json backbone = demo_backbone_config(kDemoVocab, w).to_json();
  const std::map<std::string, nlohmann::json> hf_configs = {
      {"backbone", backbone},
      {"img_enc", {{"hidden_size", e}, {"intermediate_size", f}, {"num_hidden_layers", 2},
                   {"num_attention_heads", 4}, {"image_size", 32}, {"patch_size", 8}, {"num_channels", 3},
                   {"projection_dim", e}, {"layer_norm_eps", 1e-5}, {"hidden_act", "quick_gelu"}}},
      {"txt_enc", {{"vocab_size", clip_tok.vocab_size()}, {"hidden_size", e}, {"intermediate_size", f},
                   {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"max_position_embeddings", 32},
                   {"projection_dim", e}, {"layer_norm_eps", 1e-5}, {"hidden_act", "quick_gelu"},
                   {"bos_token_id", clip_tok.bos_id()}, {"eos_token_id", clip_tok.eos_id()},
                   {"pad_token_id", clip_tok.pad_id()}}},
      {"aud_i_enc", {{"d_model", e}, {"encoder_layers", 2}, {"encoder_attention_heads", 4},
                     {"encoder_ffn_dim", f}, {"num_mel_bins", 80}, {"max_source_positions", 100},
                     {"activation_function", "gelu"}}},
      {"aud_b_enc", {{"hidden_size", e}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
                     {"intermediate_size", f}, {"num_mel_bins", 32}, {"max_length", 64}, {"patch_size", 16},
                     {"frequency_stride", 10}, {"time_stride", 10}, {"layer_norm_eps", 1e-12},
                     {"hidden_act", "gelu"}, {"qkv_bias", true}}},
      {"imu_enc", {{"channels", 6}, {"window", 128}, {"patch", 8}, {"hidden_size", e}, {"num_hidden_layers", 2},
                   {"num_attention_heads", 4}, {"intermediate_size", f}, {"projection_dim", e},
                   {"layer_norm_eps", 1e-6}, {"hidden_act", "gelu"}}},
  };

  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  std::map<std::string, FirmwareModule> modules;
  std::map<std::string, NamedTensors> weights;
  for (const auto& [slot, hf] : hf_configs) {  // map order: deterministic draws
    const ModuleArch& arch = arch_for_slot(slot);
    FirmwareModule m;
    m.arch = arch.name;
    m.config = arch.normalize(hf, "demo " + slot);
    m.weights = {slot + "/model.safetensors"};
    weights[slot] = random_module_weights(arch, m.config, gen);
    modules[slot] = m;
  }
  modules["backbone"].assets["tokenizer.model"] = "backbone/tokenizer.model";
  modules["txt_enc"].assets["vocab.json"] = "txt_enc/vocab.json";
  modules["txt_enc"].assets["merges.txt"] = "txt_enc/merges.txt";

  nlohmann::json provenance = {{"source", "m4forge firmware init-demo"},
                               {"seed", o.seed},
                               {"weights", "random N(0, 0.02^2), norm gains N(1, 0.02^2): untrained"},
                               {"tokenizer_corpus", std::string(kCorpusDir) + " (Debian base-files)"}};
  if (o.width != 1) provenance["width"] = o.width;
  return create_firmware(o.out, o.name, o.version, provenance, [&](const fs::path& staging) {
    for (const auto& [slot, m] : modules) {
      fs::create_directories(staging / slot);
      write_safetensors(staging / m.weights[0], weights.at(slot), {{"format", "pt"}});
      write_file_atomic(staging / slot / "config.json", m.config.dump(1) + "\n");
    }
    write_file_atomic(staging / "backbone/tokenizer.model", spm);
    write_file_atomic(staging / "txt_enc/vocab.json", clip_vocab);
    write_file_atomic(staging / "txt_enc/merges.txt", clip_merges);
    return modules;
  });
}

}  // namespace m4
