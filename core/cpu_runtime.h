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
};

// Uses `threads` cores (<= 0: every core). With OpenBLAS loaded the BLAS gets
// them and ATen's OpenMP gets 1, unless OMP_WAIT_POLICY=passive (see the .cpp).
// Returns what is in effect afterwards.
CpuRuntime configure_cpu_runtime(int threads);
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
