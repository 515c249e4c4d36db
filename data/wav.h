// Audio files through libsndfile (WAV, FLAC, ...): decode to mono float, and a
// small 16-bit PCM WAV writer for tests and examples.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace m4::data {

struct MonoAudio {
  std::vector<float> samples;  // in [-1, 1]
  int64_t sample_rate = 0;
};

// Decodes any format libsndfile reads and mixes all channels to mono (mean).
// A file that does not decode is one m4::Error(kBadInput) naming it.
MonoAudio read_audio_mono(const std::filesystem::path& path);

// Writes `channels`-interleaved samples as 16-bit PCM WAV.
void write_wav(const std::filesystem::path& path, const std::vector<float>& interleaved, int64_t sample_rate,
               int channels = 1);

}  // namespace m4::data
