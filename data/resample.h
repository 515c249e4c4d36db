// Band-limited audio resampling through libsoxr (the SoX resampler library).
#pragma once

#include <cstdint>
#include <vector>

namespace m4::data {

// Resamples mono `x` from `from_rate` to `to_rate` Hz with libsoxr's "high quality"
// recipe (20-bit precision, linear phase, flat to 0.913 x the lower Nyquist frequency,
// aliasing below -120 dB; bench/resample_bench measures it against the hand-written
// windowed sinc it replaced). Output length: round(len * to_rate / from_rate); the
// filter's delay is removed, so output sample n is at input time n * from / to.
// Same rate returns a copy. Non-positive rates are an m4::Error.
std::vector<float> resample(const std::vector<float>& x, int64_t from_rate, int64_t to_rate);

}  // namespace m4::data
