// `m4forge data import`: raw dataset forms (IDX, PNG + CSV, JSONL, WAV + CSV,
// IMU CSV, safetensors input_ids) converted to the HDF5 dataset format.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset_writer.h"

namespace m4::data {

struct ImportOptions {
  std::string format;  // one of import_formats()
  std::filesystem::path out;
  std::string split = "train";
  std::string source;   // default: the input paths
  std::string license;
  std::string created_by;
  std::vector<std::string> label_names;  // empty: collected from the data
  // idx
  std::filesystem::path images, labels;
  // image-csv, wav-csv, imu-csv
  std::filesystem::path csv;
  // jsonl
  std::filesystem::path jsonl;
  // input-ids
  std::filesystem::path input;
  // image-csv: resize every image to (H, W)
  std::optional<std::pair<int64_t, int64_t>> resize;
  // wav-csv: target sample rate and fixed length in seconds
  int64_t sample_rate = 16000;
  double seconds = 0;
};

// "idx", "image-csv", "jsonl", "wav-csv", "imu-csv", "input-ids".
const std::vector<std::string>& import_formats();

// Reads the raw inputs into memory (every bad-input error names the file and,
// where there is one, the line).
DatasetContents read_raw(const ImportOptions& options);

// read_raw + write_dataset: the output exists only if everything succeeded.
// Returns the number of samples written.
int64_t import_dataset(const ImportOptions& options);

// IDX (LeCun's MNIST format, optionally gzip-compressed): the dims and bytes of
// an unsigned-byte array. Truncated data is an m4::Error naming the file.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};
IdxArray read_idx(const std::filesystem::path& path);

// "28x28" -> (28, 28); m4::Error(kInvalidArgument) otherwise.
std::pair<int64_t, int64_t> parse_size(const std::string& hxw);

}  // namespace m4::data
