// bf16 autocast for a scope: matmuls and linears in bfloat16, on CPU and CUDA
// alike (train.precision bf16, its tests and benches). Restores the previous
// state on exit.
#pragma once

#include <ATen/autocast_mode.h>

namespace m4 {

class Bf16Autocast {
 public:
  explicit Bf16Autocast(bool on = true) : on_(on) {
    if (!on_) return;
    cpu_ = at::autocast::is_cpu_enabled();
    gpu_ = at::autocast::is_enabled();
    cpu_dtype_ = at::autocast::get_autocast_cpu_dtype();
    gpu_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_enabled(true);
    at::autocast::increment_nesting();
  }
  ~Bf16Autocast() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_cpu_enabled(cpu_);
    at::autocast::set_enabled(gpu_);
    at::autocast::set_autocast_cpu_dtype(cpu_dtype_);
    at::autocast::set_autocast_gpu_dtype(gpu_dtype_);
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool on_, cpu_ = false, gpu_ = false;
  at::ScalarType cpu_dtype_ = at::kBFloat16, gpu_dtype_ = at::kHalf;
};

}  // namespace m4
