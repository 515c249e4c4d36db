// Atomic per-step checkpoint directories with a pointer file updated last.
#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <iomanip>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_file.h"
#include "core/safetensors.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;

constexpr const char* kLatest = "latest";
constexpr const char* kState = "state.json";
constexpr const char* kAdapter = "adapter.safetensors";
constexpr const char* kOptimizer = "optimizer.safetensors";

std::string step_name(int64_t step) {
  std::ostringstream os;
  os << "step-" << std::setw(8) << std::setfill('0') << step;
  return os.str();
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

bool complete(const fs::path& dir) {
  return fs::is_regular_file(dir / kState) && fs::is_regular_file(dir / kAdapter) && fs::is_regular_file(dir / kOptimizer);
}

}  // namespace

std::string cpu_rng_state() {
  at::Tensor s = at::detail::getDefaultCPUGenerator().get_state();
  std::ostringstream os;
  const auto* p = s.data_ptr<uint8_t>();
  for (int64_t i = 0; i < s.numel(); ++i) os << std::hex << std::setw(2) << std::setfill('0') << static_cast<int>(p[i]);
  return os.str();
}

fs::path write_checkpoint(const fs::path& run_dir, const Adapter& adapter, AdamW& opt, const CheckpointState& state) {
  const fs::path root = run_dir / "checkpoints";
  fs::create_directories(root);
  const fs::path final_dir = root / step_name(state.step), tmp = root / (step_name(state.step) + ".tmp");
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  // A write that fails (disk full, ...) leaves no half-written directory behind.
  struct RemoveUnlessRenamed {
    const fs::path& dir;
    bool renamed = false;
    ~RemoveUnlessRenamed() {
      std::error_code ec;
      if (!renamed) fs::remove_all(dir, ec);
    }
  } guard{tmp};
  adapter.save(tmp / kAdapter, /*exported=*/false);
  NamedTensors moments;
  const auto params = adapter.parameters();  // sorted by name, the optimizer's order
  for (size_t i = 0; i < params.size(); ++i) {
    moments.emplace_back("exp_avg." + params[i].name, opt.exp_avg()[i]);
    moments.emplace_back("exp_avg_sq." + params[i].name, opt.exp_avg_sq()[i]);
  }
  write_safetensors(tmp / kOptimizer, moments);
  nlohmann::json j = {{"step", state.step},         {"optimizer_steps", opt.steps()},
                      {"loader_epoch", state.loader.epoch}, {"loader_index", state.loader.index},
                      {"rng_cpu", state.rng_state_hex}, {"last_loss", state.last_loss}};
  write_file_atomic(tmp / kState, j.dump(1) + "\n");
  fsync_dir(tmp);
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  guard.renamed = true;
  fsync_dir(root);
  write_file_atomic(root / kLatest, step_name(state.step) + "\n");  // the pointer moves last
  return final_dir;
}

std::optional<fs::path> latest_checkpoint(const fs::path& run_dir) {
  const fs::path root = run_dir / "checkpoints";
  if (!fs::is_directory(root)) return std::nullopt;
  if (fs::is_regular_file(root / kLatest)) {
    std::string name = read_text_file(root / kLatest);
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    if (name.rfind("step-", 0) == 0 && complete(root / name)) return root / name;
  }
  std::optional<fs::path> best;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step-", 0) != 0 || n.size() != 13 || !complete(e.path())) continue;
    if (!best || n > best->filename().string()) best = e.path();
  }
  return best;
}

CheckpointState read_checkpoint(const fs::path& dir, Adapter& adapter, AdamW& opt) {
  const nlohmann::json j = read_json_file(dir / kState);
  CheckpointState s;
  try {
    s.step = j.at("step").get<int64_t>();
    s.loader.epoch = j.at("loader_epoch").get<int64_t>();
    s.loader.index = j.at("loader_index").get<int64_t>();
    s.rng_state_hex = j.at("rng_cpu").get<std::string>();
    s.last_loss = j.value("last_loss", 0.0);
    opt.set_steps(j.at("optimizer_steps").get<int64_t>());
  } catch (const nlohmann::json::exception& e) {
    M4_FAIL(ErrorCode::kBadInput, (dir / kState).string(), ": ", e.what());
  }
  adapter.load(dir / kAdapter);
  SafetensorsFile f = SafetensorsFile::open(dir / kOptimizer);
  const auto params = adapter.parameters();
  at::NoGradGuard ng;
  for (size_t i = 0; i < params.size(); ++i) {
    for (auto [prefix, vec] : {std::pair{"exp_avg.", &opt.exp_avg()}, std::pair{"exp_avg_sq.", &opt.exp_avg_sq()}}) {
      const std::string n = prefix + params[i].name;
      M4_CHECK(f.contains(n), ErrorCode::kBadInput, f.path().string(), ": no optimizer state '", n, "'");
      (*vec)[i].copy_(f.tensor(n));
    }
  }
  return s;
}

}  // namespace m4
