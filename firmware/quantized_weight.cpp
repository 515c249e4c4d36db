// Symmetric round-to-nearest weight quantization (see quantized_weight.h).
#include "firmware/quantized_weight.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/error.h"
#include "firmware/transformer_encoder.h"
#include "firmware/weight_set.h"

namespace m4 {
namespace {

int bits_of(at::ScalarType t) {
  if (t == at::kChar) return 8;
  if (t == at::kByte) return 4;
  M4_FAIL(ErrorCode::kBadInput, "quantized weight data must be I8 (8 bits) or U8 (4 bits), found ", c10::toString(t));
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Per-column scales (out, in) or, when groups tile the row exactly, (out, G, 1) to broadcast.
at::Tensor times_scale(const at::Tensor& q, const at::Tensor& scale, int64_t group) {
  const int64_t out = q.size(0), in = q.size(1), groups = scale.size(1);
  if (groups * group == in) return (q.view({out, groups, group}) * scale.unsqueeze(2)).view({out, in});
  return q * scale.repeat_interleave(group, 1).narrow(1, 0, in);
}

}  // namespace

int QuantizedWeight::bits() const { return bits_of(data.scalar_type()); }

int64_t QuantizedWeight::in_features() const { return bits() == 8 ? data.size(1) : 2 * data.size(1); }

int64_t QuantizedWeight::group_size() const { return ceil_div(in_features(), scale.size(1)); }

namespace {

// W as f32 in one pass over the codes (the common case: f32 forwards and
// training): row r, column c gets code(r, c) x scale(r, c / group), where
// ATen's elementwise ops would take three to five passes. One thread: the
// Linear hands it ~4 MiB blocks (linear.cpp), and splitting those over
// threads measured no faster (quantized_bench forward/lora, 2 cores).
at::Tensor dequantize_f32(const QuantizedWeight& q) {
  const int64_t out = q.out_features(), in = q.in_features(), groups = q.scale.size(1), group = q.group_size();
  const at::Tensor data = q.data.contiguous(), scale = q.scale.to(at::kFloat).contiguous();
  at::Tensor w = at::empty({out, in}, at::kFloat);
  const bool four = q.bits() == 4;
  const uint8_t* d = static_cast<const uint8_t*>(data.data_ptr());
  const float* s = scale.data_ptr<float>();
  float* o = w.data_ptr<float>();
  const int64_t row_bytes = four ? in / 2 : in;
  for (int64_t r = 0; r < out; ++r) {
    const uint8_t* dr = d + r * row_bytes;
    float* orow = o + r * in;
    for (int64_t g = 0; g < groups; ++g) {
      const float sc = s[r * groups + g];
      const int64_t c0 = g * group, c1 = std::min(in, c0 + group);
      if (four) {
        for (int64_t c = c0; c < c1; ++c) {
          const int code = (c & 1) ? (dr[c >> 1] >> 4) : (dr[c >> 1] & 15);
          orow[c] = static_cast<float>(code - 8) * sc;
        }
      } else {
        const int8_t* ds = reinterpret_cast<const int8_t*>(dr);
        for (int64_t c = c0; c < c1; ++c) orow[c] = static_cast<float>(ds[c]) * sc;
      }
    }
  }
  return w;
}

}  // namespace

at::Tensor QuantizedWeight::dequantize(at::ScalarType dtype) const {
  at::NoGradGuard no_grad;
  if (dtype == at::kFloat && data.device().is_cpu()) return dequantize_f32(*this);
  at::Tensor q;
  if (bits() == 8) {
    q = data.to(dtype);
  } else {
    // (out, in/2) bytes -> (out, in/2, 2) nibbles, low first -> (out, in), minus the offset 8.
    const at::Tensor lo = at::bitwise_and(data, 15), hi = at::bitwise_right_shift(data, 4);
    q = at::stack({lo, hi}, 2).view({data.size(0), in_features()}).to(dtype).sub_(8);
  }
  return times_scale(q, scale.to(dtype), group_size());
}

QuantizedWeight quantize_weight(const at::Tensor& w, int bits, int64_t group_size) {
  M4_CHECK(bits == 8 || bits == 4, ErrorCode::kInvalidArgument, "quantization bits must be 8 or 4, found ", bits);
  M4_CHECK(w.dim() == 2 && at::isFloatingType(w.scalar_type()), ErrorCode::kInvalidArgument,
           "only 2-D float weights are quantized, found ", w.sizes(), " ", c10::toString(w.scalar_type()));
  const int64_t out = w.size(0), in = w.size(1);
  M4_CHECK(group_size >= 0, ErrorCode::kInvalidArgument, "group size must be >= 0 (0: per channel), found ", group_size);
  // Rows split into ceil(in / group_size) groups of equal width (the last may be
  // shorter): the width is what the scale tensor's shape gives back on load.
  const int64_t requested = group_size == 0 ? in : std::min(group_size, in);
  const int64_t group = ceil_div(in, ceil_div(in, requested));
  M4_CHECK(bits == 8 || in % 2 == 0, ErrorCode::kInvalidArgument, "4-bit packing needs an even number of columns, found ", in);
  at::NoGradGuard no_grad;
  const at::Tensor wf = w.to(at::kFloat).contiguous();
  const int64_t groups = ceil_div(in, group), padded = groups * group;
  // (out, G, group): rows padded with zeros to whole groups; the padding never reaches `data`.
  const at::Tensor g = (padded == in ? wf : at::constant_pad_nd(wf, {0, padded - in})).view({out, groups, group});
  const double qmax = bits == 8 ? 127 : 7;
  const at::Tensor scale = g.abs().amax({2}) / qmax;  // (out, G)
  const at::Tensor safe = at::where(scale > 0, scale, at::ones_like(scale));
  at::Tensor q = (g / safe.unsqueeze(2)).round_().clamp_(-qmax, qmax).view({out, padded}).narrow(1, 0, in);
  QuantizedWeight r;
  r.scale = scale.contiguous();
  if (bits == 8) {
    r.data = q.to(at::kChar).contiguous();
  } else {
    const at::Tensor u = (q + 8).to(at::kByte).view({out, in / 2, 2});
    r.data = at::bitwise_or(u.select(2, 0), at::bitwise_left_shift(u.select(2, 1), 4)).contiguous();
  }
  return r;
}

std::string quant_scale_name(const std::string& stored_weight) { return stored_weight + quantkeys::kScaleSuffix; }

std::string quantized_weight_of_scale(const WeightSet& ws, const std::string& stored) {
  const std::string suffix = quantkeys::kScaleSuffix;
  if (stored.size() <= suffix.size() || stored.compare(stored.size() - suffix.size(), suffix.size(), suffix) != 0) return "";
  const std::string base = stored.substr(0, stored.size() - suffix.size());
  return ws.contains(base) ? base : "";
}

bool is_quantized_weight(const WeightSet& ws, const std::string& stored) {
  return ws.contains(quant_scale_name(stored));
}

std::vector<int64_t> quantized_logical_shape(const TensorInfo& data) {
  if (data.dtype == DType::kU8 && data.shape.size() == 2) return {data.shape[0], 2 * data.shape[1]};
  return data.shape;
}

std::string quantized_layout_problem(const TensorInfo& data, const TensorInfo& scale,
                                     const std::vector<int64_t>& logical) {
  const std::string what = "quantized tensor '" + data.name + "'";
  if (data.dtype != DType::kI8 && data.dtype != DType::kU8)
    return what + " has dtype " + dtype_name(data.dtype) + "; quantized data must be I8 (8 bits) or U8 (4 bits)";
  if (logical.size() != 2) return what + ": only 2-D (Linear) weights may be quantized, this one is " + shape_str(logical);
  const int64_t out = logical[0], in = logical[1];
  const std::vector<int64_t> want = data.dtype == DType::kI8 ? std::vector<int64_t>{out, in}
                                                             : std::vector<int64_t>{out, in / 2};
  if (data.dtype == DType::kU8 && in % 2 != 0) return what + ": 4-bit data needs an even column count, the config implies " + std::to_string(in);
  if (data.shape != want)
    return what + " has shape " + shape_str(data.shape) + " but a " + (data.dtype == DType::kI8 ? "8" : "4") +
           "-bit weight of " + shape_str(logical) + " is stored as " + shape_str(want);
  if (scale.dtype != DType::kF32 && scale.dtype != DType::kF16 && scale.dtype != DType::kBF16)
    return "scale tensor '" + scale.name + "' has dtype " + dtype_name(scale.dtype) + "; scales must be F32, F16 or BF16";
  if (scale.shape.size() != 2 || scale.shape[0] != out || scale.shape[1] < 1 || scale.shape[1] > in)
    return "scale tensor '" + scale.name + "' has shape " + shape_str(scale.shape) + "; a weight of " +
           shape_str(logical) + " needs (" + std::to_string(out) + ", groups) with 1 <= groups <= " + std::to_string(in);
  const int64_t groups = scale.shape[1], group = ceil_div(in, groups);
  if (ceil_div(in, group) != groups)
    return "scale tensor '" + scale.name + "' has " + std::to_string(groups) + " groups per row, which do not split " +
           std::to_string(in) + " columns into groups of one width (" + std::to_string(group) + " columns give " +
           std::to_string(ceil_div(in, group)) + ")";
  return "";
}

}  // namespace m4
