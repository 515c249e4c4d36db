// Weight-only quantization of a Linear weight W (out, in), as a quantized
// firmware stores it (docs/firmware-format.md, "Quantized weights"):
// symmetric round-to-nearest with one f32 scale per output channel or per
// group of `group_size` input columns; INT8 (I8, one per byte) or 4-bit (U8,
// two per byte: column 2j in the low nibble, 2j+1 in the high, each q + 8).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/safetensors.h"

namespace m4 {

class WeightSet;

namespace quantkeys {
// The scales of stored weight `X.weight` are the tensor `X.weight_scale`.
inline constexpr const char* kScaleSuffix = "_scale";
inline constexpr const char* kMethod = "symmetric-rtn";
}  // namespace quantkeys

struct QuantizedWeight {
  at::Tensor data;   // I8 (out, in) or U8 (out, in / 2)
  at::Tensor scale;  // (out, ceil(in / group_size)), F32, F16 or BF16
  int bits() const;  // 8 or 4, from data's dtype
  int64_t out_features() const { return data.size(0); }
  int64_t in_features() const;
  int64_t group_size() const;  // columns per scale: ceil(in / groups); in_features() for one scale per channel
  // W as `dtype` (out, in): a new tensor; `data` and `scale` are only read.
  at::Tensor dequantize(at::ScalarType dtype) const;
};

// Quantizes a float weight (out, in). group_size 0: one scale per output
// channel; else each row is split into G = ceil(in / group_size) groups of
// ceil(in / G) columns (group_size itself when it divides in; the last group
// may be shorter), so the scales' shape (out, G) gives the layout back.
// 4 bits needs an even `in`. Scales are F32; a group of zeros gets scale 0.
QuantizedWeight quantize_weight(const at::Tensor& w, int bits, int64_t group_size);

// The stored name of a weight's scales.
std::string quant_scale_name(const std::string& stored_weight);
// When `stored` is the scale tensor of a quantized weight in `ws`, that
// weight's stored name; else "".
std::string quantized_weight_of_scale(const WeightSet& ws, const std::string& stored);
// Whether `stored` is a quantized weight (I8/U8 data with its scale tensor).
bool is_quantized_weight(const WeightSet& ws, const std::string& stored);
// The shape W has once dequantized ((out, 2 x cols) for 4-bit data).
std::vector<int64_t> quantized_logical_shape(const TensorInfo& data);
// What is wrong with a stored quantized weight meant to be `logical` (out, in),
// or "" when data and scale fit it and each other.
std::string quantized_layout_problem(const TensorInfo& data, const TensorInfo& scale,
                                     const std::vector<int64_t>& logical);

}  // namespace m4
