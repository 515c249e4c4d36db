// quantized_bench: what a quantized firmware (m4forge firmware quantize) costs
// and gives, one measurement per process so peak RSS is that measurement's:
//   make    --out FW [shape]            a seeded random f32 LLaMA backbone firmware (default ~2.2 GB)
//   forward --firmware FW               full-sequence forward: tokens/s, peak RSS
//   lora    --firmware FW [--r 8]       LoRA (q, v) training step: seconds, peak RSS
//   ppl     --firmware FW --text F [--adapter A]   perplexity of each line, BOS-prefixed
//   ids     --firmware FW --text F --seq N --out IDS.safetensors   the lines' tokens packed into rows
// bench/quantized_firmware.sh and bench/quantized_quality.sh drive it; see bench/README.md.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <sys/resource.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "bench/bench_llama.h"
#include "bench/timing.h"
#include "core/cpu_runtime.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "firmware/firmware.h"
#include "firmware/llama.h"
#include "firmware/module_loader.h"
#include "firmware/tokenizer.h"
#include "peft/adapter.h"

namespace fs = std::filesystem;

namespace {

struct Args {
  std::string verb, firmware, out, text, adapter;
  int threads = 2, iters = 3;
  int64_t hidden = 2048, intermediate = 5632, layers = 8, heads = 16, vocab = 32000;
  int64_t batch = 1, seq = 256, r = 8;
};

[[noreturn]] void usage(const char* argv0, int code) {
  std::fprintf(stderr,
               "usage: %s make --out FW [--hidden 2048 --intermediate 5632 --layers 8 --heads 16 --vocab 32000]\n"
               "       %s forward|lora --firmware FW [--batch 1 --seq 256 --iters 3 --threads 2 --r 8]\n"
               "       %s ppl --firmware FW --text FILE [--adapter A.safetensors]\n"
               "       %s ids --firmware FW --text FILE --seq N --out IDS.safetensors\n",
               argv0, argv0, argv0, argv0);
  std::exit(code);
}

Args parse_args(int argc, char** argv) {
  if (argc < 2) usage(argv[0], 2);
  Args a;
  a.verb = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string s = argv[i];
    if (i + 1 >= argc) usage(argv[0], 2);
    const std::string v = argv[++i];
    if (s == "--firmware") a.firmware = v;
    else if (s == "--out") a.out = v;
    else if (s == "--text") a.text = v;
    else if (s == "--adapter") a.adapter = v;
    else if (s == "--threads") a.threads = std::atoi(v.c_str());
    else if (s == "--iters") a.iters = std::max(1, std::atoi(v.c_str()));
    else if (s == "--hidden") a.hidden = std::atoll(v.c_str());
    else if (s == "--intermediate") a.intermediate = std::atoll(v.c_str());
    else if (s == "--layers") a.layers = std::atoll(v.c_str());
    else if (s == "--heads") a.heads = std::atoll(v.c_str());
    else if (s == "--vocab") a.vocab = std::atoll(v.c_str());
    else if (s == "--batch") a.batch = std::atoll(v.c_str());
    else if (s == "--seq") a.seq = std::atoll(v.c_str());
    else if (s == "--r") a.r = std::atoll(v.c_str());
    else usage(argv[0], 2);
  }
  return a;
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

using m4::bench::time_median;

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  M4_CHECK(in.good(), m4::ErrorCode::kIo, path, ": cannot read");
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) out.push_back(l);
  }
  return out;
}

int make(const Args& a) {
  const m4::LlamaConfig c = m4::bench::bench_llama_config(a.hidden, a.intermediate, a.layers, a.heads, a.vocab);
  m4::create_firmware(a.out, "bench-backbone", "1.0.0", {{"bench", "quantized_bench make, seed 0"}},
                      [&](const fs::path& staging) {
                        fs::create_directories(staging / "backbone");
                        m4::write_safetensors(staging / "backbone" / "model.safetensors",
                                              m4::bench::bench_llama_weights(c), {{"format", "pt"}});
                        m4::FirmwareModule m;
                        m.arch = "llama";
                        m.config = c.to_json();
                        m.weights = {"backbone/model.safetensors"};
                        return std::map<std::string, m4::FirmwareModule>{{"backbone", m}};
                      });
  std::printf("quantized_bench make: %s (%s)\n", a.out.c_str(), c.summary().c_str());
  return 0;
}

std::shared_ptr<m4::LlamaImpl> backbone(const m4::Firmware& fw) {
  return std::dynamic_pointer_cast<m4::LlamaImpl>(m4::load_firmware_module(fw, "backbone"));
}

int forward(const Args& a) {
  const m4::Firmware fw = m4::Firmware::open(a.firmware);
  auto llama = backbone(fw);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const at::Tensor ids = at::randint(3, llama->config().vocab_size, {a.batch, a.seq}, gen, at::kLong);
  at::NoGradGuard ng;
  const double s = time_median(a.iters, [&] { llama->forward(ids); });
  std::printf("quantized_bench forward: %s: %.1f tokens/s (%.3f s per %lld x %lld), peak RSS %.0f MiB\n",
              fw.label().c_str(), a.batch * a.seq / s, s, static_cast<long long>(a.batch), static_cast<long long>(a.seq),
              peak_rss_mib());
  return 0;
}

int lora(const Args& a) {
  const m4::Firmware fw = m4::Firmware::open(a.firmware);
  auto llama = backbone(fw);
  const auto cfg = m4::PeftConfig::from_json(
      {{"trainable", {{"backbone", "lora"}}},
       {"peft", {{"lora", {{"r", a.r}, {"alpha", 2 * a.r}, {"targets", {"backbone.layers.*.self_attn.{q,v}_proj"}}}}}}},
      "bench");
  m4::Adapter adapter({{"backbone", llama}}, cfg, fw.label());
  {
    at::NoGradGuard ng;
    for (auto& p : adapter.parameters()) p.tensor.normal_(0, 0.01);
  }
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const at::Tensor ids = at::randint(3, llama->config().vocab_size, {a.batch, a.seq}, gen, at::kLong);
  torch::optim::AdamW opt(adapter.trainable_tensors(), torch::optim::AdamWOptions(1e-4));
  adapter.train();
  const m4::LlamaForwardOptions hidden_only{/*logits=*/false, /*hidden_states=*/true};
  double loss = 0;
  const double s = time_median(a.iters, [&] {
    opt.zero_grad();
    const auto out = llama->forward(ids, {}, {}, nullptr, hidden_only);
    const at::Tensor& h = out.hidden_states.back();
    const int64_t T = h.size(1);
    at::Tensor l = at::cross_entropy_loss(llama->logits_of(h.narrow(1, 0, T - 1).reshape({-1, h.size(2)})),
                                          ids.narrow(1, 1, T - 1).reshape({-1}));
    l.backward();
    opt.step();
    loss = l.item<double>();
  });
  std::printf("quantized_bench lora: %s: %.3f s per step (%lld x %lld tokens, r %lld on q,v; %.1f tokens/s), loss %.4f, "
              "peak RSS %.0f MiB\n",
              fw.label().c_str(), s, static_cast<long long>(a.batch), static_cast<long long>(a.seq),
              static_cast<long long>(a.r), a.batch * a.seq / s, loss, peak_rss_mib());
  return 0;
}

int ppl(const Args& a) {
  const m4::Firmware fw = m4::Firmware::open(a.firmware);
  auto llama = backbone(fw);
  std::unique_ptr<m4::Adapter> adapter;
  if (!a.adapter.empty()) adapter = m4::Adapter::open_file(a.adapter, {{"backbone", llama}}, fw.label());
  const m4::Tokenizer tok = fw.tokenizer();
  double nll = 0;
  int64_t tokens = 0;
  const auto lines = lines_of(a.text);
  at::NoGradGuard ng;
  for (const auto& line : lines) {
    std::vector<int64_t> ids = tok.encode(line);
    ids.insert(ids.begin(), tok.bos_id());
    const at::Tensor t = at::tensor(ids, at::kLong).view({1, -1});
    const at::Tensor logits = llama->forward(t).logits[0];  // (T, vocab)
    const int64_t T = t.size(1);
    nll += at::cross_entropy_loss(logits.narrow(0, 0, T - 1), t[0].narrow(0, 1, T - 1), {}, at::Reduction::Sum)
               .item<double>();
    tokens += T - 1;
  }
  std::printf("quantized_bench ppl: %s%s on %s: %lld lines, %lld tokens, NLL %.4f nats/token, perplexity %.3f\n",
              fw.label().c_str(), a.adapter.empty() ? "" : (" + " + fs::path(a.adapter).parent_path().filename().string()).c_str(),
              fs::path(a.text).filename().c_str(), static_cast<long long>(lines.size()), static_cast<long long>(tokens),
              nll / tokens, std::exp(nll / tokens));
  return 0;
}

int ids(const Args& a) {
  const m4::Firmware fw = m4::Firmware::open(a.firmware);
  const m4::Tokenizer tok = fw.tokenizer();
  std::vector<int64_t> stream;
  for (const auto& line : lines_of(a.text)) {
    stream.push_back(tok.bos_id());
    for (int64_t id : tok.encode(line)) stream.push_back(id);
  }
  const int64_t rows = static_cast<int64_t>(stream.size()) / a.seq;
  M4_CHECK(rows > 0, m4::ErrorCode::kInvalidArgument, a.text, ": ", stream.size(), " tokens, fewer than one row of ", a.seq);
  stream.resize(rows * a.seq);
  m4::write_safetensors(a.out, {{"input_ids", at::tensor(stream, at::kLong).view({rows, a.seq})}});
  std::printf("quantized_bench ids: %s: %lld rows of %lld tokens\n", a.out.c_str(), static_cast<long long>(rows),
              static_cast<long long>(a.seq));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  m4::restart_if_blas_misdetected_cpu(argv);
  const Args a = parse_args(argc, argv);
  m4::configure_cpu_runtime(a.threads);
  try {
    if (a.verb == "make") return make(a);
    if (a.verb == "forward") return forward(a);
    if (a.verb == "lora") return lora(a);
    if (a.verb == "ppl") return ppl(a);
    if (a.verb == "ids") return ids(a);
  } catch (const m4::Error& e) {
    std::fprintf(stderr, "quantized_bench: error: %s\n", e.what());
    return 1;
  }
  usage(argv[0], 2);
}
