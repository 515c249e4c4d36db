// CLIP image preprocessing from uint8 pixels, as HF transformers'
// CLIPImageProcessor (image_processing_clip.py, 4.33) with its defaults.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>

namespace m4 {

// OPENAI_CLIP_MEAN / OPENAI_CLIP_STD of transformers' image_utils.
constexpr std::array<double, 3> kClipImageMean = {0.48145466, 0.4578275, 0.40821073};
constexpr std::array<double, 3> kClipImageStd = {0.26862954, 0.26130258, 0.27577711};

// The widest image preprocessing takes: long side <= 32 x short side (what is
// cut away beyond 1:1 is never seen; the resize before the crop is bounded).
constexpr int64_t kMaxAspectRatio = 32;

// Pillow's Image.resize((width, height), BICUBIC) of 8-bit planes, to the value
// (libImaging/Resample.c): the cubic kernel (a = -0.5) widened by the downscale
// factor, weights normalised per output and rounded to 22-bit fixed point, a
// horizontal pass into a uint8 intermediate, then a vertical one; a pass whose
// side keeps its length is skipped. pixels_u8: (B, C, H, W) uint8 -> (B, C,
// height, width) uint8.
at::Tensor pillow_bicubic_resize(const at::Tensor& pixels_u8, int64_t height, int64_t width);

// pixels_u8: (B, C, H, W) or (C, H, W), uint8 RGB (C = 3) or grayscale (C = 1,
// repeated to 3 channels, as convert_rgb). Steps:
//  1. resize so the shortest side is `size` (the long side becomes
//     int(size * long / short)) exactly as Pillow's Image.resize(BICUBIC), which
//     HF uses: see pillow_bicubic_resize;
//  2. center crop size x size (top = (H - size) / 2, left = (W - size) / 2, floored);
//  3. x / 255, then (x - mean) / std per channel, in float32.
// Returns (B, 3, size, size) float32; a (C, H, W) input gives B = 1, as HF's
// pixel_values. Bad inputs (not uint8, rank not 3/4, C not 1/3, empty, size < 1,
// aspect ratio over kMaxAspectRatio)
// throw m4::Error with a one-line message.
at::Tensor clip_preprocess(const at::Tensor& pixels_u8, int64_t size,
                           const std::array<double, 3>& mean = kClipImageMean,
                           const std::array<double, 3>& std = kClipImageStd);

}  // namespace m4
