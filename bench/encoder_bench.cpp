// encoder_bench: encoder forward throughput (items/s) at 1 and 2 threads, the
// audio/image frontends, and the peak RSS of a Path-2 task (img_enc + txt_enc
// only) against loading the whole firmware. See bench/README.md.
//
// The parent synthesizes a firmware with mid-size encoders and a ~640 MB
// backbone once (or reuses --dir), measures throughput in-process, then runs
// each RSS measurement in a fresh child process (fork + exec of this binary
// with --mode), so that each mode's peak RSS (VmHWM) is its own.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/cpu_runtime.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "firmware/ast.h"
#include "firmware/clip.h"
#include "firmware/demo.h"
#include "firmware/firmware.h"
#include "firmware/image_preprocess.h"
#include "firmware/imu_encoder.h"
#include "firmware/llama.h"
#include "firmware/kaldi_fbank.h"
#include "firmware/log_mel.h"
#include "firmware/module_arch.h"
#include "firmware/weight_set.h"
#include "firmware/whisper_encoder.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  fs::path dir = "/tmp/m4-enc-bench";
  std::vector<int> threads = {1, 2};
  int iters = 3;
  bool keep = false;
  bool skip_rss = false, skip_throughput = false;
  std::string mode;  // internal: the child's measurement
  int child_threads = 2;
};

[[noreturn]] void usage(const char* argv0, int rc) {
  std::fprintf(rc == 0 ? stdout : stderr,
               "usage: %s [--dir DIR] [--threads 1,2] [--iters N] [--keep] [--no-rss] [--no-throughput]\n"
               "  --dir DIR        firmware directory; synthesized there if absent, reused if present\n"
               "                   (default /tmp/m4-enc-bench)\n"
               "  --threads LIST   thread counts for the throughput cases (default 1,2)\n"
               "  --iters N        timed iterations per case after one warm-up (default 3)\n"
               "  --keep           keep a firmware this run synthesized (default: delete it at the end)\n"
               "  --no-rss, --no-throughput  skip one half\n"
               "  --mode M         run one RSS measurement in this process and print its RESULT line\n"
               "                   (baseline, path2-load, path2, all; needs an existing --dir)\n",
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
    else if (s == "--threads") {
      a.threads.clear();
      std::string list = value();
      for (size_t p = 0; p <= list.size();) {
        size_t q = list.find(',', p);
        if (q == std::string::npos) q = list.size();
        if (q > p) a.threads.push_back(std::max(1, std::atoi(list.substr(p, q - p).c_str())));
        p = q + 1;
      }
      if (a.threads.empty()) usage(argv[0], 2);
    } else if (s == "--iters") a.iters = std::max(1, std::atoi(value().c_str()));
    else if (s == "--keep") a.keep = true;
    else if (s == "--no-rss") a.skip_rss = true;
    else if (s == "--no-throughput") a.skip_throughput = true;
    else if (s == "--mode") a.mode = value();
    else if (s == "--child-threads") a.child_threads = std::max(1, std::atoi(value().c_str()));
    else if (s == "-h" || s == "--help") usage(argv[0], 0);
    else usage(argv[0], 2);
  }
  return a;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
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

// ---------------------------------------------------------------------------
// The synthesized firmware.

const std::vector<std::string> kSlots = {"backbone", "img_enc", "txt_enc", "aud_i_enc", "aud_b_enc", "imu_enc"};

// HF-style configs, normalised through each slot's arch.
std::map<std::string, nlohmann::json> hf_configs() {
  m4::LlamaConfig c;
  c.vocab_size = 32000;
  c.hidden_size = 1024;
  c.intermediate_size = 2816;
  c.num_hidden_layers = 8;
  c.num_attention_heads = 16;
  c.num_key_value_heads = 8;
  c.head_dim = 64;
  c.max_position_embeddings = 2048;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = false;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  c.pad_token_id = 0;
  return {
      {"backbone", c.to_json()},
      // CLIP ViT-B/32's layout, narrower and shallower.
      {"img_enc", {{"hidden_size", 384}, {"intermediate_size", 1536}, {"num_hidden_layers", 6},
                   {"num_attention_heads", 6}, {"image_size", 224}, {"patch_size", 32}, {"num_channels", 3},
                   {"projection_dim", 256}, {"layer_norm_eps", 1e-5}, {"hidden_act", "quick_gelu"}}},
      {"txt_enc", {{"vocab_size", 49408}, {"hidden_size", 256}, {"intermediate_size", 1024},
                   {"num_hidden_layers", 6}, {"num_attention_heads", 4}, {"max_position_embeddings", 77},
                   {"projection_dim", 256}, {"layer_norm_eps", 1e-5}, {"hidden_act", "quick_gelu"},
                   {"bos_token_id", 49406}, {"eos_token_id", 49407}, {"pad_token_id", 1}}},
      // whisper-tiny's encoder.
      {"aud_i_enc", {{"d_model", 384}, {"encoder_layers", 4}, {"encoder_attention_heads", 6},
                     {"encoder_ffn_dim", 1536}, {"num_mel_bins", 80}, {"max_source_positions", 1500},
                     {"activation_function", "gelu"}}},
      // AST's patching (128 mels x 1024 frames, 16x16 patches, stride 10) at ViT-S width.
      {"aud_b_enc", {{"hidden_size", 384}, {"num_hidden_layers", 6}, {"num_attention_heads", 6},
                     {"intermediate_size", 1536}, {"num_mel_bins", 128}, {"max_length", 1024}, {"patch_size", 16},
                     {"frequency_stride", 10}, {"time_stride", 10}, {"layer_norm_eps", 1e-12},
                     {"hidden_act", "gelu"}, {"qkv_bias", true}}},
      {"imu_enc", {{"channels", 6}, {"window", 2000}, {"patch", 8}, {"hidden_size", 512}, {"num_hidden_layers", 6},
                   {"num_attention_heads", 8}, {"intermediate_size", 2048}, {"projection_dim", 256},
                   {"layer_norm_eps", 1e-6}, {"hidden_act", "gelu"}}},
  };
}

// Seeded N(0, 0.02^2) weights, norm gains N(1, 0.02^2), under the stored names
// (as firmware/demo.cpp's random_module_weights).
void synthesize(const fs::path& dir) {
  std::printf("synthesizing %s\n", dir.c_str());
  std::fflush(stdout);
  const auto t0 = Clock::now();
  const auto hf = hf_configs();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(20261121);
  nlohmann::json provenance = {{"source", "bench/encoder_bench"}, {"seed", 20261121}};
  m4::create_firmware(dir, "m4-enc-bench", "1.0.0", provenance, [&](const fs::path& staging) {
    std::map<std::string, m4::FirmwareModule> modules;
    for (const auto& slot : kSlots) {  // one module in memory at a time
      const m4::ModuleArch& arch = m4::arch_for_slot(slot);
      m4::FirmwareModule m;
      m.arch = arch.name;
      m.config = arch.normalize(hf.at(slot), "encoder_bench " + slot);
      m.weights = {slot + "/model.safetensors"};
      fs::create_directories(staging / slot);
      m4::write_safetensors(staging / m.weights[0], m4::random_module_weights(arch, m.config, gen), {{"format", "pt"}});
      m4::write_file_atomic(staging / slot / "config.json", m.config.dump(1) + "\n");
      modules[slot] = m;
    }
    return modules;
  });
  std::printf("synthesized in %.1f s\n", seconds_since(t0));
}

// Reads every weight file once through a small buffer (warm page cache, no RSS).
void warm_page_cache(const m4::Firmware& fw) {
  static char buf[1 << 20];
  for (const auto& [slot, m] : fw.manifest().modules) {
    for (const auto& w : m.weights) {
      const fs::path p = fw.dir() / w;
      int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
      M4_CHECK(fd >= 0, m4::ErrorCode::kIo, p.string(), ": cannot open: ", std::strerror(errno));
      while (true) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
      }
      ::close(fd);
    }
  }
}

// Bytes of a module's tensors (parameters and buffers).
uint64_t tensor_bytes(torch::nn::Module& m) {
  uint64_t n = 0;
  for (const auto& p : m.parameters(true)) n += p.nbytes();
  for (const auto& b : m.buffers(true)) n += b.nbytes();
  return n;
}

// One byte per page of every parameter and buffer: faults the mapping in.
uint64_t touch(torch::nn::Module& m) {
  uint64_t sum = 0;
  auto one = [&](const at::Tensor& t) {
    const auto* b = static_cast<const volatile uint8_t*>(t.data_ptr());
    const size_t n = t.nbytes();
    if (n == 0) return;
    for (size_t i = 0; i < n; i += 4096) sum += b[i];
    sum += b[n - 1];
  };
  for (const auto& p : m.parameters(true)) one(p);
  for (const auto& b : m.buffers(true)) one(b);
  return sum;
}

// Token ids (B, T): bos, T-2 ids drawn from [0, 49405), eos (pooling reads the eos).
at::Tensor clip_ids(int64_t batch, int64_t len, uint64_t seed, const m4::ClipTextConfig& c) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor ids = at::randint(0, c.bos_token_id - 1, {batch, len}, gen, at::kLong);
  ids.select(1, 0).fill_(c.bos_token_id);
  ids.select(1, len - 1).fill_(c.eos_token_id);
  return ids;
}

// ---------------------------------------------------------------------------
// Child side: one RSS measurement, one line on stdout.

int run_child(const Args& a) {
  m4::configure_cpu_runtime(a.child_threads);
  at::NoGradGuard no_grad;
  const auto t0 = Clock::now();
  uint64_t bytes = 0, check = 0;
  std::vector<std::shared_ptr<torch::nn::Module>> alive;
  if (a.mode == "baseline") {
    // libtorch loaded, manifest read, nothing else.
    m4::Firmware fw = m4::Firmware::open(a.dir);
    check = fw.manifest().modules.size();
  } else if (a.mode == "path2-load") {
    // The same two modules, constructed only: what loading alone maps in.
    m4::Firmware fw = m4::Firmware::open(a.dir);
    auto img = fw.load_module<m4::ClipVisionConfig, m4::ClipVisionImpl>("img_enc");
    auto txt = fw.load_module<m4::ClipTextConfig, m4::ClipTextImpl>("txt_enc");
    bytes = tensor_bytes(*img) + tensor_bytes(*txt);
    alive = {img, txt};
  } else if (a.mode == "path2") {
    // Zero-shot classification: one 224x224 image against 5 label texts.
    m4::Firmware fw = m4::Firmware::open(a.dir);
    auto img = fw.load_module<m4::ClipVisionConfig, m4::ClipVisionImpl>("img_enc");
    auto txt = fw.load_module<m4::ClipTextConfig, m4::ClipTextImpl>("txt_enc");
    bytes = tensor_bytes(*img) + tensor_bytes(*txt);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
    at::Tensor pixels = at::randint(0, 256, {1, 3, 480, 640}, gen, at::kByte);
    at::Tensor x = m4::clip_preprocess(pixels, img->config().image_size);
    at::Tensor ie = img->forward(x).embeds;
    at::Tensor te = txt->forward(clip_ids(5, 10, 9, txt->config())).embeds;
    ie = ie / ie.norm(2, -1, true);
    te = te / te.norm(2, -1, true);
    at::Tensor probs = at::softmax(at::matmul(ie, te.t()) * 100.0, -1);
    check = static_cast<uint64_t>(probs.argmax(-1).item<int64_t>());
    alive = {img, txt};
  } else if (a.mode == "all") {
    m4::Firmware fw = m4::Firmware::open(a.dir);
    std::vector<std::shared_ptr<torch::nn::Module>> ms = {
        fw.load_backbone({}),
        fw.load_module<m4::ClipVisionConfig, m4::ClipVisionImpl>("img_enc"),
        fw.load_module<m4::ClipTextConfig, m4::ClipTextImpl>("txt_enc"),
        fw.load_module<m4::WhisperEncoderConfig, m4::WhisperEncoderImpl>("aud_i_enc"),
        fw.load_module<m4::AstConfig, m4::AstImpl>("aud_b_enc"),
        fw.load_module<m4::ImuEncoderConfig, m4::ImuEncoderImpl>("imu_enc"),
    };
    for (auto& m : ms) bytes += tensor_bytes(*m), check += touch(*m);
    alive = std::move(ms);
  } else {
    std::fprintf(stderr, "unknown --mode %s\n", a.mode.c_str());
    return 2;
  }
  const double secs = seconds_since(t0);
  const auto s = proc_status();
  auto get = [&](const char* k) { return s.count(k) ? s.at(k) : -1L; };
  std::printf("RESULT secs=%.4f hwm_kb=%ld rss_kb=%ld anon_kb=%ld file_kb=%ld bytes=%" PRIu64 " check=%" PRIu64 "\n",
              secs, get("VmHWM"), get("VmRSS"), get("RssAnon"), get("RssFile"), bytes, check);
  std::fflush(stdout);
  return 0;
}

// ---------------------------------------------------------------------------
// Parent side.

struct Sample {
  double secs = 0;
  long hwm_kb = 0, rss_kb = 0, anon_kb = 0, file_kb = 0;
  uint64_t bytes = 0;
};

Sample spawn(const Args& a, const std::string& mode) {
  int pipefd[2];
  M4_CHECK(::pipe(pipefd) == 0, m4::ErrorCode::kIo, "pipe failed");
  const std::string exe = fs::read_symlink("/proc/self/exe").string();
  const std::string dir = a.dir.string(), threads = std::to_string(a.child_threads);
  pid_t pid = ::fork();
  M4_CHECK(pid >= 0, m4::ErrorCode::kIo, "fork failed");
  if (pid == 0) {
    ::dup2(pipefd[1], STDOUT_FILENO);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    std::vector<const char*> argv = {exe.c_str(), "--mode", mode.c_str(), "--dir", dir.c_str(),
                                     "--child-threads", threads.c_str(), nullptr};
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
  auto pos = out.find("RESULT ");
  M4_CHECK(pos != std::string::npos, m4::ErrorCode::kInternal, "child --mode ", mode, " printed no result: ", out);
  Sample s;
  std::istringstream is(out.substr(pos + 7));
  for (std::string kv; is >> kv;) {
    auto eq = kv.find('=');
    const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    if (k == "secs") s.secs = std::stod(v);
    else if (k == "hwm_kb") s.hwm_kb = std::stol(v);
    else if (k == "rss_kb") s.rss_kb = std::stol(v);
    else if (k == "anon_kb") s.anon_kb = std::stol(v);
    else if (k == "file_kb") s.file_kb = std::stol(v);
    else if (k == "bytes") s.bytes = std::stoull(v);
  }
  return s;
}

template <typename F>
double time_median(int iters, F&& f) {
  f();  // warm-up
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = Clock::now();
    f();
    t.push_back(seconds_since(t0));
  }
  return median(t);
}

void run_throughput(const Args& a, const m4::Firmware& fw) {
  at::NoGradGuard no_grad;
  auto img = fw.load_module<m4::ClipVisionConfig, m4::ClipVisionImpl>("img_enc");
  auto txt = fw.load_module<m4::ClipTextConfig, m4::ClipTextImpl>("txt_enc");
  auto whisper = fw.load_module<m4::WhisperEncoderConfig, m4::WhisperEncoderImpl>("aud_i_enc");
  auto ast = fw.load_module<m4::AstConfig, m4::AstImpl>("aud_b_enc");
  auto imu = fw.load_module<m4::ImuEncoderConfig, m4::ImuEncoderImpl>("imu_enc");
  for (const auto& slot : kSlots) {
    if (slot == "backbone") continue;
    const auto& m = fw.module(slot);
    std::printf("%-10s %s\n", slot.c_str(), m4::module_arch(m.arch).summary(m.config).c_str());
  }
  const auto rt0 = m4::cpu_runtime();
  std::printf("blas: %s (%s)\n", rt0.blas.c_str(), rt0.blas_kind.c_str());
  std::printf("timed iterations per case: %d after 1 warm-up; medians\n\n", a.iters);

  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const int64_t B = 8;
  at::Tensor pixels = at::randn({B, 3, 224, 224}, gen);
  at::Tensor ids = clip_ids(B, txt->config().max_position_embeddings, 3, txt->config());
  at::Tensor mel = at::randn({1, 80, whisper->config().frames()}, gen);
  at::Tensor fbank = at::randn({1, ast->config().max_length, ast->config().num_mel_bins}, gen);
  at::Tensor imu_x = at::randn({B, imu->config().window, imu->config().channels}, gen);
  at::Tensor audio = at::randn({4, 16000 * 30}, gen).mul_(0.1);
  at::Tensor clips10 = at::randn({4, 16000 * 10}, gen).mul_(0.1);  // AudioSet clips are 10 s
  at::Tensor images_u8 = at::randint(0, 256, {B, 3, 480, 640}, gen, at::kByte);

  struct Case {
    std::string name, unit;
    int64_t items;
    std::function<void()> f;
  };
  std::vector<Case> cases = {
      {"img_enc clip_vision 8x3x224x224", "images/s", B, [&] { (void)img->forward(pixels); }},
      {"txt_enc clip_text 8x77", "texts/s", B, [&] { (void)txt->forward(ids); }},
      {"aud_i_enc whisper 1x80x3000", "30s clips/s", 1, [&] { (void)whisper->forward(mel); }},
      {"aud_b_enc ast 1x1024x128", "clips/s", 1, [&] { (void)ast->forward(fbank); }},
      {"imu_enc 8x2000x6", "windows/s", B, [&] { (void)imu->forward(imu_x); }},
      {"whisper_log_mel 4x30s", "30s clips/s", 4, [&] { (void)m4::whisper_log_mel(audio); }},
      {"ast_fbank_features 4x10s", "10s clips/s", 4, [&] { (void)m4::ast_fbank_features(clips10, {}); }},
      {"clip_preprocess 8x480x640 u8", "images/s", B, [&] { (void)m4::clip_preprocess(images_u8, 224); }},
      // The resize alone: Pillow's fixed-point passes (now) against ATen's antialiased
      // bicubic on floats, which clip_preprocess used before issue 20 (off by one on ~0.5%).
      {"pillow_bicubic_resize 8x480x640", "images/s", B,
       [&] { (void)m4::pillow_bicubic_resize(images_u8, 224, 298); }},
      {"aten bicubic_aa 8x480x640 (before)", "images/s", B,
       [&] {
         // As it was: a horizontal pass, then a vertical one, each rounded to 0..255.
         auto pass = [](const at::Tensor& t, int64_t h, int64_t w) {
           const std::array<int64_t, 2> hw{h, w};
           return at::_upsample_bicubic2d_aa(t.contiguous(), at::IntArrayRef(hw), false, c10::nullopt, c10::nullopt)
               .add(0.5)
               .floor()
               .clamp(0, 255);
         };
         (void)pass(pass(images_u8.to(at::kFloat), 480, 298), 224, 298);
       }},
  };
  std::printf("%-8s %-32s %10s %12s  %s\n", "threads", "case", "median_s", "items/s", "unit");
  for (int threads : a.threads) {
    const auto rt = m4::configure_cpu_runtime(threads);
    std::printf("(threads %d: torch %d, blas %d)\n", threads, rt.torch_threads, rt.blas_threads);
    for (const auto& c : cases) {
      const double s = time_median(a.iters, c.f);
      std::printf("%-8d %-32s %10.3f %12.2f  %s\n", threads, c.name.c_str(), s, c.items / s, c.unit.c_str());
      std::fflush(stdout);
    }
  }
}

void run_rss(const Args& a) {
  const std::vector<std::string> modes = {"baseline", "path2-load", "path2", "all"};
  std::printf("\nRSS (each mode in a fresh child, %d threads, warm page cache)\n", a.child_threads);
  std::printf("%-10s %8s %12s %12s %12s %12s %14s\n", "mode", "secs", "peakRSS MiB", "VmRSS MiB", "RssAnon MiB",
              "RssFile MiB", "weights bytes");
  for (const auto& m : modes) {
    const Sample s = spawn(a, m);
    std::printf("%-10s %8.2f %12.1f %12.1f %12.1f %12.1f %14" PRIu64 "\n", m.c_str(), s.secs, s.hwm_kb / 1024.0,
                s.rss_kb / 1024.0, s.anon_kb / 1024.0, s.file_kb / 1024.0, s.bytes);
    std::fflush(stdout);
  }
  std::printf(
      "baseline: libtorch loaded + firmware.json read. path2-load: img_enc + txt_enc constructed,\n"
      "no forward. path2: img_enc + txt_enc loaded, one image\n"
      "(480x640 -> clip_preprocess) against 5 label texts of 10 tokens. all: every module loaded\n"
      "(backbone included) and every weight page touched. secs: the child's measured part.\n");
}

int run_parent(const Args& a) {
  bool created = false;
  if (!fs::exists(a.dir / m4::fwkeys::kManifestFile)) {
    synthesize(a.dir);
    created = true;
  } else {
    std::printf("reusing %s\n", a.dir.c_str());
  }
  m4::Firmware fw = m4::Firmware::open(a.dir);
  for (const auto& slot : kSlots)
    M4_CHECK(fw.has(slot), m4::ErrorCode::kMismatch, a.dir.string(), ": no ", slot, " (not this bench's firmware)");
  uint64_t total = 0;
  for (const auto& [slot, m] : fw.manifest().modules) {
    uint64_t n = 0;
    for (const auto& w : m.weights) n += fs::file_size(fw.dir() / w);
    std::printf("  %-10s %12" PRIu64 " bytes\n", slot.c_str(), n);
    total += n;
  }
  std::printf("  %-10s %12" PRIu64 " bytes (%.1f MiB)\n", "total", total, total / 1048576.0);
  warm_page_cache(fw);
  std::fflush(stdout);
  if (!a.skip_throughput) run_throughput(a, fw);
  if (!a.skip_rss) run_rss(a);
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
    std::fprintf(stderr, "encoder_bench: %s\n", e.what());
    return 1;
  }
}
