// Line charts as standalone SVG a person can read: a title, axes with ticks at
// round numbers, axis labels with units, a legend, one polyline per series
// (markers where a series has few points). No scripts, no external resources.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace m4 {

struct ChartSeries {
  std::string name;                                // the legend's text; also data-series="..."
  std::vector<std::pair<double, double>> points;  // (x, y), x ascending; non-finite values are skipped
  std::string color = "#1f77b4";
  double stroke_width = 2;
  double opacity = 1;
  bool markers = false;  // a dot at every point (also drawn when a series has < 2 points)
};

struct Chart {
  std::string title;
  std::string x_label, y_label;  // with units: "step", "loss (nats per token)"
  std::vector<ChartSeries> series;
  int width = 640, height = 320;
  bool y_from_zero = false;  // include 0 in the y range (rates, accuracies)
  double x_min = NAN, x_max = NAN;  // include these in the x range (charts of one run share 0..steps); NaN: the data's
};

// Round tick values covering [lo, hi] (about `target` of them, steps of 1, 2 or
// 5 x 10^k). The first tick is <= lo and the last >= hi.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);
// A tick's text at the precision its step needs ("0.25", "2e-04", "1500").
std::string format_tick(double value, double step);

// <svg ...>...</svg> (no XML declaration: it is also inlined into HTML).
std::string render_svg(const Chart& chart);

// At most `max_points` of `points`, evenly spaced, the first and last kept.
std::vector<std::pair<double, double>> thin_points(const std::vector<std::pair<double, double>>& points, size_t max_points);
// Exponential moving average with bias correction (TensorBoard's smoothing).
std::vector<std::pair<double, double>> ema_smooth(const std::vector<std::pair<double, double>>& points, double weight);

// &, <, >, " and ' escaped for XML/HTML text and attribute values.
std::string xml_escape(std::string_view s);

}  // namespace m4
