// The process group a training job runs in: rank and world from MPI when the
// process was started by mpirun/srun (one process otherwise), and the one
// collective the trainer needs, a sum all-reduce of a flat f32 buffer. A
// collective that does not finish within the timeout (a rank died or hangs)
// aborts the whole job instead of hanging forever.
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace m4 {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  virtual std::string backend() const = 0;  // "single", "mpi", "nccl"
  // In-place sum over ranks of a contiguous f32 tensor: on the CPU or (mpi,
  // through a host copy) a GPU; nccl: on this rank's GPU.
  virtual void allreduce_sum(at::Tensor& buffer) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job with `code` (MPI_Abort under MPI).
  [[noreturn]] virtual void abort(int code, const std::string& why) = 0;
};

struct CommunicatorOptions {
  // A collective that takes longer than this aborts the job (a peer died or hangs).
  std::chrono::seconds collective_timeout{300};
  // auto | single | mpi | nccl (`--backend`): auto is MPI under mpirun/srun,
  // else one process; nccl needs a CUDA build (CUDA tensors), see cluster/README.md.
  std::string backend = "auto";
};

// The backends `--backend` names, in order.
const std::vector<std::string>& communicator_backends();

// The backend `options.backend` resolves to here ("single", "mpi" or
// "nccl"), or m4::Error(kInvalidArgument) saying why it cannot run: an
// unknown name, single under a multi-rank launch, mpi without a launch or an
// MPI build, nccl without CUDA, a GPU or NCCL itself (cluster/nccl_library.h).
std::string resolve_backend(const CommunicatorOptions& options);

// The resolved backend's communicator: MPI when launched under mpirun/srun
// (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the environment) and built
// with MPI; else a single process. nccl: this rank's GPU (local rank % GPUs)
// made current, NCCL's unique id broadcast over MPI, the watchdog polling.
std::unique_ptr<Communicator> make_communicator(const CommunicatorOptions& options = {});

// A group of one (this process alone), e.g. for a task a rank trains by itself.
std::unique_ptr<Communicator> make_single_process();

// Whether this binary was built with MPI support.
bool mpi_available();

}  // namespace m4
