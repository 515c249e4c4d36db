// Timing for the benches: the median of timed runs after one warm-up.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace m4::bench {

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Runs fn once untimed, then `iters` times; the median wall time in seconds.
template <typename Fn>
double time_median(int iters, Fn&& fn) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return median(t);
}

}  // namespace m4::bench
