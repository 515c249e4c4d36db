// Whisper log-mel features (see log_mel.h), following transformers'
// WhisperFeatureExtractor._np_extract_fbank_features and audio_utils.mel_filter_bank.
#include "firmware/log_mel.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "firmware/transformer_encoder.h"

namespace m4 {
namespace {

// The Slaney mel scale (librosa htk=False): linear below 1 kHz, logarithmic above.
constexpr double kFSp = 200.0 / 3.0;
constexpr double kMinLogHz = 1000.0;
constexpr double kMinLogMel = kMinLogHz / kFSp;  // 15
const double kLogStep = std::log(6.4) / 27.0;

double hz_to_mel(double hz) { return hz < kMinLogHz ? hz / kFSp : kMinLogMel + std::log(hz / kMinLogHz) / kLogStep; }
double mel_to_hz(double mel) {
  return mel < kMinLogMel ? mel * kFSp : kMinLogHz * std::exp(kLogStep * (mel - kMinLogMel));
}

}  // namespace

at::Tensor mel_filterbank(int64_t sample_rate, int64_t n_fft, int64_t n_mels, at::ScalarType dtype) {
  M4_CHECK(sample_rate > 0, ErrorCode::kInvalidArgument, "mel filterbank: sample_rate must be positive, found ",
           sample_rate);
  M4_CHECK(n_fft >= 2, ErrorCode::kInvalidArgument, "mel filterbank: n_fft must be >= 2, found ", n_fft);
  M4_CHECK(n_mels > 0, ErrorCode::kInvalidArgument, "mel filterbank: n_mels must be positive, found ", n_mels);
  const int64_t n_freqs = n_fft / 2 + 1;
  const double nyquist = static_cast<double>(sample_rate) / 2;
  // FFT bin centres 0 .. sr/2 and n_mels + 2 edges equally spaced in mel.
  std::vector<double> fft_hz(n_freqs), edge_hz(n_mels + 2);
  for (int64_t k = 0; k < n_freqs; ++k) fft_hz[k] = nyquist * static_cast<double>(k) / static_cast<double>(n_freqs - 1);
  const double mel_max = hz_to_mel(nyquist);
  for (int64_t i = 0; i < n_mels + 2; ++i)
    edge_hz[i] = mel_to_hz(mel_max * static_cast<double>(i) / static_cast<double>(n_mels + 1));
  at::Tensor out = at::zeros({n_mels, n_freqs}, at::kDouble);
  double* w = out.data_ptr<double>();
  for (int64_t m = 0; m < n_mels; ++m) {
    const double lo = edge_hz[m], mid = edge_hz[m + 1], hi = edge_hz[m + 2];
    const double norm = 2.0 / (hi - lo);  // Slaney: constant area per filter
    for (int64_t k = 0; k < n_freqs; ++k) {
      const double up = (fft_hz[k] - lo) / (mid - lo), down = (hi - fft_hz[k]) / (hi - mid);
      w[m * n_freqs + k] = std::max(0.0, std::min(up, down)) * norm;
    }
  }
  return out.to(dtype);
}

at::Tensor whisper_log_mel(const at::Tensor& audio, const LogMelOptions& o) {
  M4_CHECK(audio.defined(), ErrorCode::kInvalidArgument, "log-mel: audio is undefined");
  M4_CHECK(audio.dim() == 1 || audio.dim() == 2, ErrorCode::kInvalidArgument,
           "log-mel: audio must be (batch, samples) or (samples), found ", shape_str(audio.sizes()));
  M4_CHECK(audio.scalar_type() == at::kFloat, ErrorCode::kInvalidArgument, "log-mel: audio must be F32, found ",
           c10::toString(audio.scalar_type()));
  M4_CHECK(audio.numel() > 0, ErrorCode::kInvalidArgument, "log-mel: audio is empty (shape ", shape_str(audio.sizes()),
           ")");
  M4_CHECK(o.sample_rate == 16000, ErrorCode::kInvalidArgument,
           "log-mel: Whisper features need 16000 Hz audio, found sample_rate ", o.sample_rate,
           " (hint: resample to 16 kHz first)");
  M4_CHECK(o.n_fft >= 2 && o.hop > 0 && o.n_mels > 0 && o.frames > 0, ErrorCode::kInvalidArgument,
           "log-mel: n_fft must be >= 2 and hop, n_mels, frames positive, found n_fft ", o.n_fft, ", hop ", o.hop,
           ", n_mels ", o.n_mels, ", frames ", o.frames);
  const int64_t n = o.frames * o.hop;
  // Centre padding reflects n_fft / 2 samples, which must exist.
  M4_CHECK(n > o.n_fft / 2, ErrorCode::kInvalidArgument, "log-mel: ", o.frames, " frames of hop ", o.hop, " give ", n,
           " samples, fewer than the ", o.n_fft / 2 + 1, " the centred STFT needs");

  // x: (B, S) -> (B, frames * hop), zero-padded at the end or trimmed.
  at::Tensor x = (audio.dim() == 1 ? audio.unsqueeze(0) : audio).to(at::kDouble);
  const int64_t S = x.size(1);
  x = S >= n ? x.narrow(1, 0, n) : at::constant_pad_nd(x, {0, n - S}, 0.0);
  auto dopts = at::TensorOptions().dtype(at::kDouble).device(x.device());
  at::Tensor window = at::hann_window(o.n_fft, /*periodic=*/true, dopts);
  // (B, n_fft/2 + 1, frames + 1) complex; Whisper drops the last frame.
  at::Tensor spec = at::stft(x, o.n_fft, o.hop, o.n_fft, window, /*center=*/true, "reflect", /*normalized=*/false,
                             /*onesided=*/true, /*return_complex=*/true);
  at::Tensor power = at::abs(spec).square().narrow(2, 0, o.frames);
  // (n_mels, F) @ (B, F, frames) -> (B, n_mels, frames)
  at::Tensor mel = at::matmul(mel_filterbank(o.sample_rate, o.n_fft, o.n_mels, at::kDouble).to(x.device()), power);
  at::Tensor log_spec = at::log10(at::clamp_min(mel, 1e-10));
  // Each example's dynamic range is limited to 8 (80 dB) below its own peak.
  at::Tensor peak = log_spec.amax({1, 2}, /*keepdim=*/true);
  log_spec = at::maximum(log_spec, peak - 8.0);
  return ((log_spec + 4.0) / 4.0).to(at::kFloat);
}

}  // namespace m4
