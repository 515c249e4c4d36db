// One input file decoded for a task's model (see input_file.h).
#include "data/input_file.h"

#include <ATen/ATen.h>

#include <cctype>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "data/csv_reader.h"
#include "data/dataset_format.h"
#include "data/png_image.h"
#include "data/resample.h"
#include "data/wav.h"

namespace m4::data {
namespace fs = std::filesystem;

namespace {
constexpr int64_t kAudioRate = 16000;  // Whisper's and AST's only rate
constexpr int64_t kMaxImuRows = 1 << 22;
constexpr size_t kMaxTextBytes = 1 << 20;
}  // namespace

at::Tensor read_imu_rows_csv(const fs::path& path) {
  std::ifstream in(path);
  M4_CHECK(in.good(), ErrorCode::kIo, path.string(), ": cannot open");
  std::vector<float> v;
  std::string line;
  int64_t rows = 0, lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();  // "\r\n" files
    if (line.empty()) continue;
    std::stringstream ss(line);
    std::string cell;
    std::vector<float> row;
    bool numeric = true;
    while (std::getline(ss, cell, ',')) {
      float f = 0;
      numeric = parse_finite_float(cell, &f) && numeric;
      row.push_back(f);
    }
    if (!numeric && rows == 0 && lineno == 1) continue;  // a header line
    M4_CHECK(numeric && row.size() == 6, ErrorCode::kBadInput, path.string(), ":", lineno,
             ": expected 6 numbers (ax,ay,az,gx,gy,gz, finite), got '", line.substr(0, 200), "'");
    M4_CHECK(rows < kMaxImuRows, ErrorCode::kBadInput, path.string(), ": more than ", kMaxImuRows, " IMU rows");
    v.insert(v.end(), row.begin(), row.end());
    ++rows;
  }
  M4_CHECK(rows > 0, ErrorCode::kBadInput, path.string(), ": no IMU rows");
  return at::from_blob(v.data(), {1, rows, 6}, at::kFloat).clone();
}

Batch text_input(const std::string& text) {
  Batch b;
  b.indices = {0};
  b.texts[ds::kText] = {text};
  return b;
}

Batch read_input_file(const fs::path& in, const std::string& format) {
  M4_CHECK(fs::is_regular_file(in), ErrorCode::kIo, in.string(), fs::exists(in) ? ": not a regular file" : ": no such file");
  Batch b;
  b.indices = {0};
  std::string ext = format.empty() ? in.extension().string() : "." + format;
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".png") {
    const Image img = read_png(in, 3);
    b.tensors[ds::kImage] =
        at::from_blob(const_cast<uint8_t*>(img.pixels.data()), {1, img.channels, img.height, img.width}, at::kByte).clone();
  } else if (ext == ".wav" || ext == ".flac" || ext == ".ogg") {
    const MonoAudio a = read_audio_mono(in);
    std::vector<float> x = a.sample_rate == kAudioRate ? a.samples : resample(a.samples, a.sample_rate, kAudioRate);
    b.tensors[ds::kAudio] = at::from_blob(x.data(), {1, static_cast<int64_t>(x.size())}, at::kFloat).clone();
  } else if (ext == ".csv") {
    b.tensors[ds::kImu] = read_imu_rows_csv(in);
  } else if (ext == ".txt") {
    b.texts[ds::kText] = {read_text_file(in, kMaxTextBytes)};
  } else {
    M4_FAIL(ErrorCode::kInvalidArgument, in.string(), ": unknown input kind '", ext,
            "' (png image, wav/flac/ogg audio, csv IMU, txt text)");
  }
  return b;
}

Batch read_input_bytes(std::string_view bytes, const std::string& format, const std::string& where) {
  const MemoryFile file(bytes);
  try {
    return read_input_file(file.path(), format);
  } catch (const Error& e) {
    throw file.renamed(e, where);  // the decoders name the file they read: here, the request's bytes
  }
}

}  // namespace m4::data
