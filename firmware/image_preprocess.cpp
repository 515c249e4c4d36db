// CLIPImageProcessor's resize / center-crop / rescale / normalise (see
// image_preprocess.h), on LibTorch's antialiased bicubic (PIL's filter).
#include "firmware/image_preprocess.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "firmware/transformer_encoder.h"

namespace m4 {

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
  if (C == 1) x = x.expand({x.size(0), 3, H, W});

  // 1. Shortest side -> size; HF's get_resize_output_image_size truncates the long side.
  const int64_t short_side = std::min(H, W), long_side = std::max(H, W);
  // The resize before the crop is size x (size * aspect): a 1 x 1,000,000 image
  // would ask for gigabytes to keep a 224 x 224 centre.
  M4_CHECK(long_side <= kMaxAspectRatio * short_side, ErrorCode::kInvalidArgument, "image preprocessing: a ", W, " x ", H,
           " image has an aspect ratio over ", kMaxAspectRatio, ":1 (its centre crop would be ", short_side, " pixels of ",
           long_side, ")");
  const auto new_long = static_cast<int64_t>(static_cast<double>(size * long_side) / static_cast<double>(short_side));
  const int64_t new_h = H <= W ? size : new_long, new_w = H <= W ? new_long : size;
  // Like Pillow: a horizontal pass, then a vertical one, each skipped when its
  // side keeps its length and each rounded (half up) to 0..255, as Pillow's
  // uint8 intermediate and output are.
  at::Tensor img = x.to(at::kFloat);  // (B, 3, H, W) in 0..255
  auto resample = [](const at::Tensor& t, int64_t h, int64_t w) {
    const std::array<int64_t, 2> out_size{h, w};
    return at::_upsample_bicubic2d_aa(t.contiguous(), at::IntArrayRef(out_size), /*align_corners=*/false, c10::nullopt,
                                      c10::nullopt)
        .add(0.5)
        .floor()
        .clamp(0, 255);
  };
  if (new_w != W) img = resample(img, H, new_w);      // (B, 3, H, new_w)
  if (new_h != H) img = resample(img, new_h, new_w);  // (B, 3, new_h, new_w)

  // 2. Center crop: (B, 3, size, size).
  const int64_t top = (new_h - size) / 2, left = (new_w - size) / 2;
  img = img.narrow(2, top, size).narrow(3, left, size);

  // 3. As HF: x * (1/255) in double, stored as float32; then (x - mean) / std in float32.
  img = (img.to(at::kDouble) * (1.0 / 255.0)).to(at::kFloat);
  auto per_channel = [](const std::array<double, 3>& v) {
    return at::tensor({static_cast<float>(v[0]), static_cast<float>(v[1]), static_cast<float>(v[2])}, at::kFloat)
        .view({1, 3, 1, 1});
  };
  return ((img - per_channel(mean)) / per_channel(std)).contiguous();
}

}  // namespace m4
