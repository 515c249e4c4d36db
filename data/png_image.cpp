// PNG decode/encode via libpng's simplified API; bilinear resize.
#include "data/png_image.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace m4::data {
namespace {

struct PngReader {
  png_image img;
  PngReader() {
    std::memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
  }
  ~PngReader() { png_image_free(&img); }
};

}  // namespace

PngInfo read_png_info(const std::filesystem::path& path) {
  PngReader r;
  M4_CHECK(png_image_begin_read_from_file(&r.img, path.c_str()), ErrorCode::kBadInput, path.string(),
           ": not a readable PNG (", r.img.message, ")");
  PngInfo info;
  info.height = r.img.height;
  info.width = r.img.width;
  info.color = (r.img.format & PNG_FORMAT_FLAG_COLOR) != 0;
  return info;
}

Image read_png(const std::filesystem::path& path, int channels) {
  M4_CHECK(channels == 1 || channels == 3, ErrorCode::kInternal, "read_png: channels must be 1 or 3");
  PngReader r;
  M4_CHECK(png_image_begin_read_from_file(&r.img, path.c_str()), ErrorCode::kBadInput, path.string(),
           ": not a readable PNG (", r.img.message, ")");
  r.img.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  const size_t h = r.img.height, w = r.img.width;
  // The header's dimensions, bounded before the decode allocates for them.
  M4_CHECK(h > 0 && w > 0 && static_cast<uint64_t>(h) * w <= static_cast<uint64_t>(kMaxImagePixels), ErrorCode::kBadInput,
           path.string(), ": a ", w, " x ", h, " image is over the limit of ", kMaxImagePixels, " pixels");
  std::vector<uint8_t> hwc(PNG_IMAGE_SIZE(r.img));
  png_color black{0, 0, 0};
  M4_CHECK(png_image_finish_read(&r.img, &black, hwc.data(), 0, nullptr), ErrorCode::kBadInput, path.string(),
           ": corrupt PNG (", r.img.message, ")");
  Image out;
  out.channels = channels;
  out.height = static_cast<int64_t>(h);
  out.width = static_cast<int64_t>(w);
  out.pixels.resize(h * w * channels);
  // (H, W, C) -> (C, H, W)
  for (size_t c = 0; c < static_cast<size_t>(channels); ++c) {
    for (size_t i = 0; i < h * w; ++i) out.pixels[c * h * w + i] = hwc[i * channels + c];
  }
  return out;
}

void write_png(const std::filesystem::path& path, const Image& image) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(image.width);
  img.height = static_cast<png_uint_32>(image.height);
  switch (image.channels) {
    case 1: img.format = PNG_FORMAT_GRAY; break;
    case 3: img.format = PNG_FORMAT_RGB; break;
    case 4: img.format = PNG_FORMAT_RGBA; break;
    default: M4_FAIL(ErrorCode::kInvalidArgument, "write_png: ", image.channels, " channels (expected 1, 3 or 4)");
  }
  const size_t hw = static_cast<size_t>(image.height * image.width), ch = static_cast<size_t>(image.channels);
  std::vector<uint8_t> hwc(hw * ch);
  for (size_t c = 0; c < ch; ++c) {
    for (size_t i = 0; i < hw; ++i) hwc[i * ch + c] = image.pixels[c * hw + i];
  }
  int ok = png_image_write_to_file(&img, path.c_str(), 0, hwc.data(), 0, nullptr);
  std::string msg = img.message;
  png_image_free(&img);
  M4_CHECK(ok, ErrorCode::kIo, path.string(), ": cannot write PNG (", msg, ")");
}

Image resize_bilinear(const Image& in, int64_t height, int64_t width) {
  M4_CHECK(height > 0 && width > 0, ErrorCode::kInvalidArgument, "resize to ", height, "x", width);
  if (height == in.height && width == in.width) return in;
  Image out;
  out.channels = in.channels;
  out.height = height;
  out.width = width;
  out.pixels.resize(static_cast<size_t>(in.channels * height * width));
  const double sy = static_cast<double>(in.height) / height, sx = static_cast<double>(in.width) / width;
  for (int64_t y = 0; y < height; ++y) {
    const double fy = std::clamp((y + 0.5) * sy - 0.5, 0.0, static_cast<double>(in.height - 1));
    const int64_t y0 = static_cast<int64_t>(fy), y1 = std::min(y0 + 1, in.height - 1);
    const double wy = fy - y0;
    for (int64_t x = 0; x < width; ++x) {
      const double fx = std::clamp((x + 0.5) * sx - 0.5, 0.0, static_cast<double>(in.width - 1));
      const int64_t x0 = static_cast<int64_t>(fx), x1 = std::min(x0 + 1, in.width - 1);
      const double wx = fx - x0;
      for (int64_t c = 0; c < in.channels; ++c) {
        const uint8_t* p = in.pixels.data() + c * in.height * in.width;
        const double v = (1 - wy) * ((1 - wx) * p[y0 * in.width + x0] + wx * p[y0 * in.width + x1]) +
                         wy * ((1 - wx) * p[y1 * in.width + x0] + wx * p[y1 * in.width + x1]);
        out.pixels[static_cast<size_t>((c * height + y) * width + x)] =
            static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
      }
    }
  }
  return out;
}

}  // namespace m4::data
