// Warmup + cosine / linear / constant.
#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace m4 {

double scheduled_lr(const std::string& schedule, double lr, int64_t step, int64_t warmup, int64_t total) {
  if (step < warmup) return lr * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  if (schedule == "constant") return lr;
  const double progress = static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
  if (schedule == "cosine") return lr * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
  if (schedule == "linear") return lr * std::max(0.0, 1.0 - progress);
  M4_FAIL(ErrorCode::kInvalidArgument, "unknown schedule '", schedule, "' (cosine, linear, constant)");
}

}  // namespace m4
