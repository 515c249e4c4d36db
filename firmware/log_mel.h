// Whisper's log-mel frontend as Hugging Face's WhisperFeatureExtractor computes it
// (numpy path, feature_extraction_whisper.py / audio_utils.py): pad or trim to a
// fixed length, periodic-Hann STFT, power, Slaney mel filters, log10, the -8 floor.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace m4 {

struct LogMelOptions {
  int64_t sample_rate = 16000;  // Whisper's only rate
  int64_t n_fft = 400;
  int64_t hop = 160;
  int64_t n_mels = 80;    // 80, or 128 for large-v3
  int64_t frames = 3000;  // pad/trim target: frames * hop samples (3000 = 30 s)
};

// audio: (B, samples) or (samples), f32 at 16 kHz -> (B, n_mels, frames) f32.
// Each example is zero-padded (or trimmed) to frames * hop samples; the -8 floor
// is relative to that example's own maximum. Computed in f64 like the numpy path.
at::Tensor whisper_log_mel(const at::Tensor& audio, const LogMelOptions& options = {});

// Mel filterbank (n_mels, n_fft / 2 + 1) from 0 Hz to sample_rate / 2 on the
// Slaney scale with Slaney (area) normalisation, as librosa.filters.mel(htk=False,
// norm="slaney") and WhisperFeatureExtractor build it. Any positive rate.
at::Tensor mel_filterbank(int64_t sample_rate, int64_t n_fft, int64_t n_mels, at::ScalarType dtype = at::kFloat);

}  // namespace m4
