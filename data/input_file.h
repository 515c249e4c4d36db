// One input as a device gets it: a file decoded into the tensors a task's
// model reads (the dataset field names of docs/data-format.md), batch of one.
// `m4forge run` and the device side use it; the importers decode the same
// formats through the same readers (png_image, wav, resample).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "data/loader.h"

namespace m4::data {

// By extension: .png -> image (1, 3, H, W) uint8; .wav/.flac/.ogg -> audio
// (1, T) f32 at 16 kHz (resampled); .csv -> imu (1, T, 6) f32 (rows of
// ax,ay,az,gx,gy,gz, an optional header line); .txt -> text. Anything else,
// or a malformed file, is one m4::Error naming the file.
// `format` ("png", "wav", ...) overrides the extension.
Batch read_input_file(const std::filesystem::path& path, const std::string& format = "");
// The same decoders on bytes in memory (a request body); errors name `where`.
Batch read_input_bytes(std::string_view bytes, const std::string& format, const std::string& where);

// A batch of one text (Path-3 tasks, or the text beside an input).
Batch text_input(const std::string& text);

// IMU CSV rows (see read_input_file) -> (1, T, 6) f32.
at::Tensor read_imu_rows_csv(const std::filesystem::path& path);

}  // namespace m4::data
