// What the CPU math runs on: which BLAS library the process loaded (Debian's
// libtorch uses whatever libblas.so.3 the alternatives system selects; the
// reference BLAS is ~40x slower than OpenBLAS) and how many threads it uses.
#pragma once

#include <string>

namespace m4 {

struct CpuRuntime {
  std::string blas;        // resolved path of the loaded BLAS, or "none loaded"
  std::string blas_kind;   // "openblas", "reference", "mkl", "blis", "unknown"
  int torch_threads = 0;   // ATen intra-op threads
  int blas_threads = -1;   // OpenBLAS's own thread count, -1 if not OpenBLAS
  std::string omp_wait;    // OMP_WAIT_POLICY as libgomp read it: "passive", "active", "unset"
  std::string blas_core;   // OpenBLAS's kernel set ("SkylakeX", "Haswell", ...), "" if not OpenBLAS
  std::string blas_threading;  // how OpenBLAS was built: "pthreads", "openmp", "sequential"; "" if not OpenBLAS
  std::string f32_gemm;        // where f32 GEMMs run: f32_gemm_description() (core/onednn_gemm.h)
};

// OpenBLAS picks its kernels when it loads, from the CPU model; a model newer
// than its table (0.3.21, Debian 12, takes Emerald Rapids, family 6 model 207,
// for "Prescott": SSE3 kernels, 5x slower f32 GEMMs than its AVX-512 ones,
// bench/README.md) falls back to the oldest. When that happened on a CPU with
// AVX2 and OPENBLAS_CORETYPE is not set, this sets it to the best kernel set
// the CPU runs (Cooperlake with AVX512-BF16, SkylakeX with AVX-512, Haswell
// with AVX2) and restarts the program with execv (OpenBLAS reads the variable
// only when it loads), so main() runs again from the start. Call it first in
// main(); it returns when nothing needs to change or the restart failed.
// M4FORGE_BLAS_RESTART=off keeps OpenBLAS's own choice (the tests set it: a
// restart costs a second load of LibTorch, about 0.5-1 s).
void restart_if_blas_misdetected_cpu(char** argv);
// The choice it makes: the kernel set to use instead of `detected`, or "" to keep it.
struct CpuFeatures {
  bool avx2_fma = false, avx512 = false, avx512_bf16 = false;  // avx512: F, VL, BW and DQ
};
std::string better_blas_core(const std::string& detected, const CpuFeatures& cpu);
// After such a restart: "OpenBLAS took this CPU for Prescott; OPENBLAS_CORETYPE=SkylakeX", else "".
std::string blas_core_note();

// The kernels a process's heavy math runs in, which decide its thread policy:
// bf16 GEMMs run in oneDNN on ATen's OpenMP threads; f32 GEMMs too when
// m4forge is built with oneDNN (core/onednn_gemm.h), else in OpenBLAS on its
// own pthreads.
enum class MathKernels { kF32, kBf16 };

// The thread policy: `threads` cores (<= 0: every core) for ATen's OpenMP and
// for OpenBLAS, except for f32 with a pthreads OpenBLAS:
//   - with f32 GEMMs in oneDNN: OpenBLAS gets one thread. What is left in it
//     (LoRA's rank-r products) is small, and its idle pthreads spin-wait
//     (sched_yield) on the cores the GEMMs and elementwise ops need: on 2 cores
//     a LoRA step ran at 463-472 tokens/s with 2 OpenBLAS threads and 704-749
//     with 1 (bench/README.md);
//   - with f32 GEMMs in OpenBLAS: ATen gets one thread, because after every
//     parallel region OpenMP's threads spin-wait on the cores OpenBLAS's threads
//     need (ATen 2 + OpenBLAS 2 ran a forward at 440 tokens/s, ATen 1 +
//     OpenBLAS 2 at 720), unless OMP_WAIT_POLICY=passive (no spinning).
// An OpenBLAS built on OpenMP (Debian's libopenblas0-openmp) runs on ATen's own
// threads, so both get `threads` (one ATen thread would leave it one too).
// libgomp reads OMP_WAIT_POLICY once, before main, so a program cannot set it
// for itself. Returns what is in effect afterwards.
CpuRuntime configure_cpu_runtime(int threads, MathKernels kernels = MathKernels::kF32);
// The policy's split (above), for OpenBLAS only.
struct ThreadFacts {
  bool blas_on_openmp = false, passive_wait = false, f32_gemm_in_onednn = false;
};
struct ThreadSplit {
  int aten = 1, blas = 1;
};
ThreadSplit thread_split(int threads, MathKernels kernels, const ThreadFacts& facts);
// Sets a split as it is (OpenBLAS's part only when OpenBLAS is loaded), for
// benches that time one library under another's split; programs call
// configure_cpu_runtime, which chooses it.
void apply_thread_split(const ThreadSplit& split);
// The same thread count as the last configure_cpu_runtime, for `kernels`
// (train.precision bf16 once the task config is read; f32 for its evaluations).
CpuRuntime configure_cpu_runtime_for(MathKernels kernels);
// One line for the log: BLAS, threads, wait policy.
std::string describe(const CpuRuntime& rt);
// Keeps freed memory in the heap (no per-allocation mmap/munmap of large
// blocks); configure_cpu_runtime calls it.
void keep_freed_memory();
CpuRuntime cpu_runtime();

// This process's memory from /proc/self/status, in KiB: resident now, peak,
// and the resident split into anonymous (private) and file-backed (mapped
// weights: shared page cache, not a copy) pages.
struct ProcessMemory {
  int64_t rss_kib = 0, peak_kib = 0, anon_kib = 0, file_kib = 0;
};
ProcessMemory process_memory();

}  // namespace m4
