// Writes an m4forge dataset (docs/data-format.md) from memory: validated
// first, written to a temporary file, renamed over the target at the end.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "data/dataset_format.h"

namespace m4::data {

// A whole split in memory, as an importer produces it.
struct DatasetContents {
  std::map<std::string, at::Tensor> tensors;              // numeric datasets, CPU, N first
  std::map<std::string, std::vector<std::string>> texts;  // `text`, `target_text`
  DatasetAttributes attrs;
};

// Validates (layout table, N agreement, label range) and writes atomically:
// nothing ever exists under `path` unless the whole file was written. Returns N.
int64_t write_dataset(const std::filesystem::path& path, const DatasetContents& contents);

}  // namespace m4::data
