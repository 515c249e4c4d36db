// f32 matrix products in oneDNN instead of the BLAS (issue 18). LibTorch
// already loads oneDNN (libdnnl.so.2) for its bf16 matmuls, and oneDNN runs
// on ATen's own OpenMP threads, so the GEMMs and the elementwise ops between
// them share one pool of threads: no OpenBLAS pthreads spinning on the cores
// after each GEMM. Its brgemm kernels were also 10-25% faster than OpenBLAS's
// on the shapes of a LoRA step (bench/README.md, gemm_ceiling_bench).
//
// On when m4forge was built with oneDNN (libdnnl-dev) and M4FORGE_F32_GEMM is
// not "blas"; the BLAS path (at::mm) stays for every other case: no oneDNN,
// another dtype, a non-CPU tensor, or strides oneDNN cannot take.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace m4 {

// Whether f32 CPU GEMMs run in oneDNN in this process: built with it, and
// M4FORGE_F32_GEMM is unset or "onednn" ("blas" keeps them in the BLAS).
// Read once; an unknown value of the variable is an error naming it.
bool onednn_f32_gemm();
// "oneDNN <version>", or why not ("BLAS: M4FORGE_F32_GEMM=blas", "BLAS: built without oneDNN").
std::string f32_gemm_description();

// a (..., M, K) @ b (..., K, N) -> (..., M, N), like at::matmul, without
// autograd. In oneDNN when onednn_f32_gemm(), both are f32 CPU tensors of 2-5
// dims with the same leading sizes (no broadcasting), and each has its rows or
// its columns contiguous (transposed views, as w.t() of a Linear's (N, K)
// weight or k.transpose(-1, -2) of attention's keys, are taken as they are);
// else in ATen.
at::Tensor gemm(const at::Tensor& a, const at::Tensor& b);
// The same into `out`, of the product's sizes; with `accumulate`, out += a @ b.
// Where oneDNN does not take it: at::mm_out / addmm_ for 2-D operands of out's dtype,
// else the product copied (or added) into out, cast to its dtype.
void gemm_out(const at::Tensor& out, const at::Tensor& a, const at::Tensor& b, bool accumulate = false);
// Whether gemm(a, b) runs in oneDNN (the conditions above).
bool gemm_in_onednn(const at::Tensor& a, const at::Tensor& b);
// gemm with autograd: a's gradient g b^T and b's a^T g, through gemm too.
at::Tensor differentiable_gemm(const at::Tensor& a, const at::Tensor& b);

}  // namespace m4
