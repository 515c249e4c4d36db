// Small dataset builders shared by the m4_data tests.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <string>

#include "data/dataset_writer.h"

namespace m4::test {

// n samples: image (n,1,2,2) uint8 whose pixels are i % 251, label i % k with
// names "c0".."c{k-1}", text "s{i}".
inline data::DatasetContents indexed_contents(int64_t n, int64_t k) {
  data::DatasetContents c;
  c.tensors["image"] = (at::arange(n, at::kLong) % 251).to(at::kByte).view({n, 1, 1, 1}).expand({n, 1, 2, 2}).contiguous();
  c.tensors["label"] = at::arange(n, at::kLong) % k;
  std::vector<std::string> text;
  for (int64_t i = 0; i < n; ++i) text.push_back("s" + std::to_string(i));
  c.texts["text"] = text;
  for (int64_t i = 0; i < k; ++i) c.attrs.label_names.push_back("c" + std::to_string(i));
  c.attrs.source = "generated";
  c.attrs.license = "CC0";
  return c;
}

}  // namespace m4::test
