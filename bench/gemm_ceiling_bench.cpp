// gemm_ceiling_bench: the GEMM ceiling of one LoRA training step on this
// machine. Every matrix product a LoRA step of the LLaMA shape runs (frozen
// linears forward and input-gradient, attention's four batched products
// forward and backward, the LM head forward and input-gradient), each timed
// alone on ATen with m4forge's thread policy; their sum is the fastest that
// step could be if everything else were free. f32 products are timed twice:
// in the BLAS (through ATen, with the thread split f32 GEMMs in the BLAS get)
// and in oneDNN (m4::gemm, core/onednn_gemm.h, with its split), and the
// ceiling takes the faster of the two for each product. Prints the step's FLOP
// accounting, the GEMM-only step time, and the ceiling in GFLOP/s and
// tokens/s; bench/hf_side_by_side.sh divides measured training throughput by it.
// Default shape: issue 18's (hidden 512, 8 layers, 8 heads, intermediate 1376,
// vocab 32000, seq 256, batch 4, r 8 on q,v).
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/lora_step_args.h"
#include "core/cpu_runtime.h"
#include "core/onednn_gemm.h"

using Clock = std::chrono::steady_clock;

namespace {

struct Args : m4::bench::LoraStepArgs {
  int64_t lora_targets = 2;  // q and v
  std::string dtype = "f32";
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    if (m4::bench::read_lora_step_flag(a, argc, argv, i)) continue;
    const std::string s = argv[i];
    if (s == "--dtype" && i + 1 < argc) {
      a.dtype = argv[++i];
      continue;
    }
    std::fprintf(stderr, "usage: %s [--dtype f32|bf16] %s\n", argv[0], m4::bench::kLoraStepUsage);
    std::exit(s == "-h" || s == "--help" ? 0 : 2);
  }
  if (a.dtype != "f32" && a.dtype != "bf16") {
    std::fprintf(stderr, "--dtype: f32 or bf16, not '%s'\n", a.dtype.c_str());
    std::exit(2);
  }
  return a;
}

// One product of the step: C (m x n) = A (m x k) B (k x n), `count` times per
// step, batched `batch` deep (attention) or not.
struct Gemm {
  std::string what;
  int64_t batch, m, k, n, count;
  double flops() const { return 2.0 * static_cast<double>(batch * m * k * n * count); }
};

enum class Library { kAten, kOneDnn };

double median_seconds(const Gemm& g, at::ScalarType dt, int iters, Library lib) {
  const auto opt = at::TensorOptions().dtype(dt);
  const at::Tensor a = at::randn({g.batch, g.m, g.k}).to(opt), b = at::randn({g.batch, g.k, g.n}).to(opt);
  at::Tensor c = at::empty({g.batch, g.m, g.n}, opt);
  at::Tensor c0 = c[0];
  const at::Tensor a0 = a[0], b0 = b[0];
  auto once = [&] {
    if (lib == Library::kOneDnn) m4::gemm_out(g.batch == 1 ? c0 : c, g.batch == 1 ? a0 : a, g.batch == 1 ? b0 : b);
    else if (g.batch == 1) at::mm_out(c0, a0, b0);
    else at::bmm_out(c, a, b);
  };
  once();
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = Clock::now();
    once();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  m4::restart_if_blas_misdetected_cpu(argv);
  const Args a = parse_args(argc, argv);
  const at::ScalarType dt = a.dtype == "bf16" ? at::kBFloat16 : at::kFloat;
  const auto rt = m4::configure_cpu_runtime(a.threads, dt == at::kBFloat16 ? m4::MathKernels::kBf16 : m4::MathKernels::kF32);
  const int64_t n = a.batch * a.seq, d = a.hidden, f = a.intermediate, L = a.layers, T = a.seq;
  const int64_t hd = d / a.heads, bh = a.batch * a.heads;
  // Frozen linears: forward x W^T and the input gradient dY W; no weight
  // gradient. Attention: QK^T and PV forward; dP = dO V^T, dV = P^T dO,
  // dQ = dS K, dK = dS^T Q backward (full T x T, as the eager attention runs).
  const std::vector<Gemm> gemms = {
      {"q,k,v,o forward", 1, n, d, d, 4 * L},
      {"q,k,v,o input grad", 1, n, d, d, 4 * L},
      {"gate,up forward", 1, n, d, f, 2 * L},
      {"gate,up input grad", 1, n, f, d, 2 * L},
      {"down forward", 1, n, f, d, L},
      {"down input grad", 1, n, d, f, L},
      {"attention QK^T forward", bh, T, hd, T, L},
      {"attention PV forward", bh, T, T, hd, L},
      {"attention backward (4 products)", bh, T, T, hd, 4 * L},
      {"LoRA A, B forward", 1, n, d, a.r, 2 * a.lora_targets * L},
      {"LoRA backward (dA, dB, dx)", 1, n, d, a.r, 6 * a.lora_targets * L},
      {"lm_head forward", 1, n, d, a.vocab, 1},
      {"lm_head input grad", 1, n, a.vocab, d, 1},
  };
  // f32: the BLAS with the split it gets when f32 GEMMs run there (ATen 1 thread, unless
  // OpenMP-built or passive), and oneDNN with its own; bf16 runs in oneDNN through ATen.
  const bool f32 = dt == at::kFloat, both = f32 && m4::onednn_f32_gemm();
  const int threads = rt.torch_threads > 0 && rt.blas_threads > 0 ? std::max(rt.torch_threads, rt.blas_threads) : a.threads;
  const m4::ThreadFacts facts{rt.blas_threading == "openmp", rt.omp_wait == "passive", false};
  const m4::ThreadSplit blas_split = m4::thread_split(threads, m4::MathKernels::kF32, facts);
  std::printf("gemm_ceiling_bench: %s, tokens/step %lld; cpu: %s\n", a.dtype.c_str(), static_cast<long long>(n),
              m4::describe(rt).c_str());
  if (both) {
    std::printf("  f32 products timed in the BLAS (%d ATen, %d BLAS threads) and in %s; the ceiling takes the faster\n",
                blas_split.aten, blas_split.blas, m4::f32_gemm_description().c_str());
  }
  // One library at a time, oneDNN first: OpenBLAS's pthreads spin for a while after their
  // last GEMM, and would slow whatever ran next on the same cores.
  std::vector<double> t_onednn(gemms.size()), t_blas(gemms.size());
  if (both) {
    m4::configure_cpu_runtime(threads, m4::MathKernels::kF32);
    for (size_t i = 0; i < gemms.size(); ++i) {
      t_onednn[i] = median_seconds(gemms[i], dt, a.iters, Library::kOneDnn) * static_cast<double>(gemms[i].count);
    }
    m4::apply_thread_split(blas_split);
  }
  for (size_t i = 0; i < gemms.size(); ++i) {
    t_blas[i] = median_seconds(gemms[i], dt, a.iters, Library::kAten) * static_cast<double>(gemms[i].count);
  }
  double flops = 0, secs = 0, blas_secs = 0, onednn_secs = 0;
  for (size_t i = 0; i < gemms.size(); ++i) {
    const Gemm& g = gemms[i];
    const double s_blas = t_blas[i], s_onednn = t_onednn[i];
    const double s = both ? std::min(s_blas, s_onednn) : s_blas;
    flops += g.flops();
    secs += s;
    blas_secs += s_blas;
    onednn_secs += s_onednn;
    std::printf("  %-34s %4lld x (%lld x %lld x %lld x %lld)  %8.2f GFLOP  %7.1f GFLOP/s", g.what.c_str(),
                static_cast<long long>(g.count), static_cast<long long>(g.batch), static_cast<long long>(g.m),
                static_cast<long long>(g.k), static_cast<long long>(g.n), g.flops() / 1e9, g.flops() / s / 1e9);
    if (both) std::printf("  (BLAS %7.1f, oneDNN %7.1f)", g.flops() / s_blas / 1e9, g.flops() / s_onednn / 1e9);
    std::printf("\n");
  }
  if (both) {
    std::printf("GEMMs alone: BLAS %.3f s (%.1f GFLOP/s), oneDNN %.3f s (%.1f GFLOP/s)\n", blas_secs,
                flops / blas_secs / 1e9, onednn_secs, flops / onednn_secs / 1e9);
  }
  std::printf("step: %.2f GFLOP (%.1f MFLOP/token), GEMMs alone %.3f s: ceiling %.1f GFLOP/s = %.0f tokens/s\n",
              flops / 1e9, flops / static_cast<double>(n) / 1e6, secs, flops / secs / 1e9,
              static_cast<double>(n) / secs);
  std::printf("{\"dtype\": \"%s\", \"threads\": %d, \"step_gflop\": %.4f, \"flop_per_token\": %.0f, \"gemm_s\": %.5f, "
              "\"ceiling_gflops\": %.2f, \"ceiling_tokens_per_s\": %.1f, \"blas_gflops\": %.2f, \"onednn_gflops\": %.2f}\n",
              a.dtype.c_str(), a.threads, flops / 1e9, flops / static_cast<double>(n), secs, flops / secs / 1e9,
              static_cast<double>(n) / secs, flops / blas_secs / 1e9, both ? flops / onednn_secs / 1e9 : 0.0);
  return 0;
}
