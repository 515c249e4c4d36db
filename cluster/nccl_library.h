// NCCL, loaded at run time: dlopen of libnccl.so.2 and the handful of
// functions an all-reduce needs, declared here (after NCCL's nccl.h and vLLM's
// pynccl_wrapper), so no build needs NCCL's headers or links NCCL, and a
// machine without it fails with one line naming what to install.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace m4 {

// NCCL's C types, as nccl.h declares them (ABI-stable since NCCL 2.0).
namespace nccl {
using Result = int;  // ncclResult_t; 0 = ncclSuccess
using Comm = struct OpaqueComm*;
struct UniqueId {
  char internal[128];
};
inline constexpr int kFloat32 = 7;  // ncclFloat32
inline constexpr int kSum = 0;      // ncclSum
}  // namespace nccl

class NcclLibrary {
 public:
  // Opens `path`, or $M4FORGE_NCCL_LIBRARY, or "libnccl.so.2" on the loader's
  // search path (LD_LIBRARY_PATH: the PyTorch wheel's nvidia/nccl/lib, a CUDA
  // LibTorch's lib/). Throws m4::Error(kIo) naming the file and what to install
  // when it cannot be opened, or (kBadInput) the first missing function when
  // it is not NCCL.
  static std::shared_ptr<NcclLibrary> open(const std::string& path = "");
  ~NcclLibrary();
  NcclLibrary(const NcclLibrary&) = delete;
  NcclLibrary& operator=(const NcclLibrary&) = delete;

  const std::string& path() const { return path_; }
  // "2.21.5": from ncclGetVersion (major*10000 + minor*100 + patch since 2.9).
  std::string version() const;
  // NCCL's own text for a result code.
  std::string error_string(nccl::Result r) const;

  nccl::Result (*get_version)(int*) = nullptr;
  nccl::Result (*get_unique_id)(nccl::UniqueId*) = nullptr;
  nccl::Result (*comm_init_rank)(nccl::Comm*, int, nccl::UniqueId, int) = nullptr;
  nccl::Result (*all_reduce)(const void*, void*, size_t, int, int, nccl::Comm, void* /*cudaStream_t*/) = nullptr;
  nccl::Result (*comm_get_async_error)(nccl::Comm, nccl::Result*) = nullptr;
  nccl::Result (*comm_abort)(nccl::Comm) = nullptr;
  nccl::Result (*comm_destroy)(nccl::Comm) = nullptr;
  const char* (*get_error_string)(nccl::Result) = nullptr;

 private:
  NcclLibrary() = default;
  void* handle_ = nullptr;
  std::string path_;
};

}  // namespace m4
