// Kaldi-compatible log mel filterbank features ("fbank", Kaldi's compute-fbank-feats as
// torchaudio.compliance.kaldi.fbank computes them) and the Audio Spectrogram Transformer's
// front-end built on it, as HF transformers' ASTFeatureExtractor (4.33) runs it: fbank with a
// Hanning window and no dither, zero rows padded (or rows cut) to max_length, then
// (x - mean) / (2 std).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace m4 {

enum class KaldiWindow { kHanning, kPovey };

struct KaldiFbankOptions {
  double sample_rate = 16000.0;
  double frame_length_ms = 25.0;
  double frame_shift_ms = 10.0;
  int64_t num_mel_bins = 23;
  double low_freq = 20.0;     // Hz
  double high_freq = 0.0;     // Hz; <= 0 counts down from the Nyquist frequency
  double preemphasis = 0.97;  // s[i] - p * s[i-1], the first sample repeated
  bool remove_dc_offset = true;
  KaldiWindow window = KaldiWindow::kPovey;  // Kaldi's default; HF's AST uses kHanning
};

// One waveform (samples), or a batch of equal-length ones (batch, samples), f32 in the
// scale it was given (HF feeds [-1, 1]) -> ([batch,] frames, num_mel_bins) f32 natural-log
// mel energies, each row computed alone. Frames are whole windows only (Kaldi's
// snip_edges): 1 + (samples - window) / shift of them; each is DC-removed, pre-emphasised,
// windowed, zero-padded to the next power of two, and its power spectrum is weighted by
// triangular filters equally spaced on Kaldi's mel scale (1127 ln(1 + f / 700)) between
// low_freq and high_freq. Fewer samples than one window is an m4::Error naming both counts.
at::Tensor kaldi_fbank(const at::Tensor& waveform, const KaldiFbankOptions& options);

// Kaldi's mel filterbank: (num_bins, padded_window / 2 + 1) f32, the last (Nyquist) column zero.
at::Tensor kaldi_mel_banks(int64_t num_bins, int64_t padded_window, double sample_rate, double low_freq,
                           double high_freq);

// ASTFeatureExtractor's normalisation defaults: AudioSet's fbank mean and std.
constexpr double kAudioSetFbankMean = -4.2677393;
constexpr double kAudioSetFbankStd = 4.5689974;

// ASTFeatureExtractor's settings (its preprocessor_config.json; defaults: AudioSet's).
struct AstFeatureOptions {
  int64_t sampling_rate = 16000;
  int64_t num_mel_bins = 128;
  int64_t max_length = 1024;  // frames
  double mean = kAudioSetFbankMean;
  double std = kAudioSetFbankStd;
  bool do_normalize = true;
};

// audio: (B, samples) or (samples), f32 in [-1, 1] at options.sampling_rate -> input_values
// (B, max_length, num_mel_bins) f32. Each row gets its own fbank (Hanning window, no dither,
// 25 ms / 10 ms), zero rows appended or the last cut to max_length, then normalised.
at::Tensor ast_fbank_features(const at::Tensor& audio, const AstFeatureOptions& options);

}  // namespace m4
