// libsndfile decoding to mono float; 16-bit PCM WAV writing.
#include "data/wav.h"

#include <sndfile.h>

#include "core/error.h"

namespace m4::data {

MonoAudio read_audio_mono(const std::filesystem::path& path) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  M4_CHECK(f, ErrorCode::kBadInput, path.string(), ": not a decodable audio file (", sf_strerror(nullptr), ")");
  struct Closer {
    SNDFILE* f;
    ~Closer() { sf_close(f); }
  } closer{f};
  M4_CHECK(info.channels > 0 && info.samplerate > 0, ErrorCode::kBadInput, path.string(), ": audio has ",
           info.channels, " channels at ", info.samplerate, " Hz");
  std::vector<float> inter(static_cast<size_t>(info.frames) * info.channels);
  sf_count_t got = sf_readf_float(f, inter.data(), info.frames);
  M4_CHECK(got == info.frames, ErrorCode::kBadInput, path.string(), ": truncated audio (read ", got, " of ",
           info.frames, " frames)");
  MonoAudio a;
  a.sample_rate = info.samplerate;
  a.samples.resize(static_cast<size_t>(info.frames));
  for (sf_count_t i = 0; i < info.frames; ++i) {
    double s = 0;
    for (int c = 0; c < info.channels; ++c) s += inter[static_cast<size_t>(i * info.channels + c)];
    a.samples[static_cast<size_t>(i)] = static_cast<float>(s / info.channels);
  }
  return a;
}

void write_wav(const std::filesystem::path& path, const std::vector<float>& interleaved, int64_t sample_rate,
               int channels) {
  SF_INFO info{};
  info.samplerate = static_cast<int>(sample_rate);
  info.channels = channels;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  M4_CHECK(f, ErrorCode::kIo, path.string(), ": cannot write WAV (", sf_strerror(nullptr), ")");
  sf_count_t frames = static_cast<sf_count_t>(interleaved.size() / channels);
  sf_count_t put = sf_writef_float(f, interleaved.data(), frames);
  sf_close(f);
  M4_CHECK(put == frames, ErrorCode::kIo, path.string(), ": short write");
}

}  // namespace m4::data
