// Image files the CLI tests feed to m4forge (tests that link m4_data).
#pragma once

#include <cstdint>
#include <filesystem>

#include "data/png_image.h"

namespace m4::test {

// A PNG of `channels` x `height` x `width` pixels, all `value`.
inline void write_flat_png(const std::filesystem::path& file, int64_t channels, int64_t height, int64_t width,
                           uint8_t value = 7) {
  data::Image img;
  img.channels = channels;
  img.height = height;
  img.width = width;
  img.pixels.assign(static_cast<size_t>(channels * height * width), value);
  data::write_png(file, img);
}

}  // namespace m4::test
