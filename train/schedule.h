// Learning-rate schedules: linear warmup, then cosine decay to 0, linear decay
// to 0, or constant (as transformers' get_*_schedule_with_warmup).
#pragma once

#include <cstdint>
#include <string>

namespace m4 {

// The learning rate for optimizer step `step` (0-based) of `total`.
double scheduled_lr(const std::string& schedule, double lr, int64_t step, int64_t warmup, int64_t total);

}  // namespace m4
