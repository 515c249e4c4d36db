// Device choice and the few device queries m4forge needs, through LibTorch's
// device-generic interfaces (torch/cuda.h, c10's device guard): the same code
// in a CPU build and a CUDA one. Only the allocator's peak statistic needs
// CUDA headers and libraries, so it alone is behind M4_WITH_CUDA.
#include "core/device.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/cuda.h>

#include <cstdlib>

#include "core/error.h"

#ifdef M4_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace m4 {

const std::vector<std::string>& device_names() {
  static const std::vector<std::string> names = {"auto", "cpu", "cuda"};
  return names;
}

c10::Device pick_device(const std::string& requested, int cuda_devices, int local_rank, const std::string& where,
                        bool build_has_cuda) {
  if (requested == "cpu" || (requested == "auto" && cuda_devices <= 0)) return c10::Device(c10::kCPU);
  if (requested == "cuda" || requested == "auto") {
    M4_CHECK(requested == "auto" || cuda_devices > 0, ErrorCode::kInvalidArgument, where, " is cuda, but ",
             build_has_cuda ? "this machine shows no CUDA GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
                            : "this m4forge's LibTorch has no CUDA (a CPU build: Debian's LibTorch); build with "
                              "cluster/build-cuda.sh against a CUDA LibTorch, or use device cpu");
    const int index = (local_rank < 0 ? 0 : local_rank) % cuda_devices;
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  std::string names;
  for (const auto& n : device_names()) names += (names.empty() ? "" : ", ") + n;
  M4_FAIL(ErrorCode::kInvalidArgument, where, ": unknown device '", requested, "' (known: ", names, ")");
}

int local_rank() {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "LOCAL_RANK"}) {
    if (const char* s = std::getenv(v)) {
      char* end = nullptr;
      const long r = std::strtol(s, &end, 10);
      if (end != s && *end == '\0' && r >= 0 && r < (1 << 20)) return static_cast<int>(r);
    }
  }
  return 0;
}

int cuda_device_count() { return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0; }

c10::Device choose_device(const std::string& requested, const std::string& where) {
  // Only a CUDA request (or auto) asks LibTorch about CUDA at all.
  const int gpus = requested == "cpu" ? 0 : cuda_device_count();
#ifdef M4_WITH_CUDA
  const bool build_cuda = true;
#else
  const bool build_cuda = gpus > 0;
#endif
  const c10::Device d = pick_device(requested, gpus, local_rank(), where, build_cuda);
  if (d.is_cuda()) c10::impl::getDeviceGuardImpl(c10::kCUDA)->setDevice(d);
  return d;
}

void synchronize(c10::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

int64_t peak_device_memory(c10::Device device) {
#ifdef M4_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return stats.allocated_bytes[0].peak;  // [0]: the aggregate over pool kinds, in every LibTorch
  }
#endif
  (void)device;
  return -1;
}

void reset_peak_device_memory(c10::Device device) {
#ifdef M4_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#endif
  (void)device;
}

std::string describe_device(c10::Device device) {
  if (!device.is_cuda()) return device.str();
  return device.str() + " (of " + std::to_string(cuda_device_count()) + ")";
}

}  // namespace m4
