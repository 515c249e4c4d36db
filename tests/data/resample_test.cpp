// The resampler (libsoxr HQ) against analytic sinusoids (passband kept, to 0.9 x
// the lower Nyquist frequency; above-Nyquist content removed), and WAV decoding to
// mono. bench/resample_bench measures it on real recordings.
#include <gtest/gtest.h>

#include <cmath>

#include "data/resample.h"
#include "data/wav.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

std::vector<float> tone(double freq, double rate, int64_t n, double amp) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = static_cast<float>(amp * std::sin(2 * M_PI * freq * i / rate));
  return x;
}

// Max |y - expected| over the interior (edges see the zero padding).
double max_err(const std::vector<float>& y, const std::vector<float>& expected, size_t margin) {
  double m = 0;
  for (size_t i = margin; i + margin < y.size(); ++i) m = std::max(m, std::abs(double(y[i]) - expected[i]));
  return m;
}

TEST(Resample, UpsamplingMatchesTheAnalyticTone) {
  for (double hz : {1000.0, 3500.0}) {  // 3.5 kHz: 0.875 x the input's Nyquist
    auto y = data::resample(tone(hz, 8000, 8000, 0.5), 8000, 16000);
    ASSERT_EQ(y.size(), 16000u);
    double err = max_err(y, tone(hz, 16000, 16000, 0.5), 1024);
    std::cout << "8k->16k " << hz << " Hz max |diff| vs analytic: " << err << "\n";
    EXPECT_LT(err, 1e-5) << hz;
  }
}

TEST(Resample, DownsamplingKeepsPassbandAndRemovesAliases) {
  for (double hz : {3000.0, 7000.0}) {
    auto y = data::resample(tone(hz, 48000, 48000, 0.8), 48000, 16000);
    ASSERT_EQ(y.size(), 16000u);
    double err = max_err(y, tone(hz, 16000, 16000, 0.8), 1024);
    std::cout << "48k->16k " << hz << " Hz max |diff| vs analytic: " << err << "\n";
    EXPECT_LT(err, 1e-5) << hz;
  }
  // 11 kHz is above the new Nyquist (8 kHz): it would alias to 5 kHz.
  auto z = data::resample(tone(11000, 48000, 48000, 0.8), 48000, 16000);
  double peak = 0;
  for (size_t i = 1024; i + 1024 < z.size(); ++i) peak = std::max(peak, std::abs(double(z[i])));
  std::cout << "48k->16k 11 kHz residual peak: " << peak << "\n";
  EXPECT_LT(peak, 1e-5);
}

TEST(Resample, LengthsAndErrors) {
  EXPECT_EQ(data::resample(std::vector<float>(441, 0.f), 44100, 16000).size(), 160u);
  std::vector<float> x = {1, 2, 3};
  EXPECT_EQ(data::resample(x, 16000, 16000), x);
  test::expect_error([] { data::resample({1.f}, 0, 16000); }, {"rates must be positive"});
}

TEST(Wav, StereoMixesToMono) {
  test::TempDir tmp;
  data::write_wav(tmp / "s.wav", {0.5f, -0.5f, 0.25f, 0.75f}, 22050, 2);
  data::MonoAudio a = data::read_audio_mono(tmp / "s.wav");
  EXPECT_EQ(a.sample_rate, 22050);
  ASSERT_EQ(a.samples.size(), 2u);
  EXPECT_NEAR(a.samples[0], 0.0, 1e-4);
  EXPECT_NEAR(a.samples[1], 0.5, 1e-4);
  test::expect_error([&] { data::read_audio_mono(tmp / "none.wav"); }, {"none.wav", "not a decodable audio file"});
}

}  // namespace
}  // namespace m4
