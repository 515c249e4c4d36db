// Resampling with libsoxr (see resample.h).
#include "data/resample.h"

#include <soxr.h>

#include "core/error.h"

namespace m4::data {

std::vector<float> resample(const std::vector<float>& x, int64_t from_rate, int64_t to_rate) {
  M4_CHECK(from_rate > 0 && to_rate > 0, ErrorCode::kInvalidArgument, "resample: rates must be positive, got ",
           from_rate, " -> ", to_rate);
  if (from_rate == to_rate) return x;
  const int64_t len = static_cast<int64_t>(x.size());
  std::vector<float> y(static_cast<size_t>((len * to_rate + from_rate / 2) / from_rate), 0.0f);
  if (x.empty() || y.empty()) return y;
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);  // the caller decides the threads
  size_t done = 0;  // libsoxr may write one sample fewer than asked: y keeps its zero there
  const soxr_error_t e = soxr_oneshot(static_cast<double>(from_rate), static_cast<double>(to_rate), 1, x.data(),
                                      x.size(), nullptr, y.data(), y.size(), &done, &io, &quality, &runtime);
  M4_CHECK(e == nullptr, ErrorCode::kInternal, "resample ", from_rate, " -> ", to_rate, " Hz: libsoxr: ", e);
  return y;
}

}  // namespace m4::data
