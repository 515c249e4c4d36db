// Windowed-sinc resampler (see resample.h): the kernel is evaluated at each
// tap's exact offset (from a fine table), so any rate ratio works.
#include "data/resample.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace m4::data {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kRolloff = 0.94;
constexpr double kZeroCrossings = 16.0;
constexpr double kBeta = 8.6;

// Modified Bessel function of the first kind, order 0 (power series).
double bessel_i0(double x) {
  double sum = 1.0, term = 1.0, q = x * x / 4.0;
  for (int k = 1; k < 64; ++k) {
    term *= q / (static_cast<double>(k) * k);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return sum;
}

}  // namespace

std::vector<float> resample(const std::vector<float>& x, int64_t from_rate, int64_t to_rate) {
  M4_CHECK(from_rate > 0 && to_rate > 0, ErrorCode::kInvalidArgument, "resample: rates must be positive, got ",
           from_rate, " -> ", to_rate);
  if (from_rate == to_rate) return x;
  const int64_t len = static_cast<int64_t>(x.size());
  const int64_t out_len = (len * to_rate + from_rate / 2) / from_rate;
  // Cutoff in cycles per input sample x 2 (1 = input Nyquist).
  const double cutoff = kRolloff * std::min(1.0, static_cast<double>(to_rate) / from_rate);
  const double half_width = kZeroCrossings / cutoff;  // in input samples
  // The kernel tabulated over |u| in zero crossings, 512 points per crossing,
  // linearly interpolated: evaluating Bessel and sine at every tap would make
  // importing a large audio set dominate the import time.
  constexpr int kTablePerCrossing = 512;
  const int table_len = static_cast<int>(kZeroCrossings) * kTablePerCrossing + 2;
  std::vector<double> table(static_cast<size_t>(table_len));
  const double i0_beta = bessel_i0(kBeta);
  for (int i = 0; i < table_len; ++i) {
    const double z = static_cast<double>(i) / kTablePerCrossing;  // |u| * cutoff
    const double r = z / kZeroCrossings;
    const double w = r >= 1.0 ? 0.0 : bessel_i0(kBeta * std::sqrt(1.0 - r * r)) / i0_beta;
    const double s = i == 0 ? 1.0 : std::sin(kPi * z) / (kPi * z);
    table[static_cast<size_t>(i)] = cutoff * s * w;
  }
  std::vector<float> y(static_cast<size_t>(out_len));
  for (int64_t n = 0; n < out_len; ++n) {
    // Position of output sample n on the input time axis, from integers so
    // long signals do not drift.
    const double t = static_cast<double>(n * from_rate) / to_rate;
    const int64_t k0 = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(t - half_width)));
    const int64_t k1 = std::min<int64_t>(len - 1, static_cast<int64_t>(std::floor(t + half_width)));
    double acc = 0.0;
    for (int64_t k = k0; k <= k1; ++k) {
      const double pos = std::abs(t - static_cast<double>(k)) * cutoff * kTablePerCrossing;
      const int i = static_cast<int>(pos);
      if (i + 1 >= table_len) continue;
      const double f = pos - i;
      const double h = table[static_cast<size_t>(i)] * (1.0 - f) + table[static_cast<size_t>(i) + 1] * f;
      acc += x[static_cast<size_t>(k)] * h;
    }
    y[static_cast<size_t>(n)] = static_cast<float>(acc);
  }
  return y;
}

}  // namespace m4::data
