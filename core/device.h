// The device a process computes on (train.device, --device): cpu, or under
// mpirun/srun each rank's own GPU, cuda:(local rank % GPUs). Nothing here
// needs CUDA headers or libraries: a CPU LibTorch (Debian's 1.13) and a CUDA
// one (a PyTorch wheel's 2.x) compile the same code, and a CPU build answers
// "no CUDA" at run time.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

namespace m4 {

// The names train.device and --device take, in order: auto, cpu, cuda.
const std::vector<std::string>& device_names();

// The device `requested` names for a process with `local_rank` on a machine
// where this build sees `cuda_devices` GPUs: auto is cuda when there is one,
// else cpu; cuda is cuda:(local_rank % cuda_devices). m4::Error
// (kInvalidArgument) naming `where` (the config file, or "--device") for an
// unknown name, or cuda without a GPU (saying whether the build or the
// machine lacks it).
c10::Device pick_device(const std::string& requested, int cuda_devices, int local_rank, const std::string& where,
                        bool build_has_cuda);

// This process's rank among the ranks on its node: OMPI_COMM_WORLD_LOCAL_RANK,
// SLURM_LOCALID, MPI_LOCALRANKID or LOCAL_RANK, else 0.
int local_rank();

// GPUs this build and machine see (0 in a CPU build).
int cuda_device_count();

// pick_device for this process, and with CUDA that device made current (the
// stream NCCL and the kernels run on belong to it).
c10::Device choose_device(const std::string& requested, const std::string& where);

// Waits for the device's queued work (nothing on cpu).
void synchronize(c10::Device device);

// Peak bytes the caching allocator has held on `device` since the last reset;
// -1 when unknown (cpu, or a build without CUDA).
int64_t peak_device_memory(c10::Device device);
void reset_peak_device_memory(c10::Device device);

// "cpu", "cuda:1 (of 8)".
std::string describe_device(c10::Device device);

}  // namespace m4
