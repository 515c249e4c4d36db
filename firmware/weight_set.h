// The tensors of one module, spread over one or more safetensors files (a
// single `model.safetensors` or HF shards listed by `model.safetensors.index.json`).
// Every tensor is a zero-copy view into its file's mapping.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/safetensors.h"

namespace m4 {

class WeightSet {
 public:
  // Opens the given files; a tensor name present in two files is an error.
  static WeightSet open(const std::vector<std::filesystem::path>& files);
  // Opens an HF checkpoint directory: model.safetensors, or the shards of
  // model.safetensors.index.json (every listed shard must exist and hold the
  // tensors the index assigns to it).
  static WeightSet open_hf_dir(const std::filesystem::path& dir);

  const std::vector<SafetensorsFile>& files() const { return files_; }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  const SafetensorsFile& file_of(const std::string& name) const;
  at::Tensor tensor(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted

 private:
  std::vector<SafetensorsFile> files_;
  std::map<std::string, std::pair<size_t, const TensorInfo*>> index_;
};

}  // namespace m4
