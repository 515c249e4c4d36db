// Audio resampling to 16 kHz, quality and speed, side by side: the hand-written
// Kaiser-windowed-sinc resampler m4forge's importers used until issue 20 (kept here,
// verbatim in behaviour, as the baseline) against libsoxr (Debian's libsoxr0, HQ and VHQ
// recipes; data::resample is libsoxr HQ since).
//
//   resample_bench [--seconds S] [--repeats N] [FILE ...]
//
// Quality, per conversion (8k, 22.05k, 44.1k, 48k -> 16k):
//  - tones: a sine at 1 kHz, and at each of 16 frequencies from 100 Hz to 0.875 x the
//    lower Nyquist frequency (the band every resampler here means to keep), against the
//    analytic sine at the new rate: its SNR, and the worst, in dB over the interior;
//  - aliasing: sines between the output Nyquist (8 kHz) and 0.5 x the input rate, which
//    must vanish: the worst residual in dB relative to the input's amplitude;
//  - real recordings (the FILEs, default: Debian's asterisk-core-sounds-en-wav speech and
//    sonic-pi-samples music when installed): each output against a reference resampling
//    (a 64-zero-crossing Kaiser sinc with beta 14, evaluated exactly in double, no table),
//    compared below 0.875 x the lower Nyquist frequency (both band-limited there with an
//    FFT brick-wall, so the filters' different transition bands do not count): SNR in dB.
// Speed: seconds of audio resampled per second (median of --repeats), one thread.
#include <soxr.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "bench/timing.h"
#include "core/cpu_runtime.h"
#include "data/resample.h"
#include "data/wav.h"

namespace {

constexpr double kPi = 3.14159265358979323846;
using Signal = std::vector<float>;
using Resampler = std::function<Signal(const Signal&, int64_t, int64_t)>;

double bessel_i0(double x) {
  double sum = 1.0, term = 1.0, q = x * x / 4.0;
  for (int k = 1; k < 200; ++k) {
    term *= q / (static_cast<double>(k) * k);
    sum += term;
    if (term < 1e-18 * sum) break;
  }
  return sum;
}

// Output sample n of a resampling from `from` to `to` Hz is the sum of x[k] h(t - k) over
// the inputs within half_width of its time t = n from / to. A template, so that the kernel
// inlines and the "before" resampler is timed as it ran.
template <typename Kernel>
Signal convolve_resample(const Signal& x, int64_t from, int64_t to, double half_width, Kernel h) {
  const int64_t len = static_cast<int64_t>(x.size());
  const int64_t out_len = (len * to + from / 2) / from;
  Signal y(out_len);
  for (int64_t n = 0; n < out_len; ++n) {
    const double t = static_cast<double>(n * from) / to;
    const int64_t k0 = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(t - half_width)));
    const int64_t k1 = std::min<int64_t>(len - 1, static_cast<int64_t>(std::floor(t + half_width)));
    double acc = 0.0;
    for (int64_t k = k0; k <= k1; ++k) acc += x[k] * h(t - static_cast<double>(k));
    y[n] = static_cast<float>(acc);
  }
  return y;
}

// The importers' resampler before issue 20: cutoff 0.94 x the lower Nyquist, 16 zero
// crossings, Kaiser beta 8.6, the kernel tabulated 512 points per crossing and linearly
// interpolated.
Signal windowed_sinc(const Signal& x, int64_t from, int64_t to) {
  const double cutoff = 0.94 * std::min(1.0, static_cast<double>(to) / from);
  constexpr int kPer = 512;
  const int table_len = 16 * kPer + 2;
  std::vector<double> table(table_len);
  const double i0b = bessel_i0(8.6);
  for (int i = 0; i < table_len; ++i) {
    const double z = static_cast<double>(i) / kPer, r = z / 16.0;
    const double w = r >= 1.0 ? 0.0 : bessel_i0(8.6 * std::sqrt(1.0 - r * r)) / i0b;
    table[i] = cutoff * (i == 0 ? 1.0 : std::sin(kPi * z) / (kPi * z)) * w;
  }
  return convolve_resample(x, from, to, 16.0 / cutoff, [&](double dt) {
    const double pos = std::abs(dt) * cutoff * kPer;
    const int i = static_cast<int>(pos);
    if (i + 1 >= table_len) return 0.0;
    const double f = pos - i;
    return table[i] * (1.0 - f) + table[i + 1] * f;
  });
}

// The reference: the same construction, but 64 zero crossings, beta 14 (stopband far
// below f32), the kernel evaluated exactly at every tap, cutoff at the output Nyquist.
Signal reference(const Signal& x, int64_t from, int64_t to) {
  const double cutoff = std::min(1.0, static_cast<double>(to) / from);
  const double zc = 64.0, beta = 14.0, i0b = bessel_i0(beta);
  return convolve_resample(x, from, to, zc / cutoff, [&](double dt) {
    const double z = dt * cutoff, r = z / zc;
    if (std::abs(r) >= 1.0) return 0.0;
    const double s = z == 0.0 ? 1.0 : std::sin(kPi * z) / (kPi * z);
    return cutoff * s * bessel_i0(beta * std::sqrt(1.0 - r * r)) / i0b;
  });
}

Signal soxr_with(const Signal& x, int64_t from, int64_t to, unsigned long recipe) {
  Signal y(static_cast<size_t>((static_cast<int64_t>(x.size()) * to + from / 2) / from));
  size_t done = 0;
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t q = soxr_quality_spec(recipe, 0);
  const soxr_runtime_spec_t rt = soxr_runtime_spec(1);
  soxr_error_t e = soxr_oneshot(static_cast<double>(from), static_cast<double>(to), 1, x.data(), x.size(), nullptr,
                                y.data(), y.size(), &done, &io, &q, &rt);
  if (e != nullptr) std::fprintf(stderr, "soxr: %s\n", e);
  y.resize(done);
  return y;
}

Signal tone(double hz, double rate, int64_t n, double amp = 0.5) {
  Signal x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(amp * std::sin(2 * kPi * hz * i / rate));
  return x;
}

double db(double ratio) { return 10.0 * std::log10(std::max(ratio, 1e-30)); }

// Signal and error power over [margin, size - margin).
double snr_db(const Signal& y, const Signal& want, size_t margin) {
  double ps = 0, pe = 0;
  for (size_t i = margin; i + margin < std::min(y.size(), want.size()); ++i) {
    ps += double(want[i]) * want[i];
    pe += (double(y[i]) - want[i]) * (double(y[i]) - want[i]);
  }
  return db(ps / pe);
}

// Keeps only content below `hz` (an FFT brick-wall), for comparing in a common band.
Signal band_limit(const Signal& y, double rate, double hz) {
  at::Tensor t = at::from_blob(const_cast<float*>(y.data()), {static_cast<int64_t>(y.size())}, at::kFloat).to(at::kDouble);
  at::Tensor f = at::fft_rfft(t);
  const int64_t keep = static_cast<int64_t>(hz / rate * static_cast<double>(y.size())) + 1;
  if (keep < f.size(0)) f.narrow(0, keep, f.size(0) - keep).zero_();
  at::Tensor back = at::fft_irfft(f, static_cast<int64_t>(y.size())).to(at::kFloat).contiguous();
  return Signal(back.data_ptr<float>(), back.data_ptr<float>() + back.numel());
}

}  // namespace

int main(int argc, char** argv) {
  m4::restart_if_blas_misdetected_cpu(argv);
  m4::configure_cpu_runtime(1, m4::MathKernels::kF32);
  double seconds = 10.0;
  int repeats = 5;
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) seconds = std::stod(argv[++i]);
    else if (a == "--repeats" && i + 1 < argc) repeats = std::stoi(argv[++i]);
    else files.emplace_back(a);
  }
  if (files.empty()) {
    for (const char* f : {"/usr/share/asterisk/sounds/en_US_f_Allison/demo-instruct.wav",
                          "/usr/share/asterisk/sounds/en_US_f_Allison/tt-weasels.wav",
                          "/usr/share/sonic-pi/samples/loop_tabla.flac", "/usr/share/sonic-pi/samples/ambi_choir.flac",
                          "/usr/share/sonic-pi/samples/guit_em9.flac"})
      if (std::filesystem::exists(f)) files.emplace_back(f);
  }
  const std::vector<std::pair<std::string, Resampler>> resamplers = {
      {"windowed-sinc (before)", windowed_sinc},
      {"libsoxr HQ (now)", [](const Signal& x, int64_t a, int64_t b) { return soxr_with(x, a, b, SOXR_HQ); }},
      {"libsoxr VHQ", [](const Signal& x, int64_t a, int64_t b) { return soxr_with(x, a, b, SOXR_VHQ); }},
  };
  // What data::resample is now, to show it is the HQ row.
  const Signal probe = tone(1234, 44100, 44100);
  const bool same = m4::data::resample(probe, 44100, 16000) == soxr_with(probe, 44100, 16000, SOXR_HQ);
  std::printf("data::resample is libsoxr HQ: %s (libsoxr %s)\n\n", same ? "yes" : "NO", soxr_version());

  const int64_t to = 16000;
  std::printf("%-24s %7s %12s %16s %12s %14s\n", "resampler", "from Hz", "1 kHz SNR", "worst tone SNR", "alias",
              "speed x rt");
  for (int64_t from : {8000, 22050, 44100, 48000}) {
    const double band = 0.875 * 0.5 * static_cast<double>(std::min(from, to));
    for (const auto& [name, fn] : resamplers) {
      double worst_snr = 1e9, worst_alias = -1e9;
      for (int k = 0; k < 16; ++k) {
        const double hz = 100.0 + (band - 100.0) * k / 15.0;
        const Signal y = fn(tone(hz, from, from), from, to);
        worst_snr = std::min(worst_snr, snr_db(y, tone(hz, to, to), 512));
      }
      const double snr_1k = snr_db(fn(tone(1000, from, from), from, to), tone(1000, to, to), 512);
      for (double hz = 8500; hz < 0.5 * from; hz += 1700) {
        const Signal y = fn(tone(hz, from, from, 1.0), from, to);
        double peak = 0;
        for (size_t i = 512; i + 512 < y.size(); ++i) peak = std::max(peak, std::abs(double(y[i])));
        worst_alias = std::max(worst_alias, 20 * std::log10(std::max(peak, 1e-12)));
      }
      const Signal long_in = tone(440, from, static_cast<int64_t>(seconds * from));
      const double t = m4::bench::time_median(repeats, [&] { (void)fn(long_in, from, to); });
      char alias[32];
      if (worst_alias > -1e8) std::snprintf(alias, sizeof alias, "%.1f dB", worst_alias);
      else std::snprintf(alias, sizeof alias, "(none)");
      std::printf("%-24s %7lld %9.1f dB %13.1f dB %12s %13.0fx\n", name.c_str(), static_cast<long long>(from), snr_1k,
                  worst_snr, alias, seconds / t);
    }
  }
  if (files.empty()) {
    std::printf("\nno recordings given and none of the Debian ones installed (asterisk-core-sounds-en-wav, sonic-pi-samples)\n");
    return 0;
  }
  std::printf("\nreal recordings -> 16 kHz, SNR against the exact 64-crossing sinc below 0.875 x the lower Nyquist\n");
  std::printf("%-48s %8s", "recording", "from Hz");
  for (const auto& r : resamplers) std::printf(" %24s", r.first.c_str());
  std::printf("\n");
  for (const auto& f : files) {
    const m4::data::MonoAudio a = m4::data::read_audio_mono(f);
    if (a.sample_rate == to) continue;
    const double band = 0.875 * 0.5 * static_cast<double>(std::min(a.sample_rate, to));
    const Signal want = band_limit(reference(a.samples, a.sample_rate, to), to, band);
    std::printf("%-48s %8lld", f.filename().string().c_str(), static_cast<long long>(a.sample_rate));
    for (const auto& r : resamplers) {
      const Signal y = band_limit(r.second(a.samples, a.sample_rate, to), to, band);
      std::printf(" %21.1f dB", snr_db(y, want, 256));
    }
    std::printf("\n");
  }
  return 0;
}
