// Whisper's log-mel frontend against independent double-precision references
// written here from the published formulas (Slaney mel scale, a naive DFT), and
// its fixed-length, per-example-floor and error behaviour.
#include "firmware/log_mel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <iostream>
#include <vector>

#include "tests/support/test_util.h"

namespace m4 {
namespace {

using test::expect_error;
using test::max_abs_diff;

// ---------------------------------------------------------------------------
// Independent references.

// Slaney (Auditory Toolbox) mel scale: 3 mels per 200 Hz below 1 kHz, then
// 27 mels per factor 6.4.
double ref_hz_to_mel(double f) {
  const double f_sp = 200.0 / 3.0, logstep = std::log(6.4) / 27.0;
  if (f < 1000.0) return f / f_sp;
  return 1000.0 / f_sp + std::log(f / 1000.0) / logstep;
}
double ref_mel_to_hz(double m) {
  const double f_sp = 200.0 / 3.0, logstep = std::log(6.4) / 27.0;
  if (m < 1000.0 / f_sp) return m * f_sp;
  return 1000.0 * std::exp(logstep * (m - 1000.0 / f_sp));
}

// Edge frequencies f[0..n_mels+1] of the triangles.
std::vector<double> ref_edges(double sr, int64_t n_mels) {
  std::vector<double> f(n_mels + 2);
  const double top = ref_hz_to_mel(sr / 2);
  for (int64_t i = 0; i < n_mels + 2; ++i) f[i] = ref_mel_to_hz(top * i / (n_mels + 1));
  return f;
}

// Triangles on the FFT bin frequencies k * sr / n_fft, scaled by 2 / (f[i+2] - f[i]).
std::vector<std::vector<double>> ref_filters(double sr, int64_t n_fft, int64_t n_mels) {
  const auto f = ref_edges(sr, n_mels);
  std::vector<std::vector<double>> w(n_mels, std::vector<double>(n_fft / 2 + 1, 0.0));
  for (int64_t i = 0; i < n_mels; ++i) {
    for (int64_t k = 0; k <= n_fft / 2; ++k) {
      const double hz = k * sr / n_fft;
      double v = 0;
      if (hz > f[i] && hz <= f[i + 1])
        v = (hz - f[i]) / (f[i + 1] - f[i]);
      else if (hz > f[i + 1] && hz < f[i + 2])
        v = (f[i + 2] - hz) / (f[i + 2] - f[i + 1]);
      w[i][k] = v * 2.0 / (f[i + 2] - f[i]);
    }
  }
  return w;
}

at::Tensor to_tensor(const std::vector<std::vector<double>>& m) {
  at::Tensor t = at::empty({static_cast<int64_t>(m.size()), static_cast<int64_t>(m[0].size())}, at::kDouble);
  for (size_t i = 0; i < m.size(); ++i)
    for (size_t j = 0; j < m[0].size(); ++j) t[i][j] = m[i][j];
  return t;
}

// WhisperFeatureExtractor step by step with a naive DFT, for one example.
// Returns (n_mels, frames).
std::vector<std::vector<double>> ref_log_mel(const std::vector<double>& audio, const LogMelOptions& o) {
  const int64_t n = o.frames * o.hop, N = o.n_fft, half = N / 2;
  std::vector<double> x(n, 0.0);
  for (int64_t i = 0; i < n && i < static_cast<int64_t>(audio.size()); ++i) x[i] = audio[i];
  // Reflect padding (the edge sample is not repeated).
  std::vector<double> p(n + 2 * half);
  for (int64_t i = 0; i < n + 2 * half; ++i) {
    int64_t j = i - half;
    if (j < 0) j = -j;
    if (j >= n) j = 2 * (n - 1) - j;
    p[i] = x[j];
  }
  const auto filt = ref_filters(o.sample_rate, N, o.n_mels);
  std::vector<std::vector<double>> out(o.n_mels, std::vector<double>(o.frames));
  double peak = -1e300;
  for (int64_t t = 0; t < o.frames; ++t) {  // the STFT's last frame is dropped
    std::vector<double> power(half + 1);
    for (int64_t k = 0; k <= half; ++k) {
      std::complex<double> acc = 0;
      for (int64_t s = 0; s < N; ++s) {
        const double w = 0.5 - 0.5 * std::cos(2 * M_PI * s / N);  // periodic Hann
        acc += p[t * o.hop + s] * w * std::polar(1.0, -2 * M_PI * static_cast<double>(k * s % N) / N);
      }
      power[k] = std::norm(acc);
    }
    for (int64_t m = 0; m < o.n_mels; ++m) {
      double e = 0;
      for (int64_t k = 0; k <= half; ++k) e += filt[m][k] * power[k];
      out[m][t] = std::log10(std::max(e, 1e-10));
      peak = std::max(peak, out[m][t]);
    }
  }
  for (auto& row : out)
    for (double& v : row) v = (std::max(v, peak - 8.0) + 4.0) / 4.0;
  return out;
}

// ---------------------------------------------------------------------------

TEST(LogMelFilterbank, MatchesSlaneyFormulas) {
  struct Case {
    int64_t sr, n_fft, n_mels;
  };
  for (Case c : {Case{16000, 400, 80}, Case{16000, 400, 128}, Case{16000, 512, 16}, Case{22050, 2048, 128}}) {
    at::Tensor got = mel_filterbank(c.sr, c.n_fft, c.n_mels, at::kDouble);
    at::Tensor want = to_tensor(ref_filters(c.sr, c.n_fft, c.n_mels));
    ASSERT_EQ(got.sizes(), want.sizes());
    double d = max_abs_diff(got, want);
    std::cout << "[parity] mel_filterbank sr " << c.sr << " n_fft " << c.n_fft << " n_mels " << c.n_mels
              << " max |diff| = " << d << " (max weight " << want.max().item<double>() << ")\n";
    EXPECT_LT(d, 1e-12);
  }
  at::Tensor f32 = mel_filterbank(16000, 400, 80);
  EXPECT_EQ(f32.scalar_type(), at::kFloat);
  EXPECT_EQ(f32.sizes(), (std::vector<int64_t>{80, 201}));
  EXPECT_LT(max_abs_diff(f32, to_tensor(ref_filters(16000, 400, 80))), 1e-8);
}

TEST(LogMelFilterbank, MatchesPublishedLibrosaValues) {
  // Entries of librosa.filters.mel(sr=16000, n_fft=400, n_mels=80) (= OpenAI's
  // mel_filters.npz and WhisperFeatureExtractor.mel_filters), [mel, bin, value];
  // librosa returns f32, so they hold to half an f32 ulp.
  const double kPoints[][3] = {{0, 1, 0.02486259490251541},
                               {1, 1, 0.001990821911022067},
                               {1, 2, 0.022871771827340126},
                               {2, 2, 0.003981643822044134},
                               {2, 3, 0.02088095061480999},
                               {3, 3, 0.0059724655002355576},
                               {9, 10, 0.006945197004824877},
                               {39, 41, 0.011486922390758991},
                               {69, 131, 0.00487553421407938},
                               {79, 190, 0.0022320549469441175},
                               {79, 192, 0.0031647116411477327},
                               {79, 199, 0.0004487590049393475},
                               {10, 12, 0},
                               {40, 50, 0}};
  at::Tensor w = mel_filterbank(16000, 400, 80, at::kDouble);
  double d = 0;
  for (const auto& p : kPoints) {
    const double got = w[static_cast<int64_t>(p[0])][static_cast<int64_t>(p[1])].item<double>();
    d = std::max(d, std::abs(got - p[2]));
    EXPECT_NEAR(got, p[2], 2e-9) << "mel " << p[0] << " bin " << p[1];
  }
  std::cout << "[parity] mel_filterbank vs librosa values max |diff| = " << d << "\n";
  EXPECT_NEAR(w.sum().item<double>(), 1.999024, 1e-5);
}

TEST(LogMelFilterbank, RowsPeakAtTheirCentresWithUnitArea) {
  const int64_t sr = 16000, n_fft = 400, n_mels = 80;
  at::Tensor w = mel_filterbank(sr, n_fft, n_mels, at::kDouble);
  const auto edges = ref_edges(sr, n_mels);
  const double bin_hz = static_cast<double>(sr) / n_fft;
  for (int64_t m = 0; m < n_mels; ++m) {
    at::Tensor row = w[m];
    EXPECT_GT(row.max().item<double>(), 0) << "empty filter " << m;
    EXPECT_GE(row.min().item<double>(), 0);
    // The largest weight sits at an FFT bin next to the triangle's apex.
    const double apex_bin = edges[m + 1] / bin_hz;
    EXPECT_LE(std::abs(row.argmax().item<int64_t>() - apex_bin), 1.0) << "filter " << m;
    // Slaney normalisation: unit area in Hz, which the bins sample well once a
    // triangle spans many of them.
    if (edges[m + 2] - edges[m] > 10 * bin_hz) {
      EXPECT_NEAR(row.sum().item<double>() * bin_hz, 1.0, 0.02) << "filter " << m;
    }
  }
  // Filters are increasingly wide above 1 kHz.
  EXPECT_GT(edges[n_mels + 1] - edges[n_mels - 1], 5 * (edges[2] - edges[0]));
}

TEST(LogMel, PureToneLightsTheNearestMelBinInEveryFrame) {
  LogMelOptions o;
  o.frames = 100;  // 1 s
  at::Tensor t = at::arange(o.frames * o.hop, at::kDouble) / 16000.0;
  // A cosine, so that the reflect padding before sample 0 continues it (a sine
  // would be mirrored into phase opposition and cancel in the first frame).
  at::Tensor audio = (0.5 * at::cos(2 * M_PI * 1000.0 * t)).to(at::kFloat);
  at::Tensor mel = whisper_log_mel(audio, o);
  ASSERT_EQ(mel.sizes(), (std::vector<int64_t>{1, 80, 100}));
  const auto edges = ref_edges(16000, 80);
  int64_t nearest = 0;
  for (int64_t m = 1; m < 80; ++m)
    if (std::abs(edges[m + 1] - 1000.0) < std::abs(edges[nearest + 1] - 1000.0)) nearest = m;
  at::Tensor arg = mel[0].argmax(0);  // (frames)
  EXPECT_TRUE(arg.eq(nearest).all().item<bool>()) << "mel bin nearest 1 kHz: " << nearest << ", argmax: " << arg;
}

TEST(LogMel, MatchesNaiveDftReference) {
  LogMelOptions o;
  o.frames = 8;  // 1280 samples: a short clip of 1000 is padded with zeros
  at::manual_seed(7);
  at::Tensor audio = at::randn({2, 1000}) * 0.3;
  audio[1] *= 1e-3;  // 60 dB quieter: a batch-wide floor would clip it
  at::Tensor got = whisper_log_mel(audio, o);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{2, 80, 8}));
  double d = 0;
  for (int64_t b = 0; b < 2; ++b) {
    at::Tensor a = audio[b].to(at::kDouble).contiguous();
    std::vector<double> v(a.data_ptr<double>(), a.data_ptr<double>() + a.numel());
    d = std::max(d, max_abs_diff(got[b], to_tensor(ref_log_mel(v, o))));
  }
  std::cout << "[parity] whisper_log_mel vs naive DFT max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);
  // Each example is floored against its own peak, as if alone.
  EXPECT_LT(max_abs_diff(got[1], whisper_log_mel(audio[1], o)[0]), 1e-6);
}

TEST(LogMel, MatchesNaiveDftWith128Bins) {
  LogMelOptions o;
  o.frames = 4;
  o.n_mels = 128;
  at::manual_seed(3);
  at::Tensor audio = at::randn({800});
  at::Tensor a = audio.to(at::kDouble);
  std::vector<double> v(a.data_ptr<double>(), a.data_ptr<double>() + a.numel());
  double d = max_abs_diff(whisper_log_mel(audio, o)[0], to_tensor(ref_log_mel(v, o)));
  std::cout << "[parity] whisper_log_mel (128 bins) vs naive DFT max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);
}

TEST(LogMel, PadsAndTrimsToFrames) {
  LogMelOptions o;
  o.n_mels = 16;
  o.frames = 60;  // 9600 samples
  at::manual_seed(1);
  at::Tensor long_audio = at::randn({2, 12000});
  at::Tensor mel = whisper_log_mel(long_audio, o);
  EXPECT_EQ(mel.sizes(), (std::vector<int64_t>{2, 16, 60}));
  EXPECT_EQ(mel.scalar_type(), at::kFloat);
  EXPECT_EQ(max_abs_diff(mel, whisper_log_mel(long_audio.narrow(1, 0, 9600).contiguous(), o)), 0.0);
  at::Tensor short_audio = long_audio.narrow(1, 0, 5000).contiguous();
  at::Tensor padded = at::cat({short_audio, at::zeros({2, 4600})}, 1);
  EXPECT_EQ(max_abs_diff(whisper_log_mel(short_audio, o), whisper_log_mel(padded, o)), 0.0);
  // One-dimensional audio is a batch of one.
  EXPECT_EQ(whisper_log_mel(short_audio[0], o).sizes(), (std::vector<int64_t>{1, 16, 60}));
  // The standard 30 s window.
  EXPECT_EQ(whisper_log_mel(at::zeros({16000})).sizes(), (std::vector<int64_t>{1, 80, 3000}));
}

TEST(LogMel, SilenceIsTheFloorConstant) {
  // log10(1e-10) = -10 everywhere, which is also the maximum: (-10 + 4) / 4.
  at::Tensor mel = whisper_log_mel(at::zeros({2, 3000}), LogMelOptions{16000, 400, 160, 80, 30});
  EXPECT_EQ(mel.sizes(), (std::vector<int64_t>{2, 80, 30}));
  EXPECT_NEAR(mel.min().item<double>(), -1.5, 1e-7);
  EXPECT_NEAR(mel.max().item<double>(), -1.5, 1e-7);
}

TEST(LogMel, DynamicRangeIsEightBelowThePeak) {
  // A tone followed by silence: the silent frames sit exactly 8 (log10 units)
  // below the example's peak, i.e. 2 below it after the (x + 4) / 4 scaling.
  LogMelOptions o;
  o.frames = 50;
  at::Tensor t = at::arange(4000, at::kDouble) / 16000.0;
  at::Tensor audio = at::cat({(0.8 * at::sin(2 * M_PI * 440.0 * t)).to(at::kFloat), at::zeros({4000})});
  at::Tensor mel = whisper_log_mel(audio, o)[0];
  const double peak = mel.max().item<double>();
  EXPECT_NEAR(mel.min().item<double>(), peak - 2.0, 1e-6);
  EXPECT_NEAR(mel.select(1, 45).max().item<double>(), peak - 2.0, 1e-6);  // a frame of pure silence
}

TEST(LogMel, BadInputsGiveOneLineErrors) {
  expect_error([] { whisper_log_mel(at::zeros({1, 2, 100})); }, {"(batch, samples) or (samples)", "[1, 2, 100]"});
  expect_error([] { whisper_log_mel(at::zeros({2, 100}, at::kDouble)); }, {"F32", "Double"});
  expect_error([] { whisper_log_mel(at::zeros({2, 0})); }, {"audio is empty", "[2, 0]"});
  expect_error([] { whisper_log_mel(at::zeros({0})); }, {"audio is empty"});
  LogMelOptions o;
  o.sample_rate = 44100;
  expect_error([&] { whisper_log_mel(at::zeros({100}), o); }, {"16000 Hz", "found sample_rate 44100", "resample"});
  o = {};
  o.n_mels = 0;
  expect_error([&] { whisper_log_mel(at::zeros({100}), o); }, {"n_mels 0"});
  o = {};
  o.frames = 1;
  expect_error([&] { whisper_log_mel(at::zeros({100}), o); }, {"1 frames of hop 160", "160 samples"});
  expect_error([] { mel_filterbank(0, 400, 80); }, {"sample_rate must be positive"});
  expect_error([] { mel_filterbank(16000, 400, 0); }, {"n_mels must be positive"});
}

}  // namespace
}  // namespace m4
