// backbone_forward_bench: LLaMA backbone forward throughput (tokens/s) on the
// CPU at 1 and 2 threads, for full-sequence forwards and for KV-cached greedy
// generation. See bench/README.md.
//
// The weights are seeded random f32, written once to a temporary safetensors
// file and loaded the way firmware loads them (mmap, zero-copy views), so the
// kernels see the same memory as in production.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/cpu_runtime.h"
#include "core/safetensors.h"
#include "firmware/llama.h"
#include "firmware/weight_set.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::vector<int> threads = {1, 2};
  int blas_threads = 0;  // 0: as --threads; else OpenBLAS's own count (diagnostic)
  int torch_threads = 0;  // 0: as --threads; else ATen's intra-op count (diagnostic)
  int iters = 5;
  int64_t gen_tokens = 64;
  int64_t prompt = 16;
  // Model shape. The defaults: 99.9 M parameters (0.40 GB f32), sized so that a
  // 4 x 256 forward takes about a second on two cores.
  int64_t hidden = 768, intermediate = 2048, layers = 8, heads = 12, kv_heads = 4, vocab = 32000;
  bool keep = false;
  fs::path tmp = "/tmp";
};

[[noreturn]] void usage(const char* argv0, int rc) {
  std::fprintf(rc == 0 ? stdout : stderr,
               "usage: %s [--threads 1,2] [--iters N] [--gen-tokens N] [--prompt N] [--keep] [--tmp DIR]\n"
               "          [--hidden N] [--intermediate N] [--layers N] [--heads N] [--kv-heads N] [--vocab N]\n"
               "  --threads LIST  thread counts to measure, comma separated (default 1,2)\n"
               "  --iters N       timed iterations per case after one warm-up (default 5)\n"
               "  --gen-tokens N  new tokens per greedy generation (default 64)\n"
               "  --prompt N      prompt length for generation (default 16)\n"
               "  --keep          keep the temporary weight file\n"
               "  --tmp DIR       where the temporary weight file goes (default /tmp)\n"
               "  --blas-threads N, --torch-threads N  diagnostic: after configure_cpu_runtime(threads),\n"
               "                  override OpenBLAS's or ATen's thread count alone\n"
               "  model shape defaults: hidden 768, intermediate 2048, 8 layers, 12 heads, 4 kv heads,\n"
               "  vocab 32000 (head_dim = hidden / heads)\n",
               argv0);
  std::exit(rc);
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0], 2);
      return argv[++i];
    };
    auto num = [&]() { return std::max<int64_t>(1, std::atoll(value().c_str())); };
    if (s == "--threads") {
      a.threads.clear();
      std::string list = value();
      for (size_t p = 0; p <= list.size();) {
        size_t q = list.find(',', p);
        if (q == std::string::npos) q = list.size();
        if (q > p) a.threads.push_back(std::max(1, std::atoi(list.substr(p, q - p).c_str())));
        p = q + 1;
      }
      if (a.threads.empty()) usage(argv[0], 2);
    } else if (s == "--blas-threads") a.blas_threads = static_cast<int>(num());
    else if (s == "--torch-threads") a.torch_threads = static_cast<int>(num());
    else if (s == "--iters") a.iters = static_cast<int>(num());
    else if (s == "--gen-tokens") a.gen_tokens = num();
    else if (s == "--prompt") a.prompt = num();
    else if (s == "--keep") a.keep = true;
    else if (s == "--tmp") a.tmp = value();
    else if (s == "--hidden") a.hidden = num();
    else if (s == "--intermediate") a.intermediate = num();
    else if (s == "--layers") a.layers = num();
    else if (s == "--heads") a.heads = num();
    else if (s == "--kv-heads") a.kv_heads = num();
    else if (s == "--vocab") a.vocab = num();
    else if (s == "-h" || s == "--help") usage(argv[0], 0);
    else usage(argv[0], 2);
  }
  return a;
}

m4::LlamaConfig make_config(const Args& a) {
  m4::LlamaConfig c;
  c.vocab_size = a.vocab;
  c.hidden_size = a.hidden;
  c.intermediate_size = a.intermediate;
  c.num_hidden_layers = a.layers;
  c.num_attention_heads = a.heads;
  c.num_key_value_heads = a.kv_heads;
  c.head_dim = a.hidden / a.heads;
  c.max_position_embeddings = 2048;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = false;
  return c;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Deterministic token ids in [3, vocab).
at::Tensor token_ids(int64_t batch, int64_t seq, int64_t vocab, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randint(3, vocab, {batch, seq}, gen, at::kLong);
}

struct Stats {
  double median_s, min_s;
};

template <typename F>
Stats time_it(int iters, F&& f) {
  f();  // warm-up: first-touch of pages, allocator, OpenBLAS buffers
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = Clock::now();
    f();
    t.push_back(seconds_since(t0));
  }
  return {median(t), *std::min_element(t.begin(), t.end())};
}

}  // namespace

int main(int argc, char** argv) {
  m4::restart_if_blas_misdetected_cpu(argv);
  try {
    const Args a = parse_args(argc, argv);
    const m4::LlamaConfig c = make_config(a);

    // Weights: seeded N(0, 0.02^2), norms N(1, 0.02^2), through a safetensors file.
    const fs::path dir = a.tmp / ("m4-bench-fwd-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path file = dir / "model.safetensors";
    int64_t params = 0;
    {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(20261121);
      m4::NamedTensors tensors;
      for (const auto& [name, shape] : m4::LlamaImpl::expected_shapes(c)) {
        at::Tensor t = at::empty(shape, at::kFloat);
        if (name.find("norm") != std::string::npos) t.normal_(1.0, 0.02, gen);
        else t.normal_(0.0, 0.02, gen);
        params += t.numel();
        tensors.emplace_back(name == "lm_head.weight" ? name : "model." + name, t);
      }
      m4::write_safetensors(file, tensors);
    }
    m4::LlamaImpl model(c, m4::WeightSet::open({file}), file.string());
    if (!a.keep) fs::remove_all(dir);  // the mapping keeps the data until the model goes
    else std::printf("weights kept in %s\n", file.c_str());

    const int64_t embed = c.vocab_size * c.hidden_size;
    std::printf("config: %s\n", c.summary().c_str());
    std::printf("parameters: %.1f M (%.1f M without the input embedding), f32, %.2f GB\n", params / 1e6,
                (params - embed) / 1e6, params * 4 / 1e9);
    const auto rt0 = m4::cpu_runtime();
    std::printf("blas: %s (%s)\n", rt0.blas.c_str(), rt0.blas_kind.c_str());
    std::string env;
    for (const char* v : {"OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_NUM_THREADS"}) {
      if (const char* x = std::getenv(v)) env += std::string(env.empty() ? "" : " ") + v + "=" + x;
    }
    std::printf("threading env: %s\n", env.empty() ? "(none set)" : env.c_str());
    std::printf("timed iterations per case: %d after 1 warm-up; times are medians\n\n", a.iters);
    std::printf("%-8s %-26s %10s %10s %12s %10s\n", "threads", "case", "median_s", "min_s", "tokens/s",
                "GFLOP/s");

    at::NoGradGuard no_grad;
    // Matmul FLOPs per token (2 per multiply-add), excluding attention scores.
    const double flops_per_token = 2.0 * static_cast<double>(params - embed - c.hidden_size);
    for (int threads : a.threads) {
      auto rt = m4::configure_cpu_runtime(threads);
      std::printf("(threads %d: the policy gives ATen %d, BLAS %d; f32 GEMMs in %s)\n", threads, rt.torch_threads,
                  rt.blas_threads, rt.f32_gemm.c_str());
      if (a.torch_threads > 0 || a.blas_threads > 0) {
        m4::apply_thread_split({a.torch_threads > 0 ? a.torch_threads : rt.torch_threads,
                                a.blas_threads > 0 ? a.blas_threads : std::max(1, rt.blas_threads)});
        rt = m4::cpu_runtime();
        std::printf("(threads %d: overridden to torch %d, blas %d)\n", threads, rt.torch_threads, rt.blas_threads);
      }
      struct Case {
        int64_t batch, seq;
      };
      for (const Case& k : {Case{4, 256}, Case{1, 128}}) {
        at::Tensor ids = token_ids(k.batch, k.seq, c.vocab_size, 7);
        Stats s = time_it(a.iters, [&] { (void)model.forward(ids); });
        const double tokens = static_cast<double>(k.batch * k.seq);
        char name[64];
        std::snprintf(name, sizeof name, "forward %ldx%ld", static_cast<long>(k.batch), static_cast<long>(k.seq));
        std::printf("%-8d %-26s %10.3f %10.3f %12.1f %10.1f\n", threads, name, s.median_s, s.min_s,
                    tokens / s.median_s, tokens * flops_per_token / s.median_s / 1e9);
        std::fflush(stdout);
      }
      {
        // Greedy generation with the KV cache: one prefill of the prompt, then
        // one forward per new token. Timed whole, and the prefill alone.
        at::Tensor prompt = token_ids(1, a.prompt, c.vocab_size, 11);
        m4::GenerateOptions g;
        g.max_new_tokens = a.gen_tokens;
        int64_t produced = 0;
        Stats s = time_it(a.iters, [&] { produced = m4::generate(model, prompt, {}, g).size(1); });
        Stats pre = time_it(a.iters, [&] {
          m4::KVCache cache = model.new_cache(1, a.prompt + a.gen_tokens);
          (void)model.forward(prompt, {}, {}, &cache);
        });
        char name[64];
        std::snprintf(name, sizeof name, "generate 1x%ld +%ld", static_cast<long>(a.prompt),
                      static_cast<long>(produced));
        std::printf("%-8d %-26s %10.3f %10.3f %12.1f %10s\n", threads, name, s.median_s, s.min_s,
                    produced / s.median_s, "");
        const double decode_s = s.median_s - pre.median_s;
        std::snprintf(name, sizeof name, "  of which prefill 1x%ld", static_cast<long>(a.prompt));
        std::printf("%-8d %-26s %10.3f %10.3f %12.1f %10s\n", threads, name, pre.median_s, pre.min_s,
                    a.prompt / pre.median_s, "");
        std::printf("%-8d %-26s %10.3f %10s %12.1f %10s\n", threads, "  decode only (difference)", decode_s, "",
                    (produced - 1) / decode_s, "");
        std::fflush(stdout);
      }
    }
    std::printf(
        "\ntokens/s: batch x seq / median time (forward); new tokens / median time (generate,\n"
        "prefill included; 'decode only': (new tokens - 1) forward steps / (generate - prefill)).\n"
        "GFLOP/s counts the"
        " linear layers only (2 x non-embedding parameters per token), not attention.\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "backbone_forward_bench: %s\n", e.what());
    return 1;
  }
}
