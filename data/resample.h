// Band-limited resampling with a Kaiser-windowed sinc kernel (J. O. Smith,
// "Digital Audio Resampling", ccrma.stanford.edu/~jos/resample/).
#pragma once

#include <cstdint>
#include <vector>

namespace m4::data {

// Resamples mono `x` from `from_rate` to `to_rate` Hz. The low-pass cutoff is
// 0.94 x the lower Nyquist frequency (so downsampling does not alias), the
// kernel spans 16 zero crossings each side with a Kaiser window (beta 8.6,
// about -85 dB stopband). Samples outside the signal count as zero. Output
// length: round(len * to_rate / from_rate). Same rate returns a copy.
std::vector<float> resample(const std::vector<float>& x, int64_t from_rate, int64_t to_rate);

}  // namespace m4::data
