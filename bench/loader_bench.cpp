// loader_bench: samples/s of the m4_data Loader (batch 64), with and without
// background prefetch, on a generated Fashion-MNIST-sized image file
// (60000 x 1 x 28 x 28 uint8 + labels) and an audio file (2000 x 1 s at 16 kHz).
// "+consumer" rows add a simulated training step per batch (a sleep) to show
// how much of the read time prefetch hides.
//
//   build-data/bench/loader_bench [--dir /tmp/m4-loader-bench] [--step-ms 5] [--keep]
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "data/dataset_reader.h"
#include "data/dataset_writer.h"
#include "data/loader.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Samples/s over `batches` batches (epochs wrap), sleeping `step_ms` per batch.
double measure(const std::shared_ptr<m4::data::DatasetReader>& r, int64_t prefetch, int64_t world, int64_t batches,
               double step_ms) {
  m4::data::LoaderOptions o;
  o.batch_size = 64;
  o.world = world;
  o.prefetch = prefetch;
  o.seed = 1;
  m4::data::Loader l(r, o);
  int64_t samples = 0;
  auto t0 = Clock::now();
  for (int64_t i = 0; i < batches;) {
    auto b = l.next();
    if (!b) continue;
    samples += b->size();
    ++i;
    if (step_ms > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(step_ms));
  }
  return samples / seconds_since(t0);
}

void report(const char* name, const std::shared_ptr<m4::data::DatasetReader>& r, int64_t batches, double step_ms) {
  std::printf("%s (%lld samples, batch 64, %lld batches per run)\n", name, static_cast<long long>(r->num_samples()),
              static_cast<long long>(batches));
  const double plain = measure(r, 0, 1, batches, 0), pre = measure(r, 4, 1, batches, 0);
  const double shard = measure(r, 0, 2, batches, 0);
  std::printf("  loader alone      prefetch 0: %10.0f samples/s   prefetch 4: %10.0f samples/s\n", plain, pre);
  std::printf("  rank 0 of 2       prefetch 0: %10.0f samples/s   (its 64 of each global batch of 128)\n", shard);
  if (step_ms > 0) {
    const double c0 = measure(r, 0, 1, batches, step_ms), c4 = measure(r, 4, 1, batches, step_ms);
    std::printf("  +consumer %.1f ms  prefetch 0: %10.0f samples/s   prefetch 4: %10.0f samples/s   (step alone: %.0f)\n",
                step_ms, c0, c4, 64.0 / (step_ms / 1000.0));
  }
}

}  // namespace

int main(int argc, char** argv) {
  fs::path dir = "/tmp/m4-loader-bench";
  double step_ms = 5;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
    else if (!std::strcmp(argv[i], "--step-ms") && i + 1 < argc) step_ms = std::stod(argv[++i]);
    else if (!std::strcmp(argv[i], "--keep")) keep = true;
    else {
      std::fprintf(stderr, "usage: loader_bench [--dir DIR] [--step-ms MS] [--keep]\n");
      return 2;
    }
  }
  try {
    fs::create_directories(dir);
    at::manual_seed(0);
    const fs::path img = dir / "fmnist-sized.h5", aud = dir / "audio-1s-16k.h5";
    if (!fs::exists(img)) {
      auto t0 = Clock::now();
      m4::data::DatasetContents c;
      c.tensors["image"] = at::randint(0, 256, {60000, 1, 28, 28}, at::kByte);
      c.tensors["label"] = at::randint(0, 10, {60000}, at::kLong);
      for (int i = 0; i < 10; ++i) c.attrs.label_names.push_back(std::to_string(i));
      c.attrs.source = "loader_bench (random)";
      m4::data::write_dataset(img, c);
      std::printf("wrote %s (%.1f MB) in %.2f s\n", img.c_str(), fs::file_size(img) / 1e6, seconds_since(t0));
    }
    if (!fs::exists(aud)) {
      auto t0 = Clock::now();
      m4::data::DatasetContents c;
      c.tensors["audio"] = at::randn({2000, 16000}) * 0.1;
      c.tensors["audio_length"] = at::full({2000}, 16000, at::kLong);
      c.tensors["label"] = at::randint(0, 10, {2000}, at::kLong);
      for (int i = 0; i < 10; ++i) c.attrs.label_names.push_back(std::to_string(i));
      c.attrs.sample_rate = 16000;
      c.attrs.source = "loader_bench (random)";
      m4::data::write_dataset(aud, c);
      std::printf("wrote %s (%.1f MB) in %.2f s\n", aud.c_str(), fs::file_size(aud) / 1e6, seconds_since(t0));
    }
    report("image 1x28x28 uint8", m4::data::DatasetReader::open(img), 400, step_ms);
    report("audio 16000 float32", m4::data::DatasetReader::open(aud), 60, step_ms);
    if (!keep) fs::remove_all(dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loader_bench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
