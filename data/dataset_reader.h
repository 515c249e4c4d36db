// Reads an m4forge dataset (docs/data-format.md): validates it on open, then
// reads any rows of any dataset by hyperslab, never the whole file.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset_format.h"

namespace m4::data {

class DatasetReader {
 public:
  // Opens and validates: format tag, known datasets with the table's dtypes and
  // ranks, one N for all, labels in [0, len(label_names)), audio lengths in
  // [0, T]. Any problem is one m4::Error line naming the file. The file is
  // first opened, and the first rows of every dataset read, in a child
  // process (core/isolated_call.h): libhdf5 crashes or loops on some corrupt
  // files (fuzz/README.md), and that must end in an error line, not take the
  // run with it. $M4FORGE_HDF5_TIMEOUT_S bounds the child (default 30 s);
  // M4FORGE_HDF5_ISOLATION=off opens in process only.
  static std::shared_ptr<DatasetReader> open(const std::filesystem::path& path);
  // The same without the child (a file already checked, or the child itself).
  static std::shared_ptr<DatasetReader> open_in_process(const std::filesystem::path& path);
  ~DatasetReader();
  DatasetReader(const DatasetReader&) = delete;
  DatasetReader& operator=(const DatasetReader&) = delete;

  const std::filesystem::path& path() const;
  int64_t num_samples() const;
  const DatasetAttributes& attributes() const;
  const std::vector<DatasetLayout>& layouts() const;  // in table order
  bool has(const std::string& name) const;
  const DatasetLayout& layout(const std::string& name) const;  // throws naming what exists
  // The whole `label` column (N int64, read on open to validate it); empty
  // when the file has no labels.
  const std::vector<int64_t>& labels() const;

  // Rows `indices` (any order, repeats allowed) of a numeric dataset: a tensor
  // (len(indices), ...) in the order asked. Reads each run of consecutive rows
  // as one hyperslab, in file order, then reorders in memory.
  at::Tensor read(const std::string& name, const std::vector<int64_t>& indices) const;
  std::vector<std::string> read_text(const std::string& name, const std::vector<int64_t>& indices) const;

 private:
  DatasetReader();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace m4::data
