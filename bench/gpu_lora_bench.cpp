// gpu_lora_bench: LoRA training throughput (tokens/s/GPU, step time, peak
// device memory, MFU) of the LLaMA backbone with seeded random weights made on
// the device, by default at LLaMA-2-7B's shape (issue 15). Each step is what
// `m4forge train` does for a causal-LM task: forward under bf16 autocast, the
// chunked LM-head loss (task/lm_loss.h), backward, AdamW on the f32 LoRA
// tensors. bench/gpu_check.sh runs it on a GPU machine; see bench/README.md.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_llama.h"
#include "bench/timing.h"
#include "core/autocast.h"
#include "core/cpu_runtime.h"
#include "core/device.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "firmware/linear.h"
#include "firmware/llama.h"
#include "firmware/weight_set.h"
#include "peft/adapter.h"
#include "task/lm_loss.h"
#include "train/adamw.h"

namespace fs = std::filesystem;

namespace {

struct Args {
  int64_t hidden = 4096, layers = 32, heads = 32, intermediate = 11008, vocab = 32000;
  int64_t seq = 2048, batch = 1, r = 16;
  int steps = 10, warmup = 2, threads = 0;
  std::string device = "auto", precision = "bf16", frozen_dtype = "f32";
  double peak_tflops = 989;  // H100/H200 SXM, dense bf16 (no sparsity)
  uint64_t seed = 0;
};

constexpr const char* kUsage =
    "usage: gpu_lora_bench [--hidden 4096 --layers 32 --heads 32 --intermediate 11008 --vocab 32000]\n"
    "                      [--seq 2048 --batch 1 --r 16 --steps 10 --warmup 2 --seed 0 --threads 0]\n"
    "                      [--device auto|cpu|cuda] [--precision bf16|f32] [--frozen-dtype f32|bf16]\n"
    "                      [--peak-tflops 989]\n";

int64_t positive(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  M4_CHECK(end != v.c_str() && *end == '\0' && n >= 1, m4::ErrorCode::kInvalidArgument, flag,
           " takes a positive integer, found '", v, "'");
  return n;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == "--help" || s == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    M4_CHECK(i + 1 < argc, m4::ErrorCode::kInvalidArgument, s, " needs a value (--help lists the flags)");
    const std::string v = argv[++i];
    if (s == "--hidden") a.hidden = positive(s, v);
    else if (s == "--layers") a.layers = positive(s, v);
    else if (s == "--heads") a.heads = positive(s, v);
    else if (s == "--intermediate") a.intermediate = positive(s, v);
    else if (s == "--vocab") a.vocab = positive(s, v);
    else if (s == "--seq") a.seq = positive(s, v);
    else if (s == "--batch") a.batch = positive(s, v);
    else if (s == "--r") a.r = positive(s, v);
    else if (s == "--steps") a.steps = static_cast<int>(positive(s, v));
    else if (s == "--warmup") a.warmup = v == "0" ? 0 : static_cast<int>(positive(s, v));
    else if (s == "--seed") a.seed = v == "0" ? 0 : static_cast<uint64_t>(positive(s, v));
    else if (s == "--threads") a.threads = v == "0" ? 0 : static_cast<int>(positive(s, v));
    else if (s == "--device") a.device = v;
    else if (s == "--precision") a.precision = v;
    else if (s == "--frozen-dtype") a.frozen_dtype = v;
    else if (s == "--peak-tflops") a.peak_tflops = std::atof(v.c_str());
    else M4_FAIL(m4::ErrorCode::kInvalidArgument, "unknown flag ", s, " (--help lists the flags)");
  }
  M4_CHECK(a.precision == "bf16" || a.precision == "f32", m4::ErrorCode::kInvalidArgument,
           "--precision: bf16 or f32, found '", a.precision, "'");
  M4_CHECK(a.frozen_dtype == "bf16" || a.frozen_dtype == "f32", m4::ErrorCode::kInvalidArgument,
           "--frozen-dtype: f32 or bf16, found '", a.frozen_dtype, "'");
  // A bf16 backbone computes in bf16 (LlamaImpl casts its activations to its
  // dtype), so "f32 precision" over it would be a bf16 run under another name.
  M4_CHECK(!(a.frozen_dtype == "bf16" && a.precision == "f32"), m4::ErrorCode::kInvalidArgument,
           "--frozen-dtype bf16 computes in bf16 (the backbone's activations take its dtype); use --precision bf16, "
           "or --frozen-dtype f32 for an f32 run");
  M4_CHECK(a.hidden % a.heads == 0, m4::ErrorCode::kInvalidArgument, "--hidden ", a.hidden,
           " is not a multiple of --heads ", a.heads);
  M4_CHECK(a.seq >= 2, m4::ErrorCode::kInvalidArgument, "--seq must be >= 2 (the loss predicts token t+1 from t)");
  M4_CHECK(a.peak_tflops > 0, m4::ErrorCode::kInvalidArgument, "--peak-tflops must be > 0");
  return a;
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// LlamaImpl is built only from a WeightSet (mapped safetensors), so the bench
// gives it a file with the full header and a data area that is one hole
// (ftruncate): validation sees every shape, the tensors are zero-copy views
// that are never touched, and no byte of weights exists on disk or on the
// host. make_weights_on() then replaces every parameter's data.
fs::path write_sparse_checkpoint(const m4::LlamaConfig& c, at::ScalarType dtype) {
  const m4::DType st = m4::from_scalar_type(dtype);
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& [name, shape] : m4::LlamaImpl::expected_shapes(c)) {
    uint64_t bytes = m4::dtype_size(st);
    for (int64_t d : shape) bytes *= static_cast<uint64_t>(d);
    header[m4::LlamaImpl::stored_name(name)] = {
        {"dtype", m4::dtype_name(st)}, {"shape", shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // 8-byte aligned data, as the writer does
  const fs::path path = fs::temp_directory_path() / ("gpu_lora_bench-" + std::to_string(::getpid()) + ".safetensors");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    M4_CHECK(out.good(), m4::ErrorCode::kIo, path.string(), ": cannot write");
    uint64_t n = json.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));  // u64 little-endian
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(json.data(), static_cast<std::streamsize>(json.size()));
    M4_CHECK(out.good(), m4::ErrorCode::kIo, path.string(), ": cannot write");
  }
  fs::resize_file(path, 8 + json.size() + offset);
  return path;
}

// Every backbone parameter made afresh on `dev`: N(0, 0.02) from the device's
// generator after at::manual_seed(seed), norms 1 (bench/bench_llama.h's
// distribution, not its CPU stream). set_data keeps each Linear's `weight`
// member, which shares the parameter's TensorImpl, pointing at the new data.
void make_weights_on(m4::LlamaImpl& llama, c10::Device dev, at::ScalarType dtype, uint64_t seed) {
  at::NoGradGuard ng;
  at::manual_seed(seed);
  const auto opts = at::TensorOptions().device(dev).dtype(dtype);
  for (auto& p : llama.named_parameters(/*recurse=*/true)) {
    at::Tensor t = p.key().find("norm") != std::string::npos ? at::ones(p.value().sizes(), opts)
                                                              : at::empty(p.value().sizes(), opts).normal_(0, 0.02);
    p.value().set_data(t);
  }
}

// Weights of every frozen Linear (the layers' projections and the LM head).
int64_t frozen_linear_params(torch::nn::Module& root) {
  int64_t n = 0;
  for (const auto& m : root.modules(/*include_self=*/true)) {
    if (const auto* lin = dynamic_cast<const m4::LinearImpl*>(m.get())) n += lin->out_features() * lin->in_features();
  }
  return n;
}

// FLOPs per trained token (one multiply-add = 2 FLOPs; matmuls only).
//   Frozen Linear weights N_frozen (every projection of every layer + the LM
//   head; the embedding is a lookup, no FLOPs): forward 2 N, backward the
//   input gradients 2 N and no weight gradients, so 4 N_frozen. (Layer 0's
//   q, k, v input gradients are not needed, since the embeddings take none,
//   but are counted: < 0.1% at 7B.)
//   LoRA tensors N_lora (r (in + out) per adapted Linear): forward 2 N,
//   input gradients 2 N, weight gradients 2 N: 6 N_lora.
//   Attention scores and values per layer: QK^T and PV, each 2 seq
//   (heads head_dim) per token forward, so 4 seq hidden; backward twice the
//   forward: 12 layers seq hidden per token over the full (seq x seq) square.
//   The causal mask needs only the lower half, so the MFU figure counts 6
//   layers seq hidden; the full count is printed beside it (PaLM appendix B
//   counts the full square).
struct Flops {
  int64_t n_frozen = 0, n_lora = 0;
  double frozen = 0, lora = 0, attn_full = 0;
  double causal() const { return frozen + lora + attn_full / 2; }
  double full() const { return frozen + lora + attn_full; }
};

Flops flops_per_token(const m4::LlamaConfig& c, int64_t n_frozen, int64_t n_lora, int64_t seq) {
  Flops f;
  f.n_frozen = n_frozen;
  f.n_lora = n_lora;
  f.frozen = 4.0 * static_cast<double>(n_frozen);
  f.lora = 6.0 * static_cast<double>(n_lora);
  f.attn_full = 12.0 * static_cast<double>(c.num_hidden_layers) * static_cast<double>(seq) *
                static_cast<double>(c.num_attention_heads * c.head_dim);
  return f;
}

std::string gb(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
  return buf;
}

int run(const Args& a) {
  const c10::Device dev = m4::choose_device(a.device, "--device");
  const bool bf16 = a.precision == "bf16";
  if (dev.is_cpu()) {
    m4::configure_cpu_runtime(a.threads, bf16 ? m4::MathKernels::kBf16 : m4::MathKernels::kF32);
  }
  const at::ScalarType frozen = a.frozen_dtype == "bf16" ? at::kBFloat16 : at::kFloat;
  m4::LlamaConfig c = m4::bench::bench_llama_config(a.hidden, a.intermediate, a.layers, a.heads, a.vocab);
  c.max_position_embeddings = std::max<int64_t>(c.max_position_embeddings, a.seq);

  const auto t_build = std::chrono::steady_clock::now();
  std::shared_ptr<m4::LlamaImpl> llama;
  {
    const fs::path sparse = write_sparse_checkpoint(c, frozen);
    std::optional<m4::WeightSet> ws;
    try {
      ws = m4::WeightSet::open({sparse});
    } catch (...) {
      fs::remove(sparse);
      throw;
    }
    fs::remove(sparse);  // the mapping outlives the name until the views are replaced
    llama = std::make_shared<m4::LlamaImpl>(c, *ws, "gpu_lora_bench (random weights)", m4::LlamaLoadOptions{frozen});
  }
  make_weights_on(*llama, dev, frozen, a.seed);
  int64_t copies = 0;
  if (bf16) copies = m4::keep_bf16_weights(*llama);  // as m4forge train does for precision bf16

  const auto cfg = m4::PeftConfig::from_json(
      {{"trainable", {{"backbone", "lora"}}},
       {"peft",
        {{"lora", {{"r", a.r}, {"alpha", 2 * a.r}, {"targets", {"backbone.layers.*.self_attn.{q,k,v,o}_proj"}}}}}}},
      "gpu_lora_bench");
  m4::Adapter adapter({{"backbone", llama}}, cfg, "gpu_lora_bench backbone");
  {
    // LoRA's A and B are made on the host (peft/lora.cpp); the f32 tensors
    // move, as the trainer's would.
    at::NoGradGuard ng;
    for (auto& p : adapter.parameters()) p.tensor.set_data(p.tensor.to(dev));
  }
  adapter.train();
  adapter.check_frozen();
  m4::AdamW opt(adapter.trainable_tensors(), m4::AdamWOptions{});
  m4::synchronize(dev);
  const double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_build).count();

  const int64_t n_frozen = frozen_linear_params(*llama);
  const int64_t n_lora = adapter.trainable_count();
  const Flops f = flops_per_token(c, n_frozen, n_lora, a.seq);
  std::printf("gpu_lora_bench: device %s, precision %s, frozen weights %s%s\n", m4::describe_device(dev).c_str(),
              a.precision.c_str(), a.frozen_dtype.c_str(),
              copies > 0 ? (" + bf16 copies of the Linears (" + gb(static_cast<double>(copies)) + ")").c_str() : "");
  std::printf("model: %s, seq %lld, batch %lld; LoRA r %lld alpha %lld on q,k,v,o of every layer: %lld trainable of "
              "%lld parameters; built on the device in %.1f s\n",
              c.summary().c_str(), static_cast<long long>(a.seq), static_cast<long long>(a.batch),
              static_cast<long long>(a.r), static_cast<long long>(2 * a.r), static_cast<long long>(n_lora),
              static_cast<long long>(adapter.total_count()), build_s);

  // The same ids every step, so the loss falls as the LoRA fits them.
  at::manual_seed(a.seed + 1);
  const at::Tensor ids = at::randint(3, c.vocab_size, {a.batch, a.seq}, at::TensorOptions().dtype(at::kLong).device(dev));
  const at::Tensor targets = ids.narrow(1, 1, a.seq - 1).reshape({-1});  // (B (T-1))
  const m4::LlamaForwardOptions hidden_only{/*logits=*/false, /*hidden_states=*/true};
  const int64_t tokens = a.batch * a.seq;

  m4::reset_peak_device_memory(dev);
  std::vector<double> times;
  std::vector<double> losses;
  for (int step = 0; step < a.warmup + a.steps; ++step) {
    m4::synchronize(dev);
    const auto t0 = std::chrono::steady_clock::now();
    at::Tensor loss;
    {
      m4::Bf16Autocast mixed(bf16);
      const auto out = llama->forward(ids, {}, {}, nullptr, hidden_only);
      const at::Tensor& h = out.hidden_states.back();  // (B, T, hidden), after the final norm
      const at::Tensor rows = h.narrow(1, 0, a.seq - 1).reshape({-1, c.hidden_size});  // (B (T-1), hidden)
      loss = m4::linear_cross_entropy(rows, llama->lm_head->effective_weight(rows), llama->lm_head->bias, targets);
    }
    loss.backward();
    opt.step(1e-4);
    opt.zero_grad();
    m4::synchronize(dev);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double l = loss.item<double>();
    M4_CHECK(std::isfinite(l), m4::ErrorCode::kInternal, "step ", step + 1, ": loss is ", l);
    const bool timed = step >= a.warmup;
    if (timed) times.push_back(s);
    losses.push_back(l);
    std::printf("step %d%s: %.4f s, %.0f tokens/s, loss %.6f\n", step + 1, timed ? "" : " (warm-up)", s, tokens / s, l);
    std::fflush(stdout);
  }

  double total = 0;
  for (double t : times) total += t;
  const double tps = static_cast<double>(tokens) * static_cast<double>(times.size()) / total;
  const int64_t peak = m4::peak_device_memory(dev);
  const double peak_flops = a.peak_tflops * 1e12;
  std::printf("summary: %zu timed steps of %lld tokens (after %d warm-up): %.1f tokens/s/GPU; step %.4f s mean, "
              "%.4f s median\n",
              times.size(), static_cast<long long>(tokens), a.warmup, tps, total / static_cast<double>(times.size()),
              m4::bench::median(times));
  if (peak >= 0) {
    std::printf("peak device memory: %s (%.1f GiB; the caching allocator's peak over the steps)\n",
                gb(static_cast<double>(peak)).c_str(), static_cast<double>(peak) / (1ull << 30));
  } else {
    std::printf("peak memory: %.0f MiB peak RSS (no device allocator on %s)\n", peak_rss_mib(), dev.str().c_str());
  }
  std::printf("loss: first %.6f, last %.6f (%s)\n", losses.front(), losses.back(),
              losses.back() < losses.front() ? "fell" : (losses.back() == losses.front() ? "unchanged" : "rose"));
  std::printf("FLOPs per token: frozen Linears 4 x %lld = %.3g (forward 2N + input grads 2N, no weight grads; LM head "
              "included, embeddings not); LoRA 6 x %lld = %.3g; attention QK^T+PV 12 x layers x seq x hidden = %.3g "
              "full, %.3g causal (half); total %.4g causal, %.4g full\n",
              static_cast<long long>(f.n_frozen), f.frozen, static_cast<long long>(f.n_lora), f.lora, f.attn_full,
              f.attn_full / 2, f.causal(), f.full());
  std::printf("MFU: %.1f%% (%.1f TFLOP/s with causal attention counted half, of %.0f TFLOP/s dense bf16 peak, "
              "--peak-tflops); %.1f%% with the full attention square counted\n",
              100 * tps * f.causal() / peak_flops, tps * f.causal() / 1e12, a.peak_tflops,
              100 * tps * f.full() / peak_flops);
  std::printf("anchor: NeMo Automodel Llama-3-8B LoRA bf16 1xH100: 12,473 tokens/s/GPU, ~41%% MFU\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    m4::restart_if_blas_misdetected_cpu(argv);  // the CPU smoke run's OpenBLAS kernels (core/cpu_runtime.h)
    const Args a = parse_args(argc, argv);
    return run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_lora_bench: %s\n", m4::one_line(e.what()).c_str());
    return 2;
  }
}
