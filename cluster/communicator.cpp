// Single-process and MPI communicators, with a watchdog on collectives.
#include "cluster/communicator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "cluster/nccl_library.h"
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
    M4_CHECK(buffer.is_contiguous() && buffer.scalar_type() == at::kFloat && !buffer.is_cuda(), ErrorCode::kInternal,
             "allreduce_sum takes a contiguous CPU f32 buffer");
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

 private:
  int rank_ = 0, world_ = 1;
  std::unique_ptr<Watchdog> watchdog_;
};
#endif

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
    const auto nccl = NcclLibrary::open();  // a missing NCCL names what to install
    M4_FAIL(ErrorCode::kInvalidArgument, "--backend nccl: NCCL ", nccl->version(), " loads from ", nccl->path(),
            ", but m4forge does not yet train on CUDA devices (device-generic training is not built); use --backend mpi");
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
  if (resolve_backend(options) == "single") return std::make_unique<SingleProcess>();
#ifdef M4_WITH_MPI
  return std::make_unique<Mpi>(options);
#else
  M4_FAIL(ErrorCode::kInternal, "no MPI in this build");
#endif
}

}  // namespace m4
