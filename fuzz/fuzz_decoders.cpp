// libFuzzer target: the decoders of files users hand to m4forge: PNG (libpng's
// simplified API behind read_png), WAV/FLAC/OGG (libsndfile behind
// read_audio_mono, then the resampler), IMU CSV rows, and HDF5 datasets
// (DatasetReader::open and a read of every sample). The first byte picks the
// decoder; the rest is the file. Only m4::Error may leave them.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <fstream>
#include <string>

#include "core/error.h"
#include "data/dataset_format.h"
#include "data/dataset_reader.h"
#include "data/input_file.h"
#include "data/png_image.h"
#include "data/resample.h"
#include "data/wav.h"

namespace {
// A real file: libpng, libsndfile and HDF5 open paths (tmpfs, one per process).
std::string write_input(const uint8_t* data, size_t size, const char* ext) {
  const std::string path = "/tmp/m4fuzz-" + std::to_string(::getpid()) + ext;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t which = data[0] % 4;
  ++data;
  --size;
  try {
    if (which == 0) {
      const m4::data::Image img = m4::data::read_png(write_input(data, size, ".png"), 3);
      if (img.pixels.size() != static_cast<size_t>(img.channels * img.height * img.width)) __builtin_trap();
    } else if (which == 1) {
      const m4::data::MonoAudio a = m4::data::read_audio_mono(write_input(data, size, ".wav"));
      if (a.sample_rate > 0 && a.sample_rate != 16000 && a.samples.size() < (1u << 20))
        m4::data::resample(a.samples, a.sample_rate, 16000);
    } else if (which == 2) {
      m4::data::read_imu_rows_csv(write_input(data, size, ".csv"));
    } else {
      auto r = m4::data::DatasetReader::open(write_input(data, size, ".h5"));
      std::vector<int64_t> rows;
      for (int64_t i = 0; i < std::min<int64_t>(r->num_samples(), 16); ++i) rows.push_back(i);
      for (const auto& l : r->layouts()) {
        if (l.type == m4::data::ElemType::kString) {
          r->read_text(l.name, rows);
        } else {
          r->read(l.name, rows);
        }
      }
    }
  } catch (const m4::Error&) {
  }
  return 0;
}
