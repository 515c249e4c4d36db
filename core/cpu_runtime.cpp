// BLAS detection through dl_iterate_phdr; OpenBLAS thread control via dlsym.
#include "core/cpu_runtime.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <unistd.h>
#include <malloc.h>
#include <link.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include "core/onednn_gemm.h"

namespace m4 {
namespace {

int find_blas(struct dl_phdr_info* info, size_t, void* data) {
  std::string name = info->dlpi_name ? info->dlpi_name : "";
  auto* out = static_cast<std::string*>(data);
  const auto base = std::filesystem::path(name).filename().string();
  if (out->empty() && (base.find("blas") != std::string::npos || base.find("mkl_rt") != std::string::npos)) {
    std::error_code ec;
    auto real = std::filesystem::canonical(name, ec);
    *out = ec ? name : real.string();
  }
  return 0;
}

std::string kind_of(const std::string& path) {
  if (path.find("openblas") != std::string::npos) return "openblas";
  if (path.find("mkl") != std::string::npos) return "mkl";
  if (path.find("blis") != std::string::npos) return "blis";
  if (path.find("/blas/") != std::string::npos) return "reference";
  return path.empty() ? "none" : "unknown";
}

std::atomic<int> g_threads{0};  // the last configure_cpu_runtime's thread count

// libgomp read the variable before main; the environment still holds what it read.
std::string omp_wait_policy() {
  const char* w = std::getenv("OMP_WAIT_POLICY");
  if (w == nullptr) return "unset";
  std::string v(w);
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v == "passive" || v == "active" ? v : "unset";
}

using CoreNameFn = char* (*)();

std::string openblas_core() {
  auto name = reinterpret_cast<CoreNameFn>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* n = name != nullptr ? name() : nullptr;
  return n != nullptr ? n : "";
}

// How the loaded OpenBLAS was built to run in parallel: openblas_get_parallel().
std::string openblas_threading() {
  using ParallelFn = int (*)();
  auto parallel = reinterpret_cast<ParallelFn>(::dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  if (parallel == nullptr) return "";
  switch (parallel()) {
    case 0: return "sequential";
    case 1: return "pthreads";
    case 2: return "openmp";
    default: return "unknown";
  }
}

using SetThreadsFn = void (*)(int);
// OpenBLAS's thread setter, or null when the BLAS loaded is not OpenBLAS.
SetThreadsFn openblas_thread_setter() {
  return reinterpret_cast<SetThreadsFn>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
}

constexpr const char* kMisdetectedFrom = "M4FORGE_OPENBLAS_MISDETECTED";

}  // namespace

std::string better_blas_core(const std::string& detected, const CpuFeatures& cpu) {
  if (detected.empty() || !cpu.avx2_fma) return "";
  // OpenBLAS 0.3.21's x86-64 kernel sets with AVX2 or better.
  for (const char* fast : {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", "Excavator"}) {
    if (detected == fast) return "";
  }
  if (!cpu.avx512) return "Haswell";
  return cpu.avx512_bf16 ? "Cooperlake" : "SkylakeX";
}

void restart_if_blas_misdetected_cpu(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr || std::getenv(kMisdetectedFrom) != nullptr) return;
  if (const char* r = std::getenv("M4FORGE_BLAS_RESTART"); r != nullptr && std::string(r) == "off") return;
  const std::string core = openblas_core();
  CpuFeatures cpu;
  cpu.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  cpu.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  cpu.avx512_bf16 = __builtin_cpu_supports("avx512bf16");
  const std::string better = better_blas_core(core, cpu);
  if (better.empty()) return;
  const char* best = better.c_str();
  ::setenv("OPENBLAS_CORETYPE", best, 1);
  ::setenv(kMisdetectedFrom, core.c_str(), 1);
  ::execv("/proc/self/exe", argv);
  // Still here: the restart failed; run on the slow kernels, and say so.
  ::unsetenv("OPENBLAS_CORETYPE");
  ::unsetenv(kMisdetectedFrom);
  std::fprintf(stderr, "m4forge: warning: OpenBLAS runs its %s kernels on this AVX2 CPU and the restart with "
                       "OPENBLAS_CORETYPE=%s failed (%s); set OPENBLAS_CORETYPE=%s yourself\n",
               core.c_str(), best, std::strerror(errno), best);
}

std::string blas_core_note() {
  const char* from = std::getenv(kMisdetectedFrom);
  const char* to = std::getenv("OPENBLAS_CORETYPE");
  if (from == nullptr || to == nullptr) return "";
  return std::string("OpenBLAS took this CPU for ") + from + "; restarted with OPENBLAS_CORETYPE=" + to;
}

CpuRuntime cpu_runtime() {
  CpuRuntime r;
  r.omp_wait = omp_wait_policy();
  r.blas_core = openblas_core();
  r.blas_threading = openblas_threading();
  dl_iterate_phdr(find_blas, &r.blas);
  r.blas_kind = kind_of(r.blas);
  if (r.blas.empty()) r.blas = "none loaded";
  r.torch_threads = at::get_num_threads();
  r.f32_gemm = f32_gemm_description();
  using GetFn = int (*)();
  if (auto get = reinterpret_cast<GetFn>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"))) {
    r.blas_threads = get();
  }
  return r;
}

ThreadSplit thread_split(int threads, MathKernels kernels, const ThreadFacts& f) {
  ThreadSplit split{threads, threads};
  if (kernels != MathKernels::kF32 || f.blas_on_openmp) return split;
  if (f.f32_gemm_in_onednn) {
    split.blas = 1;  // what is left in the BLAS is small; idle pthreads would spin beside the GEMMs
  } else if (!f.passive_wait) {
    split.aten = 1;
  }
  return split;
}

CpuRuntime configure_cpu_runtime(int threads, MathKernels kernels) {
  // Debian's libtorch starts with OpenMP at 1 thread here unless OMP_NUM_THREADS
  // is set, so "default" means every core, explicitly.
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  g_threads.store(threads);
  if (openblas_thread_setter() != nullptr) {
    const ThreadFacts facts{openblas_threading() == "openmp", omp_wait_policy() == "passive", onednn_f32_gemm()};
    apply_thread_split(thread_split(threads, kernels, facts));
  } else {
    at::set_num_threads(threads);
  }
  keep_freed_memory();
  return cpu_runtime();
}

void apply_thread_split(const ThreadSplit& split) {
  if (auto set_blas = openblas_thread_setter()) set_blas(split.blas);
  at::set_num_threads(split.aten);
}

CpuRuntime configure_cpu_runtime_for(MathKernels kernels) { return configure_cpu_runtime(g_threads.load(), kernels); }

std::string describe(const CpuRuntime& rt) {
  std::string s = "BLAS " + rt.blas + " (" + rt.blas_kind + (rt.blas_core.empty() ? "" : ", " + rt.blas_core + " kernels") +
                  (rt.blas_threading.empty() ? "" : ", " + rt.blas_threading) + "), " + std::to_string(rt.torch_threads) +
                  " ATen threads";
  if (rt.blas_threads >= 0) s += ", " + std::to_string(rt.blas_threads) + " OpenBLAS threads";
  return s + ", OpenMP wait " + rt.omp_wait + "; f32 GEMMs in " + rt.f32_gemm;
}

void keep_freed_memory() {
  // glibc serves blocks over 32 MiB with mmap and unmaps them on free, so a
  // training step page-faults its logits-sized buffers (B x T x vocab f32) in
  // again every step: 0.5 s of a 2.5 s LoRA step here (bench/README.md). Keep
  // freed memory in the heap for reuse instead; the peak RSS is the same.
  static const bool done = [] {
    ::mallopt(M_MMAP_MAX, 0);
    ::mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
    return true;
  }();
  (void)done;
}

ProcessMemory process_memory() {
  ProcessMemory m;
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    auto value = [&](const char* key, int64_t* out) {
      if (line.rfind(key, 0) == 0) *out = std::atoll(line.c_str() + std::strlen(key));
    };
    value("VmRSS:", &m.rss_kib);
    value("VmHWM:", &m.peak_kib);
    value("RssAnon:", &m.anon_kib);
    value("RssFile:", &m.file_kib);
  }
  return m;
}

}  // namespace m4
