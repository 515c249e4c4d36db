// firmware_load_bench: how long it takes to get a usable backbone out of a
// ~2 GB f32 firmware, and how much memory that costs, against a plain read()
// of the same weight file (warm page cache). See bench/README.md.
//
// The parent synthesizes the firmware once (or reuses --dir), warms the page
// cache, then runs every measurement in a fresh child process (fork + exec of
// this binary with --mode), so that each mode's peak RSS (VmHWM) is its own.
// Modes run round-robin over the repeats so that background load drifts hit
// every mode alike.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/cpu_runtime.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "firmware/firmware.h"
#include "firmware/llama.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  fs::path dir = "/tmp/m4-bench-fw";
  int repeats = 5;
  bool keep = false;
  int threads = 0;  // 0: every core
  std::string mode;  // internal: the child's measurement
};

[[noreturn]] void usage(const char* argv0, int rc) {
  std::fprintf(rc == 0 ? stdout : stderr,
               "usage: %s [--dir DIR] [--repeats N] [--keep] [--threads N]\n"
               "  --dir DIR     firmware directory; synthesized there if absent, reused if present\n"
               "                (default /tmp/m4-bench-fw)\n"
               "  --repeats N   runs per mode (default 5)\n"
               "  --keep        keep a firmware this run synthesized (default: delete it at the end)\n"
               "  --threads N   threads for verify and forward (default 0 = every core)\n"
               "  --mode M      run one measurement in this process and print its RESULT line\n"
               "                (raw, raw-prefaulted, mmap-touch, load, load-touch, load-forward, verify;\n"
               "                needs an existing --dir); the parent runs each mode this way\n",
               argv0);
  std::exit(rc);
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0], 2);
      return argv[++i];
    };
    if (s == "--dir") a.dir = value();
    else if (s == "--repeats") a.repeats = std::max(1, std::atoi(value().c_str()));
    else if (s == "--keep") a.keep = true;
    else if (s == "--threads") a.threads = std::atoi(value().c_str());
    else if (s == "--mode") a.mode = value();
    else if (s == "-h" || s == "--help") usage(argv[0], 0);
    else usage(argv[0], 2);
  }
  return a;
}

// The ~2 GB backbone: 491 M parameters, f32.
m4::LlamaConfig bench_config() {
  m4::LlamaConfig c;
  c.vocab_size = 32000;
  c.hidden_size = 2048;
  c.intermediate_size = 5632;
  c.num_hidden_layers = 8;
  c.num_attention_heads = 16;
  c.num_key_value_heads = 4;
  c.head_dim = 128;
  c.max_position_embeddings = 2048;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = false;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  c.pad_token_id = 0;
  return c;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Fields of /proc/self/status in KiB (VmHWM, VmRSS, RssAnon, RssFile, ...).
std::map<std::string, long> proc_status() {
  std::map<std::string, long> out;
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon);
    if (key.rfind("Vm", 0) != 0 && key.rfind("Rss", 0) != 0) continue;
    out[key] = std::atol(line.c_str() + colon + 1);
  }
  return out;
}

fs::path weight_file(const fs::path& dir) { return dir / "backbone" / "model.safetensors"; }

uint64_t file_size_of(const fs::path& p) { return static_cast<uint64_t>(fs::file_size(p)); }

// Fraction of the file's pages in the page cache (mincore on a mapping that is
// never touched, so asking does not change the answer).
double cached_fraction(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  const size_t size = file_size_of(p);
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) return -1;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((size + page - 1) / page);
  double frac = -1;
  if (::mincore(m, size, vec.data()) == 0) {
    size_t in = 0;
    for (unsigned char v : vec) in += v & 1;
    frac = static_cast<double>(in) / static_cast<double>(vec.size());
  }
  ::munmap(m, size);
  return frac;
}

// Reads the whole file through a small buffer: fills the page cache without
// growing this process.
void warm_page_cache(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  M4_CHECK(fd >= 0, m4::ErrorCode::kIo, p.string(), ": cannot open: ", std::strerror(errno));
  static char buf[1 << 20];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
  }
  ::close(fd);
}

// One byte per page of every parameter: faults the whole mapping in, as the
// first forward pass would, so the result is comparable with read().
uint64_t touch_parameters(m4::LlamaImpl& model) {
  uint64_t sum = 0;
  for (const auto& p : model.parameters(/*recurse=*/true)) {
    const auto* b = static_cast<const volatile uint8_t*>(p.data_ptr());
    const size_t n = p.nbytes();
    if (n == 0) continue;
    for (size_t i = 0; i < n; i += 4096) sum += b[i];
    sum += b[n - 1];
  }
  return sum;
}

// ---------------------------------------------------------------------------
// Child side: one measurement, one line on stdout.

int run_child(const Args& a) {
  const fs::path file = weight_file(a.dir);
  const uint64_t size = file_size_of(file);
  // Warm cache means warm now: this machine's kernel may page cold page cache
  // out in the background (DAMON), so read the file once more right here.
  warm_page_cache(file);
  const double cached = cached_fraction(file);
  if (a.mode == "load-forward" || a.mode == "verify") m4::configure_cpu_runtime(a.threads);
  const auto before = proc_status();
  uint64_t check = 0;
  double secs = 0;
  // Objects the measurement produced stay alive until RSS is sampled.
  void* buffer = nullptr;
  std::shared_ptr<m4::LlamaImpl> model;
  void* mapping = nullptr;

  if (a.mode == "raw" || a.mode == "raw-prefaulted") {
    // The baseline: one malloc'd buffer, read() of every byte of the file.
    // raw-prefaulted (information only) faults the buffer in before the clock
    // starts, which separates the copy out of the page cache from the cost of
    // first-touching 2 GB of fresh anonymous memory.
    Clock::time_point t0 = Clock::now();
    if (a.mode == "raw-prefaulted") {
      buffer = std::malloc(size);
      M4_CHECK(buffer != nullptr, m4::ErrorCode::kIo, "malloc(", size, ") failed");
      std::memset(buffer, 1, size);
      t0 = Clock::now();
    }
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    M4_CHECK(fd >= 0, m4::ErrorCode::kIo, file.string(), ": cannot open");
    if (buffer == nullptr) buffer = std::malloc(size);
    M4_CHECK(buffer != nullptr, m4::ErrorCode::kIo, "malloc(", size, ") failed");
    size_t got = 0;
    while (got < size) {
      ssize_t n = ::read(fd, static_cast<char*>(buffer) + got, std::min<size_t>(size - got, 1u << 30));
      if (n < 0 && errno == EINTR) continue;
      M4_CHECK(n > 0, m4::ErrorCode::kIo, file.string(), ": read failed");
      got += static_cast<size_t>(n);
    }
    ::close(fd);
    secs = seconds_since(t0);
    for (size_t i = 0; i < size; i += 4096) check += static_cast<uint8_t*>(buffer)[i];
  } else if (a.mode == "mmap-touch") {
    // The floor for a lazily mapped load: mmap + fault every page, no parsing.
    const auto t0 = Clock::now();
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    M4_CHECK(fd >= 0, m4::ErrorCode::kIo, file.string(), ": cannot open");
    mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    M4_CHECK(mapping != MAP_FAILED, m4::ErrorCode::kIo, "mmap failed");
    const auto* b = static_cast<const volatile uint8_t*>(mapping);
    for (size_t i = 0; i < size; i += 4096) check += b[i];
    secs = seconds_since(t0);
  } else if (a.mode == "load" || a.mode == "load-touch" || a.mode == "load-forward") {
    const auto t0 = Clock::now();
    m4::Firmware fw = m4::Firmware::open(a.dir);
    model = fw.load_backbone({});
    if (a.mode == "load-touch") {
      check = touch_parameters(*model);
    } else if (a.mode == "load-forward") {
      at::NoGradGuard no_grad;
      at::Tensor ids = at::arange(16, at::kLong).mul_(977).remainder_(32000).add_(3).view({1, 16});
      at::Tensor logits = model->forward(ids).logits;
      check = static_cast<uint64_t>(logits.sum().item<double>() != 0);
    }
    secs = seconds_since(t0);
  } else if (a.mode == "verify") {
    const auto t0 = Clock::now();
    m4::Firmware fw = m4::Firmware::open(a.dir);
    fw.verify(a.threads);
    secs = seconds_since(t0);
  } else {
    std::fprintf(stderr, "unknown --mode %s\n", a.mode.c_str());
    return 2;
  }
  const auto after = proc_status();
  std::printf("RESULT secs=%.6f hwm_kb=%ld anon_before_kb=%ld anon_kb=%ld file_kb=%ld cached=%.4f check=%" PRIu64
              "\n",
              secs, after.count("VmHWM") ? after.at("VmHWM") : -1L,
              before.count("RssAnon") ? before.at("RssAnon") : -1L,
              after.count("RssAnon") ? after.at("RssAnon") : -1L,
              after.count("RssFile") ? after.at("RssFile") : -1L, cached, check);
  std::fflush(stdout);
  if (buffer != nullptr) std::free(buffer);
  if (mapping != nullptr) ::munmap(mapping, size);
  return 0;
}

// ---------------------------------------------------------------------------
// Parent side.

struct Sample {
  double secs = 0;
  long hwm_kb = 0, anon_before_kb = 0, anon_kb = 0, file_kb = 0;
  double cached = 0;
};

Sample spawn(const Args& a, const std::string& mode) {
  int pipefd[2];
  M4_CHECK(::pipe(pipefd) == 0, m4::ErrorCode::kIo, "pipe failed");
  const std::string exe = fs::read_symlink("/proc/self/exe").string();
  const std::string dir = a.dir.string(), threads = std::to_string(a.threads);
  pid_t pid = ::fork();
  M4_CHECK(pid >= 0, m4::ErrorCode::kIo, "fork failed");
  if (pid == 0) {
    ::dup2(pipefd[1], STDOUT_FILENO);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    std::vector<const char*> argv = {exe.c_str(), "--mode", mode.c_str(), "--dir", dir.c_str(),
                                     "--threads", threads.c_str(), nullptr};
    ::execv(exe.c_str(), const_cast<char* const*>(argv.data()));
    std::_Exit(127);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  M4_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, m4::ErrorCode::kInternal, "child --mode ", mode,
           " failed (status ", status, "): ", out);
  Sample s;
  auto pos = out.find("RESULT ");
  M4_CHECK(pos != std::string::npos, m4::ErrorCode::kInternal, "child --mode ", mode, " printed no result: ", out);
  std::istringstream is(out.substr(pos + 7));
  for (std::string kv; is >> kv;) {
    auto eq = kv.find('=');
    const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    if (k == "secs") s.secs = std::stod(v);
    else if (k == "hwm_kb") s.hwm_kb = std::stol(v);
    else if (k == "anon_before_kb") s.anon_before_kb = std::stol(v);
    else if (k == "anon_kb") s.anon_kb = std::stol(v);
    else if (k == "file_kb") s.file_kb = std::stol(v);
    else if (k == "cached") s.cached = std::stod(v);
  }
  return s;
}

// Writes the firmware: seeded N(0, 0.02^2) weights (norms N(1, 0.02^2)),
// HF layout (model.safetensors + config.json), via create_firmware.
void synthesize(const fs::path& dir) {
  const m4::LlamaConfig c = bench_config();
  std::printf("synthesizing %s: %s\n", dir.c_str(), c.summary().c_str());
  std::fflush(stdout);
  const auto t0 = Clock::now();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(20261121);
  m4::NamedTensors tensors;
  for (const auto& [name, shape] : m4::LlamaImpl::expected_shapes(c)) {
    at::Tensor t = at::empty(shape, at::kFloat);
    if (name.find("norm") != std::string::npos) t.normal_(1.0, 0.02, gen);
    else t.normal_(0.0, 0.02, gen);
    tensors.emplace_back(name == "lm_head.weight" ? name : "model." + name, t);
  }
  const double fill_s = seconds_since(t0);
  nlohmann::json hf_config = c.to_json();
  hf_config["architectures"] = {"LlamaForCausalLM"};
  hf_config["model_type"] = "llama";
  hf_config["torch_dtype"] = "float32";
  nlohmann::json provenance = {{"backbone", {{"source", "bench/firmware_load_bench"}, {"seed", 20261121}}}};
  const auto t1 = Clock::now();
  m4::create_firmware(dir, "m4-bench", "1.0.0", provenance, [&](const fs::path& staging) {
    fs::create_directories(staging / "backbone");
    m4::write_safetensors(staging / "backbone/model.safetensors", tensors, {{"format", "pt"}});
    tensors.clear();  // the weights are on disk now: drop the in-memory copy before hashing
    m4::write_file_atomic(staging / "backbone/config.json", hf_config.dump(1) + "\n");
    m4::FirmwareModule m;
    m.arch = m4::fwkeys::kArchLlama;
    m.config = c.to_json();
    m.weights = {"backbone/model.safetensors"};
    return std::map<std::string, m4::FirmwareModule>{{m4::fwkeys::kBackbone, m}};
  });
  std::printf("synthesized in %.1f s (fill %.1f s, write + hash %.1f s)\n", seconds_since(t0), fill_s,
              seconds_since(t1));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

int run_parent(const Args& a) {
  bool created = false;
  if (!fs::exists(a.dir / m4::fwkeys::kManifestFile)) {
    synthesize(a.dir);
    created = true;
  } else {
    std::printf("reusing %s\n", a.dir.c_str());
  }
  {
    // The firmware must be the benchmark's (a reused --dir could be anything).
    m4::Firmware fw = m4::Firmware::open(a.dir);
    M4_CHECK(fw.has(m4::fwkeys::kBackbone), m4::ErrorCode::kMismatch, a.dir.string(), ": no backbone");
  }
  const fs::path file = weight_file(a.dir);
  const uint64_t size = file_size_of(file);
  const double mib = static_cast<double>(size) / (1 << 20);

  const auto rt = m4::configure_cpu_runtime(a.threads);
  std::printf("weights: %s, %" PRIu64 " bytes (%.1f MiB, %.2f GB)\n", file.c_str(), size, mib, size / 1e9);
  std::printf("blas: %s (%s), threads %d; THP: %s\n", rt.blas.c_str(), rt.blas_kind.c_str(), rt.torch_threads,
              first_line("/sys/kernel/mm/transparent_hugepage/enabled").c_str());
  const auto tw = Clock::now();
  warm_page_cache(file);
  std::printf("page cache warmed in %.2f s (%.0f%% of the file cached)\n", seconds_since(tw),
              100 * cached_fraction(file));
  std::fflush(stdout);

  const std::vector<std::string> modes = {"raw", "raw-prefaulted", "mmap-touch", "load", "load-touch", "load-forward", "verify"};
  std::map<std::string, std::vector<Sample>> samples;
  for (int r = 0; r < a.repeats; ++r) {
    for (const auto& m : modes) {
      samples[m].push_back(spawn(a, m));
    }
    std::printf("repeat %d/%d done\n", r + 1, a.repeats);
    std::fflush(stdout);
  }

  auto med = [&](const std::string& m, auto field) {
    std::vector<double> v;
    for (const auto& s : samples[m]) v.push_back(static_cast<double>(field(s)));
    return median(v);
  };
  const double raw = med("raw", [](const Sample& s) { return s.secs; });
  std::printf("\n%-15s %9s %9s %8s %9s %10s %10s %10s %10s %7s\n", "mode", "median_s", "min_s", "x_raw",
              "GB/s", "peakRSS", "anon+", "RssAnon", "RssFile", "cached");
  std::printf("%-15s %9s %9s %8s %9s %10s %10s %10s %10s %7s\n", "", "", "", "", "", "MiB", "MiB", "MiB", "MiB",
              "min%");
  for (const auto& m : modes) {
    std::vector<double> t;
    double cached_min = 1;
    for (const auto& s : samples[m]) t.push_back(s.secs), cached_min = std::min(cached_min, s.cached);
    const double md = median(t), mn = *std::min_element(t.begin(), t.end());
    const double hwm = med(m, [](const Sample& s) { return s.hwm_kb; }) / 1024;
    const double anon_delta = med(m, [](const Sample& s) { return s.anon_kb - s.anon_before_kb; }) / 1024;
    const double anon = med(m, [](const Sample& s) { return s.anon_kb; }) / 1024;
    const double filek = med(m, [](const Sample& s) { return s.file_kb; }) / 1024;
    std::printf("%-15s %9.4f %9.4f %8.3f %9.2f %10.0f %10.0f %10.0f %10.0f %7.1f\n", m.c_str(), md, mn, md / raw,
                size / 1e9 / md, hwm, anon_delta, anon, filek, 100 * cached_min);
  }
  std::printf(
      "\nx_raw: median time / median raw time. GB/s: weight-file bytes / median time.\n"
      "peakRSS: VmHWM of the child. anon+: RssAnon growth during the measurement (a copy of the\n"
      "weights shows here); RssAnon/RssFile: at the end, objects alive. File-backed pages are the\n"
      "shared page cache mapped in, not a copy. Times exclude process start and libtorch loading.\n");

  if (created && !a.keep) {
    fs::remove_all(a.dir);
    std::printf("removed %s (pass --keep to reuse it)\n", a.dir.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  m4::restart_if_blas_misdetected_cpu(argv);
  try {
    const Args a = parse_args(argc, argv);
    return a.mode.empty() ? run_parent(a) : run_child(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "firmware_load_bench: %s\n", e.what());
    return 1;
  }
}
