// The CPU runtime: the thread policy by kernels, and the OpenBLAS kernel set
// chosen when OpenBLAS misdetects the CPU.
#include "core/cpu_runtime.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

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

TEST(ThreadPolicy, AtenGetsOneThreadOnlyBesideAPthreadsOpenBlasForF32) {
  EXPECT_EQ(aten_threads(4, MathKernels::kF32, /*blas_on_openmp=*/false, /*passive_wait=*/false), 1);
  EXPECT_EQ(aten_threads(4, MathKernels::kBf16, false, false), 4);
  EXPECT_EQ(aten_threads(4, MathKernels::kF32, /*blas_on_openmp=*/true, false), 4);  // one pool for both
  EXPECT_EQ(aten_threads(4, MathKernels::kF32, false, /*passive_wait=*/true), 4);
}

TEST(ThreadPolicy, Bf16GivesAtenEveryThreadAndF32GivesItOne) {
  const int before = at::get_num_threads();
  const CpuRuntime f32 = configure_cpu_runtime(2, MathKernels::kF32);
  if (f32.blas_kind != "openblas") GTEST_SKIP() << "the policy splits threads only with OpenBLAS; BLAS: " << f32.blas;
  if (f32.omp_wait == "passive") GTEST_SKIP() << "OMP_WAIT_POLICY=passive gives ATen every thread for f32 too";
  EXPECT_EQ(f32.torch_threads, 1);
  EXPECT_EQ(f32.blas_threads, 2);
  const CpuRuntime bf16 = configure_cpu_runtime_for(MathKernels::kBf16);
  EXPECT_EQ(bf16.torch_threads, 2);
  EXPECT_EQ(bf16.blas_threads, 2);
  EXPECT_NE(describe(bf16).find("2 ATen threads, 2 OpenBLAS threads"), std::string::npos) << describe(bf16);
  EXPECT_EQ(bf16.blas_threading, "pthreads");  // Debian's default libopenblas0-pthread
  EXPECT_EQ(configure_cpu_runtime_for(MathKernels::kF32).torch_threads, 1);
  at::set_num_threads(before);
}

}  // namespace
}  // namespace m4
