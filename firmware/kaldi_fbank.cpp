// Kaldi fbank and the AST front-end (see kaldi_fbank.h). The arithmetic follows
// torchaudio.compliance.kaldi (f32 throughout, the filterbank built in f32 as it builds it),
// so that HF's ASTFeatureExtractor is matched to rounding.
#include "firmware/kaldi_fbank.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "firmware/transformer_encoder.h"

namespace m4 {
namespace {

double mel_scale(double hz) { return 1127.0 * std::log(1.0 + hz / 700.0); }

int64_t next_power_of_two(int64_t n) {
  int64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

// Samples per window and per shift, truncated as Kaldi does (16 kHz: 400 and 160).
int64_t samples_of(double sample_rate, double ms) { return static_cast<int64_t>(sample_rate * ms * 0.001); }

}  // namespace

at::Tensor kaldi_mel_banks(int64_t num_bins, int64_t padded_window, double sample_rate, double low_freq,
                           double high_freq) {
  M4_CHECK(num_bins > 3, ErrorCode::kInvalidArgument, "fbank: at least 4 mel bins are needed, found ", num_bins);
  M4_CHECK(padded_window >= 2 && padded_window % 2 == 0, ErrorCode::kInvalidArgument,
           "fbank: the padded window must be even and >= 2, found ", padded_window);
  const double nyquist = 0.5 * sample_rate;
  if (high_freq <= 0.0) high_freq += nyquist;
  M4_CHECK(low_freq >= 0.0 && low_freq < nyquist && high_freq > low_freq && high_freq <= nyquist,
           ErrorCode::kInvalidArgument, "fbank: mel range ", low_freq, "..", high_freq, " Hz must lie within 0..",
           nyquist, " Hz (the Nyquist frequency of ", sample_rate, " Hz)");
  const int64_t num_fft_bins = padded_window / 2;
  const double fft_bin_width = sample_rate / static_cast<double>(padded_window);
  const double mel_low = mel_scale(low_freq), mel_high = mel_scale(high_freq);
  const double delta = (mel_high - mel_low) / static_cast<double>(num_bins + 1);
  // Each filter b rises from mel edge b to b+1 and falls to b+2: (num_bins, 1) columns
  // against the FFT bins' mel values (1, num_fft_bins); f32 as torchaudio computes them.
  const at::Tensor bin = at::arange(num_bins, at::kFloat).unsqueeze(1);
  const at::Tensor left = bin * delta + mel_low;
  const at::Tensor center = (bin + 1.0) * delta + mel_low;
  const at::Tensor right = (bin + 2.0) * delta + mel_low;
  const at::Tensor mel = ((at::arange(num_fft_bins, at::kFloat) * fft_bin_width) / 700.0 + 1.0).log().mul(1127.0).unsqueeze(0);
  const at::Tensor up = (mel - left) / (center - left);
  const at::Tensor down = (right - mel) / (right - center);
  const at::Tensor banks = at::clamp_min(at::minimum(up, down), 0.0);  // (num_bins, num_fft_bins)
  return at::constant_pad_nd(banks, {0, 1}, 0.0);                        // + the Nyquist bin, weight 0
}

at::Tensor kaldi_fbank(const at::Tensor& waveform, const KaldiFbankOptions& o) {
  M4_CHECK(waveform.defined() && (waveform.dim() == 1 || waveform.dim() == 2), ErrorCode::kInvalidArgument,
           "fbank: the waveform must be (samples) or (batch, samples), found shape ",
           waveform.defined() ? shape_str(waveform.sizes()) : "none");
  M4_CHECK(waveform.scalar_type() == at::kFloat, ErrorCode::kInvalidArgument, "fbank: the waveform must be F32, found ",
           c10::toString(waveform.scalar_type()));
  M4_CHECK(o.sample_rate > 0 && o.frame_length_ms > 0 && o.frame_shift_ms > 0, ErrorCode::kInvalidArgument,
           "fbank: sample rate, frame length and frame shift must be positive, found ", o.sample_rate, " Hz, ",
           o.frame_length_ms, " ms, ", o.frame_shift_ms, " ms");
  M4_CHECK(o.preemphasis >= 0.0 && o.preemphasis <= 1.0, ErrorCode::kInvalidArgument,
           "fbank: the pre-emphasis coefficient must be in [0, 1], found ", o.preemphasis);
  const int64_t window = samples_of(o.sample_rate, o.frame_length_ms);
  const int64_t shift = samples_of(o.sample_rate, o.frame_shift_ms);
  M4_CHECK(window >= 2 && shift >= 1, ErrorCode::kInvalidArgument, "fbank: a ", o.frame_length_ms, " ms window and ",
           o.frame_shift_ms, " ms shift at ", o.sample_rate, " Hz are ", window, " and ", shift,
           " samples (at least 2 and 1 needed)");
  const int64_t n = waveform.size(-1);
  M4_CHECK(n >= window, ErrorCode::kInvalidArgument, "fbank: ", n, " samples are fewer than one ", o.frame_length_ms,
           " ms frame (", window, " samples at ", o.sample_rate, " Hz)");
  const int64_t padded = next_power_of_two(window);

  // frames: ([B,] m, window), a view of whole windows `shift` apart.
  at::Tensor frames = waveform.contiguous().unfold(-1, window, shift);
  if (o.remove_dc_offset) frames = frames - frames.mean(-1, /*keepdim=*/true);
  if (o.preemphasis != 0.0) {
    // Each sample minus p times its predecessor; the first sample is its own predecessor.
    const at::Tensor previous = at::cat({frames.narrow(-1, 0, 1), frames.narrow(-1, 0, window - 1)}, -1);
    frames = frames - previous * o.preemphasis;
  }
  at::Tensor w = at::hann_window(window, /*periodic=*/false, at::TensorOptions().dtype(at::kFloat));
  if (o.window == KaldiWindow::kPovey) w = w.pow(0.85);
  frames = frames * w;
  if (padded != window) frames = at::constant_pad_nd(frames, {0, padded - window}, 0.0);  // ([B,] m, padded)

  // ([B,] m, padded / 2 + 1) power spectrum -> ([B,] m, num_mel_bins) mel energies -> log, floored at f32 epsilon.
  const at::Tensor power = at::fft_rfft(frames).abs().pow(2.0);
  const at::Tensor banks = kaldi_mel_banks(o.num_mel_bins, padded, o.sample_rate, o.low_freq, o.high_freq);
  const at::Tensor energies = at::matmul(power, banks.t());
  return at::clamp_min(energies, std::numeric_limits<float>::epsilon()).log();
}

at::Tensor ast_fbank_features(const at::Tensor& audio, const AstFeatureOptions& o) {
  M4_CHECK(audio.defined() && (audio.dim() == 1 || audio.dim() == 2), ErrorCode::kInvalidArgument,
           "AST features: audio must be (batch, samples) or (samples), found shape ",
           audio.defined() ? shape_str(audio.sizes()) : "none");
  M4_CHECK(audio.scalar_type() == at::kFloat, ErrorCode::kInvalidArgument, "AST features: audio must be F32, found ",
           c10::toString(audio.scalar_type()));
  M4_CHECK(o.num_mel_bins > 3 && o.max_length > 0 && o.sampling_rate > 0, ErrorCode::kInvalidArgument,
           "AST features: num_mel_bins must be > 3 and max_length, sampling_rate positive, found ", o.num_mel_bins,
           ", ", o.max_length, ", ", o.sampling_rate);
  M4_CHECK(o.std > 0 || !o.do_normalize, ErrorCode::kInvalidArgument, "AST features: std must be positive, found ", o.std);
  const at::Tensor batch = audio.dim() == 1 ? audio.unsqueeze(0) : audio;
  KaldiFbankOptions k;
  k.sample_rate = static_cast<double>(o.sampling_rate);
  k.num_mel_bins = o.num_mel_bins;
  k.window = KaldiWindow::kHanning;
  const at::Tensor fbank = kaldi_fbank(batch.cpu(), k);  // (B, frames, mel), every row its own clip
  at::Tensor out = at::zeros({batch.size(0), o.max_length, o.num_mel_bins}, at::kFloat);
  const int64_t keep = std::min(fbank.size(1), o.max_length);
  out.narrow(1, 0, keep).copy_(fbank.narrow(1, 0, keep));
  // As HF: the mean as an f32 scalar, 2 x std in double then f32; padded rows are normalised too.
  if (o.do_normalize) out = (out - static_cast<float>(o.mean)) / static_cast<float>(o.std * 2.0);
  return out.to(audio.device());
}

}  // namespace m4
