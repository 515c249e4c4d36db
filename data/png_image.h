// PNG files through libpng's simplified API (gray, RGB, RGBA, palette, 16-bit
// all decode to 8-bit gray or RGB), plus the bilinear resize import uses.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace m4::data {

// An 8-bit image, planar: pixels[(c * height + y) * width + x].
struct Image {
  int64_t channels = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;
};

struct PngInfo {
  int64_t height = 0, width = 0;
  bool color = false;  // false: gray (with or without alpha)
};

// Header only; a file that is not a PNG is one m4::Error(kBadInput) naming it.
PngInfo read_png_info(const std::filesystem::path& path);
// The most pixels a decoded image may have (8192 x 8192), checked from the
// header before decoding.
inline constexpr int64_t kMaxImagePixels = 8192LL * 8192LL;

// Decodes to `channels` = 1 (gray) or 3 (RGB). Alpha is dropped by compositing
// onto black; palettes are expanded; 16-bit is reduced to 8.
Image read_png(const std::filesystem::path& path, int channels);
// Writes 1 (gray), 3 (RGB) or 4 (RGBA) channels.
void write_png(const std::filesystem::path& path, const Image& image);

// Bilinear resize with half-pixel centres (as align_corners=false), rounding.
Image resize_bilinear(const Image& in, int64_t height, int64_t width);

}  // namespace m4::data
