// The training-curve PNG of a run: loss per step (blue) and the evaluation
// metric (orange, its own 0..max scale) on light grid lines, so a person can
// open runs/<task>/curve.png and see whether training went anywhere. No text
// rendering: the axes' ranges are written beside it in curve.json.
#pragma once

#include <filesystem>
#include <utility>
#include <vector>

namespace m4 {

struct Curve {
  std::vector<std::pair<double, double>> loss;    // (step, loss)
  std::vector<std::pair<double, double>> metric;  // (step, value)
};

// Reads a run's metrics.jsonl into a curve.
Curve read_curve(const std::filesystem::path& metrics_jsonl);
// Writes `png` (width x height RGB) and `png` with .json (the axis ranges).
void plot_curve(const Curve& c, const std::filesystem::path& png, int width = 640, int height = 360);

}  // namespace m4
