// bf16 autocast for a scope: matmuls and linears in bfloat16, on CPU and CUDA
// alike (train.precision bf16, its tests and benches). Restores the previous
// state on exit. LibTorch 2.4 replaced the CPU- and CUDA-specific calls by
// ones taking the device type (the old ones warn at every call there); the
// helpers below take whichever this LibTorch has.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace m4 {

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define M4_AUTOCAST_BY_DEVICE_TYPE 1
#endif

// Whether autocast is on for `type` (kCPU or kCUDA), and its dtype.
inline bool autocast_enabled(c10::DeviceType type) {
#ifdef M4_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::is_autocast_enabled(type);
#else
  return type == c10::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}
inline at::ScalarType autocast_dtype(c10::DeviceType type) {
#ifdef M4_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::get_autocast_dtype(type);
#else
  return type == c10::kCUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}
inline void set_autocast(c10::DeviceType type, bool on, at::ScalarType dtype) {
#ifdef M4_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_dtype(type, dtype);
  at::autocast::set_autocast_enabled(type, on);
#else
  if (type == c10::kCUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(on);
  }
#endif
}

class Bf16Autocast {
 public:
  explicit Bf16Autocast(bool on = true) : on_(on) {
    if (!on_) return;
    cpu_ = autocast_enabled(c10::kCPU);
    gpu_ = autocast_enabled(c10::kCUDA);
    cpu_dtype_ = autocast_dtype(c10::kCPU);
    gpu_dtype_ = autocast_dtype(c10::kCUDA);
    set_autocast(c10::kCPU, true, at::kBFloat16);
    set_autocast(c10::kCUDA, true, at::kBFloat16);
    at::autocast::increment_nesting();
  }
  ~Bf16Autocast() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    set_autocast(c10::kCPU, cpu_, cpu_dtype_);
    set_autocast(c10::kCUDA, gpu_, gpu_dtype_);
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool on_, cpu_ = false, gpu_ = false;
  at::ScalarType cpu_dtype_ = at::kBFloat16, gpu_dtype_ = at::kHalf;
};

}  // namespace m4
