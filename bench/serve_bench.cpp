// serve_bench: the device side (issue 16). Resident memory of one AdapterHost
// with 1, 10 and 50 bundles of the demo tasks against the firmware alone plus
// the adapters' bytes (goal: within 5%); requests/s and p50/p99 latency over
// HTTP for one adapter against round-robin over 50 of the same task (goal:
// switching costs < 5%); the time to load a bundle (verify, bind, canary) on a
// warm firmware. Every measurement runs in a fresh process (fork + exec of
// this program with --mode), so each has its own RSS.
// Run from the repo root: build/bench/serve_bench [--width 1] [--requests 200]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <httplib.h>
#include <sys/wait.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bundle/minisign.h"
#include "core/atomic_file.h"
#include "core/cpu_runtime.h"
#include "data/input_file.h"
#include "data/png_image.h"
#include "export/bundle_writer.h"
#include "firmware/demo.h"
#include "firmware/firmware.h"
#include "firmware/module_loader.h"
#include "peft/adapter.h"
#include "prompts/prompt_template.h"
#include "serve/adapter_host.h"
#include "serve/http_api.h"
#include "task/task_config.h"
#include "task/task_model.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

constexpr int kPool = 50;  // bundles per task
const char* kTasks[] = {"fashion_mnist", "translation_de_en"};

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }
double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}
fs::path bundle_path(const fs::path& dir, const char* task, int i) { return dir / (std::string(task) + "-" + std::to_string(i) + ".m4adapter"); }
fs::path adapter_path(const fs::path& dir, const char* task, int i) { return dir / (std::string(task) + "-" + std::to_string(i) + ".safetensors"); }

// kPool seeded random adapters per task, exported as signed bundles.
void make_bundles(const fs::path& dir, const fs::path& root) {
  const m4::Firmware fw = m4::Firmware::open(dir / "fw");
  const auto key = m4::minisign::write_key_files(dir / "key", "");
  for (const char* task : kTasks) {
    m4::ExportRequest req;
    const fs::path cfg = root / "configs" / "tasks" / (std::string(task) + ".yaml");
    req.task = m4::load_task_config(cfg, {}, root);
    req.prompt = m4::load_prompt_template(root, req.task.prompt);
    req.labels = req.prompt->labels;
    req.created = 1700000000;
    const m4::PeftConfig peft = m4::PeftConfig::from_json({{"trainable", req.task.trainable}, {"peft", req.task.peft}}, cfg.string());
    m4::Adapter::Modules modules;
    for (const auto& m : req.task.modules) modules[m] = m4::load_firmware_module(fw, m);
    for (int i = 0; i < kPool; ++i) {
      {
        m4::Adapter a(modules, peft, fw.label());
        at::manual_seed(i);
        at::NoGradGuard g;
        for (auto& p : a.parameters()) p.tensor.normal_(0, 0.02);
        a.save(adapter_path(dir, task, i));
      }
      req.adapter_file = adapter_path(dir, task, i);
      m4::write_bundle(bundle_path(dir, task, i), fw, req, key.secret);
    }
  }
}

std::string image_request(const fs::path& dir) {
  m4::data::Image img;
  img.channels = 1;
  img.width = img.height = 28;
  img.pixels.resize(28 * 28);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>((i * 37) % 251);
  m4::data::write_png(dir / "probe.png", img);
  const std::string bytes = m4::read_text_file(dir / "probe.png");
  return json({{"input", {{"format", "png"},
                          {"base64", m4::minisign::base64_encode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())}}}})
      .dump();
}

// A batch of one for each task: the probe image, or a German sentence.
m4::data::Batch request_batch(const fs::path& dir, int task) {
  if (task == 0) return m4::data::read_input_file(dir / "probe.png");
  m4::data::Batch b;
  b.indices = {0};
  b.texts["text"] = {"Guten Morgen"};
  return b;
}

// --mode firmware --n N: the firmware alone, serving: the modules N bundles
// use (1: fashion_mnist's; more: both tasks'), loaded once, each task's model
// without an adapter (zero-shot) run once, as a host would. RSS in KiB.
int mode_firmware(const fs::path& dir, const fs::path& root, int n) {
  const m4::Firmware fw = m4::Firmware::open(dir / "fw");
  m4::ModuleCache cache(fw);
  image_request(dir);
  for (int t = 0; t < (n > 1 ? 2 : 1); ++t) {
    const m4::TaskConfig task = m4::load_task_config(root / "configs" / "tasks" / (std::string(kTasks[t]) + ".yaml"), {}, root);
    const m4::PromptTemplate prompt = m4::load_prompt_template(root, task.prompt);
    m4::TaskModel model(fw, task, prompt, prompt.labels, {}, &cache);
    model.predict(request_batch(dir, t));
  }
  malloc_trim(0);  // as the host does after each load
  std::printf("%lld\n", static_cast<long long>(m4::process_memory().rss_kib));
  return 0;
}

// --mode memory --n N: a host with N bundles (alternating tasks), one request each. RSS in KiB and adapter bytes.
int mode_memory(const fs::path& dir, int n) {
  const m4::Firmware fw = m4::Firmware::open(dir / "fw");
  m4::AdapterHost host(fw, {m4::minisign::read_public_key(dir / "key.pub")});
  uint64_t adapter_bytes = 0;
  const std::string img = image_request(dir);
  for (int i = 0; i < n; ++i) {
    const char* task = kTasks[i % 2];
    const std::string name = std::string(task) + "-" + std::to_string(i / 2);
    host.load(name, bundle_path(dir, task, i / 2));
    adapter_bytes += fs::file_size(adapter_path(dir, task, i / 2));
    host.predict(name, request_batch(dir, i % 2));
  }
  std::printf("%lld %llu\n", static_cast<long long>(m4::process_memory().rss_kib), static_cast<unsigned long long>(adapter_bytes));
  return 0;
}

// --mode latency: 50 fashion_mnist adapters over HTTP; one adapter vs round-robin, alternating.
int mode_latency(const fs::path& dir, int requests) {
  const m4::Firmware fw = m4::Firmware::open(dir / "fw");
  m4::AdapterHost host(fw, {m4::minisign::read_public_key(dir / "key.pub")});
  std::vector<double> loads;
  for (int i = 0; i < kPool; ++i) {
    const auto t = Clock::now();
    host.load("fm" + std::to_string(i), bundle_path(dir, "fashion_mnist", i));
    loads.push_back(ms_since(t));
  }
  m4::ServeOptions so;
  so.port = 0;
  m4::HttpApi api(host, so);
  const int port = api.bind();
  std::thread server([&] { api.run(); });
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(120, 0);
  const std::string body = image_request(dir);
  auto once = [&](int adapter) {
    const auto t = Clock::now();
    auto res = client.Post(("/v1/adapters/fm" + std::to_string(adapter) + "/predict").c_str(), body, "application/json");
    if (!res || res->status != 200) {
      std::fprintf(stderr, "request failed: %s\n", res ? res->body.c_str() : "no response");
      std::exit(1);
    }
    return ms_since(t);
  };
  for (int i = 0; i < 20; ++i) once(i % kPool);  // warm-up
  std::vector<double> one, rr;
  double one_s = 0, rr_s = 0;
  const int rounds = 4, per = std::max(1, requests / rounds);
  for (int r = 0; r < rounds; ++r) {  // side by side, so drift hits both alike
    auto t = Clock::now();
    for (int i = 0; i < per; ++i) one.push_back(once(0));
    one_s += ms_since(t) / 1000;
    t = Clock::now();
    for (int i = 0; i < per; ++i) rr.push_back(once(i % kPool));
    rr_s += ms_since(t) / 1000;
  }
  api.stop();
  server.join();
  std::printf("%.1f %.3f %.3f %.1f %.3f %.3f %.2f %.2f\n", one.size() / one_s, pct(one, 0.5), pct(one, 0.99), rr.size() / rr_s,
              pct(rr, 0.5), pct(rr, 0.99), pct(loads, 0.5), pct(loads, 0.99));
  return 0;
}

std::string run_child(const std::string& self, const std::vector<std::string>& args) {
  std::string cmd = self;
  for (const auto& a : args) cmd += " '" + a + "'";
  std::FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  if (::pclose(p) != 0) {
    std::fprintf(stderr, "serve_bench: %s failed\n", cmd.c_str());
    std::exit(1);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  m4::restart_if_blas_misdetected_cpu(argv);
  std::string mode;
  fs::path dir;
  int n = 0, requests = 200;
  int64_t width = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--mode") mode = argv[i + 1];
    else if (a == "--dir") dir = argv[i + 1];
    else if (a == "--n") n = std::atoi(argv[i + 1]);
    else if (a == "--requests") requests = std::atoi(argv[i + 1]);
    else if (a == "--width") width = std::atoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: serve_bench [--width W] [--requests R]\n");
      return 2;
    }
  }
  at::set_num_threads(1);
  if (mode == "firmware") return mode_firmware(dir, fs::current_path(), n);
  if (mode == "memory") return mode_memory(dir, n);
  if (mode == "latency") return mode_latency(dir, requests);

  const fs::path root = fs::current_path();
  if (!fs::exists(root / "configs" / "tasks" / "fashion_mnist.yaml")) {
    std::fprintf(stderr, "run from the repository root (needs configs/tasks/)\n");
    return 2;
  }
  dir = fs::temp_directory_path() / ("m4-serve-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  m4::DemoOptions demo;
  demo.out = dir / "fw";
  demo.width = width;
  m4::init_demo(demo);
  auto t = Clock::now();
  make_bundles(dir, root);
  const double make_s = ms_since(t) / 1000;
  const std::string self = fs::canonical("/proc/self/exe").string();
  std::printf("serve_bench: demo firmware --width %lld, %d bundles per task (%s, %s; LoRA, seeded), made in %.1f s; 1 torch thread\n",
              static_cast<long long>(width), kPool, kTasks[0], kTasks[1], make_s);
  std::printf("  firmware alone: the modules the bundles use (1: fashion_mnist's; more: both tasks'), loaded once,\n"
              "  each task run once without an adapter (zero-shot)\n");
  std::printf("  %-8s %14s %12s %14s %14s %11s\n", "bundles", "firmware MiB", "RSS MiB", "adapters MiB", "fw+adapters", "RSS/(fw+a)");
  for (int count : {1, 10, 50}) {
    const double fw_kib = std::stod(run_child(self, {"--mode", "firmware", "--dir", dir.string(), "--n", std::to_string(count)}));
    double rss = 0;
    unsigned long long bytes = 0;
    std::sscanf(run_child(self, {"--mode", "memory", "--dir", dir.string(), "--n", std::to_string(count)}).c_str(), "%lf %llu", &rss, &bytes);
    const double expect = fw_kib / 1024 + bytes / 1048576.0;
    std::printf("  %-8d %14.1f %12.1f %14.2f %14.1f %10.3fx\n", count, fw_kib / 1024, rss / 1024, bytes / 1048576.0, expect,
                rss / 1024 / expect);
  }
  double v[8] = {};
  std::sscanf(run_child(self, {"--mode", "latency", "--dir", dir.string(), "--requests", std::to_string(requests)}).c_str(),
              "%lf %lf %lf %lf %lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
  std::printf("  HTTP predict, fashion_mnist (Path-2 image), %d requests each, one client, alternating blocks:\n", requests);
  std::printf("    one adapter        %8.1f req/s  p50 %7.3f ms  p99 %7.3f ms\n", v[0], v[1], v[2]);
  std::printf("    round-robin of 50  %8.1f req/s  p50 %7.3f ms  p99 %7.3f ms  (switching: %+.1f%% p50; goal < 5%%)\n", v[3], v[4],
              v[5], 100.0 * (v[4] - v[1]) / v[1]);
  std::printf("  load a bundle (verify, bind, build, canary) on a warm firmware: p50 %.2f ms, p99 %.2f ms\n", v[6], v[7]);
  fs::remove_all(dir);
  return 0;
}
