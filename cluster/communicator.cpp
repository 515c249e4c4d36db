// Single-process, MPI and NCCL communicators, with a watchdog on collectives.
#include "cluster/communicator.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "cluster/nccl_library.h"
#include "core/device.h"
#include "core/error.h"

#ifdef M4_WITH_MPI
#include <mpi.h>
#endif

namespace m4 {
namespace {

class SingleProcess : public Communicator {
 public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  std::string backend() const override { return "single"; }
  void allreduce_sum(at::Tensor&) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code, const std::string& why) override {
    spdlog::error("aborting: {}", why);
    std::_Exit(code);
  }
};

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(v) != nullptr) return true;
  }
  return false;
}

#ifdef M4_WITH_MPI
// Aborts the job if a collective outlives the timeout: a dead or hung peer
// must fail the job, not leave the others waiting forever.
class Watchdog {
 public:
  Watchdog(std::chrono::seconds timeout, int rank) : timeout_(timeout), rank_(rank), thread_([this] { run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void begin(const char* what) {
    std::lock_guard<std::mutex> l(mu_);
    what_ = what;
    deadline_ = std::chrono::steady_clock::now() + timeout_;
    armed_ = true;
    cv_.notify_all();
  }
  void end() {
    std::lock_guard<std::mutex> l(mu_);
    armed_ = false;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> l(mu_);
    while (!stop_) {
      if (!armed_) {
        cv_.wait(l);
        continue;
      }
      if (cv_.wait_until(l, deadline_) == std::cv_status::timeout && armed_ && std::chrono::steady_clock::now() >= deadline_) {
        spdlog::error("rank {}: {} did not finish within {} s (a peer rank died or hangs); aborting the job", rank_, what_,
                      timeout_.count());
        MPI_Abort(MPI_COMM_WORLD, 75);
      }
    }
  }
  std::chrono::seconds timeout_;
  int rank_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, armed_ = false;
  const char* what_ = "";
  std::chrono::steady_clock::time_point deadline_;
  std::thread thread_;
};

class Mpi : public Communicator {
 public:
  explicit Mpi(const CommunicatorOptions& o) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    // Errors return codes instead of aborting inside MPI, so we can say what failed.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
    watchdog_ = std::make_unique<Watchdog>(o.collective_timeout, rank_);
  }
  ~Mpi() override {
    watchdog_.reset();
    MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int world() const override { return world_; }
  std::string backend() const override { return "mpi"; }
  void allreduce_sum(at::Tensor& buffer) override {
    M4_CHECK(buffer.is_contiguous() && buffer.scalar_type() == at::kFloat, ErrorCode::kInternal,
             "allreduce_sum takes a contiguous f32 buffer");
    if (!buffer.is_cpu()) {  // a CUDA run under --backend mpi: through a host copy
      at::Tensor host = buffer.cpu();
      allreduce_sum(host);
      buffer.copy_(host);
      return;
    }
    watchdog_->begin("MPI_Allreduce");
    const int rc = MPI_Allreduce(MPI_IN_PLACE, buffer.data_ptr<float>(), static_cast<int>(buffer.numel()), MPI_FLOAT,
                                 MPI_SUM, MPI_COMM_WORLD);
    watchdog_->end();
    if (rc != MPI_SUCCESS) abort(75, "MPI_Allreduce failed (a peer rank died?)");
  }
  void barrier() override {
    watchdog_->begin("MPI_Barrier");
    const int rc = MPI_Barrier(MPI_COMM_WORLD);
    watchdog_->end();
    if (rc != MPI_SUCCESS) abort(75, "MPI_Barrier failed (a peer rank died?)");
  }
  [[noreturn]] void abort(int code, const std::string& why) override {
    spdlog::error("rank {}: aborting the job: {}", rank_, why);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }
  // rank 0's `n` bytes to every rank (NCCL's unique id).
  void broadcast_bytes(void* data, int n) {
    watchdog_->begin("MPI_Bcast");
    const int rc = MPI_Bcast(data, n, MPI_BYTE, 0, MPI_COMM_WORLD);
    watchdog_->end();
    if (rc != MPI_SUCCESS) abort(75, "MPI_Bcast failed (a peer rank died?)");
  }

 private:
  int rank_ = 0, world_ = 1;
  std::unique_ptr<Watchdog> watchdog_;
};
#endif

// NCCL's sum all-reduce of a CUDA f32 buffer, in place on the device; the
// ranks, the unique id's broadcast, barriers and aborts go through MPI (one
// process alone needs none). The reduction runs on the device's default
// stream, the one LibTorch queues the step's kernels on, and this thread
// polls it: an error NCCL reports (ncclCommGetAsyncError), or a reduction not
// done within the collective timeout (a peer died or hangs), aborts the
// communicator (ncclCommAbort, which ends its kernels) and then the job.
class Nccl : public Communicator {
 public:
  Nccl(const CommunicatorOptions& o, std::shared_ptr<NcclLibrary> lib, c10::Device device, std::unique_ptr<Communicator> ranks)
      : lib_(std::move(lib)), device_(device), ranks_(std::move(ranks)), timeout_(o.collective_timeout) {
    nccl::UniqueId id{};
    if (ranks_->rank() == 0) check(lib_->get_unique_id(&id), "ncclGetUniqueId");
#ifdef M4_WITH_MPI
    if (auto* mpi = dynamic_cast<Mpi*>(ranks_.get())) mpi->broadcast_bytes(&id, static_cast<int>(sizeof id));
#endif
    check(lib_->comm_init_rank(&comm_, ranks_->world(), id, ranks_->rank()), "ncclCommInitRank");
    if (ranks_->rank() == 0)
      spdlog::info("nccl: {} from {}, {} ranks, rank 0 on {}", lib_->version(), lib_->path(), ranks_->world(), device_.str());
  }
  ~Nccl() override {
    if (comm_ != nullptr) lib_->comm_destroy(comm_);
  }
  int rank() const override { return ranks_->rank(); }
  int world() const override { return ranks_->world(); }
  std::string backend() const override { return "nccl"; }
  void allreduce_sum(at::Tensor& buffer) override {
    M4_CHECK(buffer.is_contiguous() && buffer.scalar_type() == at::kFloat && buffer.device() == device_,
             ErrorCode::kInternal, "nccl allreduce_sum takes a contiguous f32 buffer on ", device_.str(), ", not ",
             buffer.device().str());
    const c10::impl::DeviceGuardImplInterface* cuda = c10::impl::getDeviceGuardImpl(c10::kCUDA);
    const c10::Stream stream = cuda->getStream(device_);
    M4_CHECK(stream == cuda->getDefaultStream(device_), ErrorCode::kInternal,
             "nccl allreduce_sum runs on the default stream, and the current one is another");
    check(lib_->all_reduce(buffer.data_ptr(), buffer.data_ptr(), static_cast<size_t>(buffer.numel()), nccl::kFloat32,
                           nccl::kSum, comm_, /*the legacy default stream=*/nullptr),
          "ncclAllReduce");
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    while (!cuda->queryStream(stream)) {
      nccl::Result async = 0;
      lib_->comm_get_async_error(comm_, &async);
      if (async != 0) fail("ncclAllReduce failed: " + lib_->error_string(async) + " (a peer rank died?)");
      if (std::chrono::steady_clock::now() >= deadline)
        fail("ncclAllReduce did not finish within " + std::to_string(timeout_.count()) + " s (a peer rank died or hangs)");
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  void barrier() override { ranks_->barrier(); }
  [[noreturn]] void abort(int code, const std::string& why) override {
    if (comm_ != nullptr) lib_->comm_abort(comm_);
    comm_ = nullptr;
    ranks_->abort(code, why);
  }

 private:
  void check(nccl::Result r, const char* what) {
    M4_CHECK(r == 0, ErrorCode::kIo, what, " failed: ", lib_->error_string(r), " (NCCL ", lib_->version(), ", ",
             lib_->path(), ")");
  }
  [[noreturn]] void fail(const std::string& why) {
    spdlog::error("rank {}: {}; aborting the job", rank(), why);
    abort(75, why);
  }
  std::shared_ptr<NcclLibrary> lib_;
  c10::Device device_;
  std::unique_ptr<Communicator> ranks_;
  std::chrono::seconds timeout_;
  nccl::Comm comm_ = nullptr;
};

}  // namespace

bool mpi_available() {
#ifdef M4_WITH_MPI
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Communicator> make_single_process() { return std::make_unique<SingleProcess>(); }

const std::vector<std::string>& communicator_backends() {
  static const std::vector<std::string> names = {"auto", "single", "mpi", "nccl"};
  return names;
}

namespace {

// The world size the launcher announces (1 when it announces none).
int launched_world() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"}) {
    if (const char* s = std::getenv(v)) return std::max(1, std::atoi(s));
  }
  return 1;
}

}  // namespace

std::string resolve_backend(const CommunicatorOptions& o) {
  const auto& known = communicator_backends();
  if (std::find(known.begin(), known.end(), o.backend) == known.end()) {
    std::string names;
    for (const auto& n : known) names += (names.empty() ? "" : ", ") + n;
    M4_FAIL(ErrorCode::kInvalidArgument, "--backend: unknown '", o.backend, "' (known: ", names, ")");
  }
  const bool launched = launched_by_mpi();
  if (o.backend == "nccl") {
    // NCCL all-reduces CUDA tensors.
    M4_CHECK(at::hasCUDA(), ErrorCode::kInvalidArgument,
             "--backend nccl: this m4forge's LibTorch has no CUDA, so it trains on the CPU, where NCCL has nothing to "
             "reduce; use --backend ", launched ? "mpi" : "single", " (or auto)");
    NcclLibrary::open();  // a missing NCCL names what to install
    M4_CHECK(cuda_device_count() > 0, ErrorCode::kInvalidArgument,
             "--backend nccl: this machine shows no CUDA GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES)");
    M4_CHECK(!launched || mpi_available(), ErrorCode::kInvalidArgument,
             "--backend nccl: started under mpirun/srun, but this m4forge was built without MPI, which NCCL's ranks "
             "find each other through (install libopenmpi-dev and rebuild)");
    return "nccl";
  }
  if (o.backend == "single") {
    M4_CHECK(!launched || launched_world() == 1, ErrorCode::kInvalidArgument, "--backend single: this process is one of ",
             launched_world(), " ranks started by mpirun/srun, and each would train alone into one run directory; use "
             "--backend mpi (or auto), or start one process");
    return "single";
  }
  if (o.backend == "mpi") {
    M4_CHECK(mpi_available(), ErrorCode::kInvalidArgument,
             "--backend mpi: this m4forge was built without MPI (install libopenmpi-dev and rebuild)");
    M4_CHECK(launched, ErrorCode::kInvalidArgument,
             "--backend mpi: not started by mpirun/srun (no OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK); run `mpirun -np N "
             "m4forge train ...`, or use --backend auto");
    return "mpi";
  }
  if (!launched) return "single";
  M4_CHECK(mpi_available(), ErrorCode::kInvalidArgument, "started under mpirun/srun, but this m4forge was built without MPI");
  return "mpi";
}

std::unique_ptr<Communicator> make_communicator(const CommunicatorOptions& options) {
  const std::string backend = resolve_backend(options);
  if (backend == "single") return std::make_unique<SingleProcess>();
  if (backend == "nccl") {
    // Each rank's GPU is current before NCCL binds its communicator to it.
    const c10::Device device = choose_device("cuda", "--backend nccl");
    std::unique_ptr<Communicator> ranks = std::make_unique<SingleProcess>();
#ifdef M4_WITH_MPI
    if (launched_by_mpi()) ranks = std::make_unique<Mpi>(options);
#endif
    return std::make_unique<Nccl>(options, NcclLibrary::open(), device, std::move(ranks));
  }
#ifdef M4_WITH_MPI
  return std::make_unique<Mpi>(options);
#else
  M4_FAIL(ErrorCode::kInternal, "no MPI in this build");
#endif
}

}  // namespace m4
