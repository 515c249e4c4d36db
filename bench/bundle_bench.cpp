// bundle_bench: `m4forge export` and `m4forge verify` (library calls, same code
// paths) for a ~10 MB LoRA adapter on the demo firmware, and the bundle's size
// against the raw adapter bytes. Goal (issue 7): < 50 ms each. Run from the repo
// root (it reads configs/ and prompts/): build/bench/bundle_bench [--r 272] [--iters 10] [--width 1]
// (--width 16: a ~1 GB backbone, for the re-hash verify --firmware does against reading the bytes).
#include <ATen/ATen.h>
#include <torch/torch.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bundle/bundle_reader.h"
#include "bundle/minisign.h"
#include "export/bundle_writer.h"
#include "export/firmware_binding.h"
#include "firmware/demo.h"
#include "firmware/firmware.h"
#include "firmware/module_loader.h"
#include "peft/adapter.h"
#include "prompts/prompt_template.h"
#include "task/task_config.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int64_t r = 272, width = 1;
  int iters = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--r") r = std::atoll(argv[i + 1]);
    else if (a == "--iters") iters = std::atoi(argv[i + 1]);
    else if (a == "--width") width = std::atoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: bundle_bench [--r R] [--iters N] [--width W]\n");
      return 2;
    }
  }
  at::set_num_threads(1);
  ::setenv("M4FORGE_DIGEST_CACHE", "off", 1);  // the re-hash itself first; the cache is measured at the end
  const fs::path root = fs::current_path();
  const fs::path cfg = root / "configs" / "tasks" / "translation_de_en.yaml";
  if (!fs::exists(cfg)) {
    std::fprintf(stderr, "run from the repository root (needs %s)\n", cfg.c_str());
    return 2;
  }
  const fs::path tmp = fs::temp_directory_path() / ("m4-bundle-bench-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  try {
    m4::DemoOptions demo;
    demo.out = tmp / "fw";
    demo.width = width;
    m4::init_demo(demo);
    const m4::Firmware fw = m4::Firmware::open(tmp / "fw");
    // LoRA on every linear of the demo backbone; r sets the adapter's size.
    m4::ExportRequest req;
    req.task = m4::load_task_config(
        cfg,
        {"peft.lora.r=" + std::to_string(r), "peft.lora.alpha=" + std::to_string(2 * r),
         "peft.lora.targets=[\"backbone.layers.*.self_attn.{q,k,v,o}_proj\", \"backbone.layers.*.mlp.{gate,up,down}_proj\"]"},
        root);
    const m4::PeftConfig peft =
        m4::PeftConfig::from_json({{"trainable", req.task.trainable}, {"peft", req.task.peft}}, cfg.string());
    {
      m4::Adapter a({{"backbone", m4::load_firmware_module(fw, "backbone")}}, peft, fw.label());
      torch::NoGradGuard g;
      for (auto& p : a.parameters()) p.tensor.normal_(0, 0.02);
      a.save(tmp / "adapter.safetensors");
    }
    req.adapter_file = tmp / "adapter.safetensors";
    req.prompt = m4::load_prompt_template(root, req.task.prompt);
    req.created = 1700000000;
    const auto key = m4::minisign::generate_key("");
    const auto pub = key.secret.public_key();
    const fs::path out = tmp / "bench.m4adapter";

    std::vector<double> exp, ver, ver_fw, desc;
    for (int i = 0; i < iters + 1; ++i) {  // the first round warms caches and is dropped
      auto t = Clock::now();
      m4::describe_bundle(fw, req);
      const double d = ms_since(t);
      t = Clock::now();
      m4::write_bundle(out, fw, req, key.secret);
      const double e = ms_since(t);
      t = Clock::now();
      const m4::VerifiedBundle v = m4::verify_bundle(out, &pub);
      const double vv = ms_since(t);
      t = Clock::now();
      m4::check_binding(v.manifest, fw, out.string());
      const double vb = ms_since(t);
      if (i) {
        desc.push_back(d);
        exp.push_back(e);
        ver.push_back(vv);
        ver_fw.push_back(vv + vb);
      }
    }
    const auto adapter_bytes = fs::file_size(req.adapter_file), bundle_bytes = fs::file_size(out);
    std::printf("bundle_bench: LoRA r=%lld on every demo backbone linear, %d iterations (median), 1 thread\n",
                static_cast<long long>(r), iters);
    std::printf("  adapter.safetensors     %10llu bytes (%.2f MB)\n", static_cast<unsigned long long>(adapter_bytes),
                adapter_bytes / 1e6);
    std::printf("  bundle (.m4adapter)     %10llu bytes (+%llu, %.3f%% over raw)\n",
                static_cast<unsigned long long>(bundle_bytes),
                static_cast<unsigned long long>(bundle_bytes - adapter_bytes),
                100.0 * (bundle_bytes - adapter_bytes) / adapter_bytes);
    std::printf("  export                  %8.2f ms  (of which attach+describe %.2f ms; goal < 50)\n", median(exp),
                median(desc));
    std::printf("  verify                  %8.2f ms  (goal < 50)\n", median(ver));
    std::printf("  verify --firmware       %8.2f ms  (re-hashes the modules the bundle depends on)\n", median(ver_fw));
    // The re-hash against reading the same bytes (page cache warm, like the re-hash after its first round).
    uint64_t module_bytes = 0;
    std::vector<double> reads;
    const std::vector<std::string> depended = m4::bundle_modules(m4::verify_bundle(out, &pub).manifest);
    for (int i = 0; i < std::max(3, iters / 2); ++i) {
      module_bytes = 0;
      const auto t = Clock::now();
      for (const auto& mod : depended) {
        for (const auto& w : fw.module(mod).weights) {
          std::FILE* f = std::fopen((fw.dir() / w).c_str(), "rb");
          static char buf[1 << 20];
          for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) module_bytes += n;
          std::fclose(f);
        }
      }
      reads.push_back(ms_since(t));
    }
    std::printf("  modules depended on     %10llu bytes; reading them %.2f ms; re-hash/read = %.2fx (goal <= 2x)\n",
                static_cast<unsigned long long>(module_bytes), median(reads),
                (median(ver_fw) - median(ver)) / std::max(median(reads), 1e-9));
    // The same binding check with the digest cache (firmware/digest_cache.h):
    // the first check hashes and remembers, the next ones stat the files.
    ::setenv("M4FORGE_DIGEST_CACHE", (tmp / "digests.json").c_str(), 1);
    const m4::VerifiedBundle v = m4::verify_bundle(out, &pub);
    auto t = Clock::now();
    m4::check_binding(v.manifest, fw, out.string());
    const double first = ms_since(t);
    std::vector<double> cached;
    for (int i = 0; i < iters; ++i) {
      t = Clock::now();
      m4::check_binding(v.manifest, fw, out.string());
      cached.push_back(ms_since(t));
    }
    std::printf("  binding with the digest cache: first %.2f ms (hashes, remembers), then %.3f ms (median); cached/read = %.3fx\n",
                first, median(cached), median(cached) / std::max(median(reads), 1e-9));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bundle_bench: %s\n", e.what());
    fs::remove_all(tmp);
    return 1;
  }
  fs::remove_all(tmp);
  return 0;
}
