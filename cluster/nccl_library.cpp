// Run-time NCCL loader (see nccl_library.h).
#include "cluster/nccl_library.h"

#include <dlfcn.h>

#include <cstdlib>

#include "core/error.h"

namespace m4 {

namespace {

constexpr const char* kInstallHint =
    "install NCCL (pip: nvidia-nccl-cu12, whose nvidia/nccl/lib goes on LD_LIBRARY_PATH; or NVIDIA's libnccl2 "
    "package), or set M4FORGE_NCCL_LIBRARY to its libnccl.so.2";

template <typename Fn>
void bind_symbol(void* handle, const std::string& path, const char* symbol, Fn* out) {
  void* p = ::dlsym(handle, symbol);
  M4_CHECK(p != nullptr, ErrorCode::kBadInput, path, ": is not NCCL (no function ", symbol, "; ", kInstallHint, ")");
  *out = reinterpret_cast<Fn>(p);
}

}  // namespace

std::shared_ptr<NcclLibrary> NcclLibrary::open(const std::string& requested) {
  std::string path = requested;
  if (path.empty()) {
    const char* env = std::getenv("M4FORGE_NCCL_LIBRARY");
    path = env != nullptr && *env != '\0' ? env : "libnccl.so.2";
  }
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    M4_FAIL(ErrorCode::kIo, path, ": cannot load NCCL (", why != nullptr ? why : "dlopen failed", "; ", kInstallHint, ")");
  }
  std::shared_ptr<NcclLibrary> lib(new NcclLibrary());
  lib->handle_ = handle;
  lib->path_ = path;
  bind_symbol(handle, path, "ncclGetVersion", &lib->get_version);
  bind_symbol(handle, path, "ncclGetUniqueId", &lib->get_unique_id);
  bind_symbol(handle, path, "ncclCommInitRank", &lib->comm_init_rank);
  bind_symbol(handle, path, "ncclAllReduce", &lib->all_reduce);
  bind_symbol(handle, path, "ncclCommGetAsyncError", &lib->comm_get_async_error);
  bind_symbol(handle, path, "ncclCommAbort", &lib->comm_abort);
  bind_symbol(handle, path, "ncclCommDestroy", &lib->comm_destroy);
  bind_symbol(handle, path, "ncclGetErrorString", &lib->get_error_string);
  return lib;
}

NcclLibrary::~NcclLibrary() {
  if (handle_ != nullptr) ::dlclose(handle_);
}

std::string NcclLibrary::version() const {
  int v = 0;
  if (get_version(&v) != 0) return "unknown";
  // NCCL >= 2.9: major * 10000 + minor * 100 + patch; before: major * 1000 + minor * 100 + patch.
  const int major = v >= 10000 ? v / 10000 : v / 1000;
  const int rest = v >= 10000 ? v % 10000 : v % 1000;
  return std::to_string(major) + "." + std::to_string(rest / 100) + "." + std::to_string(rest % 100);
}

std::string NcclLibrary::error_string(nccl::Result r) const {
  const char* s = get_error_string != nullptr ? get_error_string(r) : nullptr;
  return s != nullptr ? s : "NCCL error " + std::to_string(r);
}

}  // namespace m4
