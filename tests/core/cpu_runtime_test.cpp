// The CPU runtime: the thread policy by kernels, and the OpenBLAS kernel set
// chosen when OpenBLAS misdetects the CPU.
#include "core/cpu_runtime.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <utility>

#include "core/onednn_gemm.h"

namespace m4 {
namespace {

TEST(BetterBlasCore, ReplacesOnlyPreAvx2KernelsOnAnAvx2Cpu) {
  const CpuFeatures avx2{true, false, false}, avx512{true, true, false}, bf16{true, true, true}, old_cpu{};
  EXPECT_EQ(better_blas_core("Prescott", bf16), "Cooperlake");
  EXPECT_EQ(better_blas_core("Prescott", avx512), "SkylakeX");
  EXPECT_EQ(better_blas_core("Sandybridge", avx2), "Haswell");
  EXPECT_EQ(better_blas_core("Prescott", old_cpu), "");  // a CPU that has nothing better
  EXPECT_EQ(better_blas_core("Haswell", bf16), "");      // detection gave AVX2 kernels: kept
  EXPECT_EQ(better_blas_core("SkylakeX", bf16), "");
  EXPECT_EQ(better_blas_core("Zen", avx2), "");
  EXPECT_EQ(better_blas_core("", bf16), "");  // not OpenBLAS
}

TEST(ThreadPolicy, SplitsThreadsOnlyForF32BesideAPthreadsOpenBlas) {
  auto split = [](MathKernels k, bool omp, bool passive, bool onednn) {
    const ThreadSplit s = thread_split(4, k, ThreadFacts{omp, passive, onednn});
    return std::make_pair(s.aten, s.blas);
  };
  using P = std::pair<int, int>;  // (ATen, OpenBLAS)
  // f32 GEMMs in OpenBLAS: ATen one thread, unless its threads do not spin or are OpenBLAS's own.
  EXPECT_EQ(split(MathKernels::kF32, false, false, false), P(1, 4));
  EXPECT_EQ(split(MathKernels::kF32, false, /*passive=*/true, false), P(4, 4));
  EXPECT_EQ(split(MathKernels::kF32, /*omp=*/true, false, false), P(4, 4));
  // f32 GEMMs in oneDNN (on ATen's threads): OpenBLAS one thread, unless it shares ATen's pool.
  EXPECT_EQ(split(MathKernels::kF32, false, false, /*onednn=*/true), P(4, 1));
  EXPECT_EQ(split(MathKernels::kF32, false, true, true), P(4, 1));
  EXPECT_EQ(split(MathKernels::kF32, true, false, true), P(4, 4));
  // bf16 GEMMs run in oneDNN whatever the f32 ones do.
  for (bool onednn : {false, true}) EXPECT_EQ(split(MathKernels::kBf16, false, false, onednn), P(4, 4));
}

TEST(ThreadPolicy, ConfigureAppliesTheSplitForTheKernels) {
  const int before = at::get_num_threads();
  const CpuRuntime f32 = configure_cpu_runtime(2, MathKernels::kF32);
  if (f32.blas_kind != "openblas") GTEST_SKIP() << "the policy splits threads only with OpenBLAS; BLAS: " << f32.blas;
  if (f32.omp_wait == "passive") GTEST_SKIP() << "OMP_WAIT_POLICY=passive changes the f32 split";
  EXPECT_EQ(f32.blas_threading, "pthreads");  // Debian's default libopenblas0-pthread
  // Where f32 GEMMs run decides which side gets one thread; the log line says which.
  EXPECT_EQ(f32.torch_threads, onednn_f32_gemm() ? 2 : 1);
  EXPECT_EQ(f32.blas_threads, onednn_f32_gemm() ? 1 : 2);
  EXPECT_NE(describe(f32).find("; f32 GEMMs in " + f32_gemm_description()), std::string::npos) << describe(f32);
  const CpuRuntime bf16 = configure_cpu_runtime_for(MathKernels::kBf16);
  EXPECT_EQ(bf16.torch_threads, 2);
  EXPECT_EQ(bf16.blas_threads, 2);
  EXPECT_NE(describe(bf16).find("2 ATen threads, 2 OpenBLAS threads"), std::string::npos) << describe(bf16);
  EXPECT_EQ(configure_cpu_runtime_for(MathKernels::kF32).torch_threads, f32.torch_threads);
  at::set_num_threads(before);
}

}  // namespace
}  // namespace m4
