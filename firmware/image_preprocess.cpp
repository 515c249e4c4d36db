// CLIPImageProcessor's resize / center-crop / rescale / normalise (see
// image_preprocess.h); the resize is Pillow's fixed-point resampling (libImaging/Resample.c).
#include "firmware/image_preprocess.h"

#include <ATen/ATen.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "firmware/transformer_encoder.h"

namespace m4 {
namespace {

// Pillow's bicubic kernel (Keys, a = -0.5), support 2.
double bicubic(double x) {
  constexpr double a = -0.5;
  x = std::abs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// Fixed point of Pillow's 8-bit passes: 32 bits less 8 for the value and 2 for overshoot.
constexpr int kPrecisionBits = 32 - 8 - 2;

// The taps of one 1-D pass from in_size to out_size samples: output i reads `count[i]`
// inputs from `first[i]` with weights coeffs[i * width ...], as precompute_coeffs and
// normalize_coeffs_8bpc compute them: the kernel widened by the downscale factor
// (antialiasing), each row normalised to sum 1 in double, then rounded half away from
// zero to kPrecisionBits fixed point.
struct Taps {
  int64_t width = 0;
  std::vector<int64_t> first, count;
  std::vector<int32_t> coeffs;
};

Taps bicubic_taps(int64_t in_size, int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = 2.0 * filterscale;
  Taps t;
  t.width = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.coeffs.assign(static_cast<size_t>(out_size * t.width), 0);
  std::vector<double> k(static_cast<size_t>(t.width));
  for (int64_t i = 0; i < out_size; ++i) {
    const double center = (static_cast<double>(i) + 0.5) * scale;
    // Truncation toward zero, then clamped, as Pillow's (int) casts.
    const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(center - support + 0.5));
    const int64_t hi = std::min<int64_t>(in_size, static_cast<int64_t>(center + support + 0.5));
    const int64_t n = hi - lo;
    const double ss = 1.0 / filterscale;  // a product, not a division: Pillow's rounding
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      k[j] = bicubic((static_cast<double>(j + lo) - center + 0.5) * ss);
      sum += k[j];
    }
    for (int64_t j = 0; j < n; ++j) {
      const double w = (sum != 0.0 ? k[j] / sum : k[j]) * static_cast<double>(1 << kPrecisionBits);
      t.coeffs[i * t.width + j] = static_cast<int32_t>(w < 0 ? w - 0.5 : w + 0.5);
    }
    t.first[i] = lo;
    t.count[i] = n;
  }
  return t;
}

// Rounds a fixed-point sum (which started at one half) to 0..255 as Pillow's clip8.
uint8_t clip8(int64_t acc) {
  const int64_t v = acc >> kPrecisionBits;  // arithmetic shift: floor
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// One plane (rows x cols, row-major) resampled along its rows (cols -> out_cols) or along
// its columns (rows -> out_rows).
void resample_rows(const uint8_t* in, int64_t rows, int64_t cols, const Taps& t, int64_t out_cols, uint8_t* out) {
  for (int64_t y = 0; y < rows; ++y) {
    const uint8_t* row = in + y * cols;
    for (int64_t x = 0; x < out_cols; ++x) {
      const int32_t* k = &t.coeffs[x * t.width];
      int64_t acc = int64_t{1} << (kPrecisionBits - 1);
      for (int64_t j = 0; j < t.count[x]; ++j) acc += static_cast<int64_t>(row[t.first[x] + j]) * k[j];
      out[y * out_cols + x] = clip8(acc);
    }
  }
}

void resample_cols(const uint8_t* in, int64_t cols, const Taps& t, int64_t out_rows, uint8_t* out) {
  for (int64_t y = 0; y < out_rows; ++y) {
    const int32_t* k = &t.coeffs[y * t.width];
    for (int64_t x = 0; x < cols; ++x) {
      int64_t acc = int64_t{1} << (kPrecisionBits - 1);
      for (int64_t j = 0; j < t.count[y]; ++j) acc += static_cast<int64_t>(in[(t.first[y] + j) * cols + x]) * k[j];
      out[y * cols + x] = clip8(acc);
    }
  }
}

}  // namespace

at::Tensor pillow_bicubic_resize(const at::Tensor& pixels_u8, int64_t height, int64_t width) {
  M4_CHECK(pixels_u8.defined() && pixels_u8.scalar_type() == at::kByte && pixels_u8.dim() == 4, ErrorCode::kInvalidArgument,
           "bicubic resize expects (batch, channels, height, width) uint8, found ",
           pixels_u8.defined() ? shape_str(pixels_u8.sizes()) + " " + c10::toString(pixels_u8.scalar_type()) : "none");
  M4_CHECK(height > 0 && width > 0, ErrorCode::kInvalidArgument, "bicubic resize to ", height, " x ", width,
           ": sizes must be positive");
  const at::Tensor x = pixels_u8.cpu().contiguous();
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  at::Tensor out = at::empty({x.size(0), x.size(1), height, width}, at::kByte);
  // Horizontal pass first, then vertical, each skipped where its side keeps its
  // length; the intermediate is uint8, as Pillow's is.
  const bool horizontal = width != W, vertical = height != H;
  const Taps th = horizontal ? bicubic_taps(W, width) : Taps{};
  const Taps tv = vertical ? bicubic_taps(H, height) : Taps{};
  std::vector<uint8_t> mid(static_cast<size_t>(H * width));
  for (int64_t p = 0; p < planes; ++p) {
    const uint8_t* src = x.data_ptr<uint8_t>() + p * H * W;
    uint8_t* dst = out.data_ptr<uint8_t>() + p * height * width;
    const uint8_t* rows = src;
    if (horizontal) {
      resample_rows(src, H, W, th, width, vertical ? mid.data() : dst);
      rows = mid.data();
    }
    if (vertical) resample_cols(rows, width, tv, height, dst);
    if (!horizontal && !vertical) std::copy(src, src + H * W, dst);
  }
  return out.to(pixels_u8.device());
}

at::Tensor clip_preprocess(const at::Tensor& pixels_u8, int64_t size, const std::array<double, 3>& mean,
                           const std::array<double, 3>& std) {
  M4_CHECK(pixels_u8.defined(), ErrorCode::kInvalidArgument, "image preprocessing: no image given");
  M4_CHECK(pixels_u8.scalar_type() == at::kByte, ErrorCode::kInvalidArgument,
           "image preprocessing expects uint8 pixels (0..255), found ", c10::toString(pixels_u8.scalar_type()),
           " (hint: pixel values that are already normalised go to the encoder directly)");
  M4_CHECK(pixels_u8.dim() == 3 || pixels_u8.dim() == 4, ErrorCode::kInvalidArgument,
           "image preprocessing expects (batch, channels, height, width) or (channels, height, width), found shape ",
           shape_str(pixels_u8.sizes()));
  at::Tensor x = pixels_u8.dim() == 3 ? pixels_u8.unsqueeze(0) : pixels_u8;  // (B, C, H, W)
  const int64_t C = x.size(1), H = x.size(2), W = x.size(3);
  M4_CHECK(C == 3 || C == 1, ErrorCode::kInvalidArgument,
           "image preprocessing expects 3 (RGB) or 1 (grayscale) channels, found ", C, " in shape ",
           shape_str(pixels_u8.sizes()));
  M4_CHECK(H > 0 && W > 0, ErrorCode::kInvalidArgument, "image preprocessing: empty image, shape ",
           shape_str(pixels_u8.sizes()));
  M4_CHECK(size > 0, ErrorCode::kInvalidArgument, "image preprocessing: size must be positive, found ", size);

  // 1. Shortest side -> size; HF's get_resize_output_image_size truncates the long side.
  const int64_t short_side = std::min(H, W), long_side = std::max(H, W);
  // The resize before the crop is size x (size * aspect): a 1 x 1,000,000 image
  // would ask for gigabytes to keep a 224 x 224 centre.
  M4_CHECK(long_side <= kMaxAspectRatio * short_side, ErrorCode::kInvalidArgument, "image preprocessing: a ", W, " x ", H,
           " image has an aspect ratio over ", kMaxAspectRatio, ":1 (its centre crop would be ", short_side, " pixels of ",
           long_side, ")");
  const auto new_long = static_cast<int64_t>(static_cast<double>(size * long_side) / static_cast<double>(short_side));
  const int64_t new_h = H <= W ? size : new_long, new_w = H <= W ? new_long : size;
  // (B, C, new_h, new_w) uint8, exactly as Pillow's Image.resize(BICUBIC).
  at::Tensor img = pillow_bicubic_resize(x, new_h, new_w);

  // 2. Center crop: (B, C, size, size); grayscale repeated to RGB, as convert_rgb
  // (each channel resizes alike, so once is enough).
  const int64_t top = (new_h - size) / 2, left = (new_w - size) / 2;
  img = img.narrow(2, top, size).narrow(3, left, size);
  if (C == 1) img = img.expand({img.size(0), 3, size, size});

  // 3. As HF: x * (1/255) in double, stored as float32; then (x - mean) / std in float32.
  img = (img.to(at::kDouble) * (1.0 / 255.0)).to(at::kFloat);
  auto per_channel = [](const std::array<double, 3>& v) {
    return at::tensor({static_cast<float>(v[0]), static_cast<float>(v[1]), static_cast<float>(v[2])}, at::kFloat)
        .view({1, 3, 1, 1});
  };
  return ((img - per_channel(mean)) / per_channel(std)).contiguous();
}

}  // namespace m4
