// Line plot rasterised into an RGB image, written with libpng.
#include "train/curve_plot.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "data/png_image.h"

namespace m4 {
namespace {

struct Canvas {
  data::Image img;
  void put(int x, int y, uint8_t r, uint8_t g, uint8_t b) {
    if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
    const int64_t plane = img.width * img.height, i = static_cast<int64_t>(y) * img.width + x;
    img.pixels[i] = r;
    img.pixels[plane + i] = g;
    img.pixels[2 * plane + i] = b;
  }
  // Bresenham, 2 px thick.
  void line(int x0, int y0, int x1, int y1, uint8_t r, uint8_t g, uint8_t b) {
    const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    while (true) {
      put(x0, y0, r, g, b);
      put(x0, y0 + 1, r, g, b);
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * err;
      if (e2 >= dy) err += dy, x0 += sx;
      if (e2 <= dx) err += dx, y0 += sy;
    }
  }
};

}  // namespace

Curve read_curve(const std::filesystem::path& metrics_jsonl) {
  Curve c;
  std::ifstream in(metrics_jsonl);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("step")) continue;
    const double step = j["step"].get<double>();
    if (j.contains("loss")) c.loss.emplace_back(step, j["loss"].get<double>());
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key().rfind("eval_", 0) == 0 && it.key() != "eval_samples") c.metric.emplace_back(step, it.value().get<double>());
    }
  }
  return c;
}

void plot_curve(const Curve& c, const std::filesystem::path& png, int width, int height) {
  Canvas cv;
  cv.img.channels = 3;
  cv.img.width = width;
  cv.img.height = height;
  cv.img.pixels.assign(static_cast<size_t>(3) * width * height, 255);
  const int left = 40, right = width - 20, top = 20, bottom = height - 30;
  double max_step = 1, lmin = INFINITY, lmax = -INFINITY, mmax = 0;
  for (auto [s, v] : c.loss) max_step = std::max(max_step, s), lmin = std::min(lmin, v), lmax = std::max(lmax, v);
  for (auto [s, v] : c.metric) max_step = std::max(max_step, s), mmax = std::max(mmax, v);
  if (!(lmax > lmin)) lmin = lmin - 1, lmax = lmax + 1;
  if (mmax <= 0) mmax = 1;
  for (int g = 0; g <= 4; ++g) {  // grid
    const int y = top + (bottom - top) * g / 4, x = left + (right - left) * g / 4;
    cv.line(left, y, right, y, 225, 225, 225);
    cv.line(x, top, x, bottom, 225, 225, 225);
  }
  cv.line(left, bottom, right, bottom, 60, 60, 60);
  cv.line(left, top, left, bottom, 60, 60, 60);
  auto X = [&](double s) { return left + static_cast<int>((right - left) * s / max_step); };
  auto draw = [&](const std::vector<std::pair<double, double>>& pts, double lo, double hi, uint8_t r, uint8_t g, uint8_t b) {
    auto Y = [&](double v) { return bottom - static_cast<int>((bottom - top) * (v - lo) / (hi - lo)); };
    for (size_t i = 1; i < pts.size(); ++i) cv.line(X(pts[i - 1].first), Y(pts[i - 1].second), X(pts[i].first), Y(pts[i].second), r, g, b);
    for (const auto& p : pts) cv.line(X(p.first) - 2, Y(p.second), X(p.first) + 2, Y(p.second), r, g, b);
  };
  draw(c.loss, lmin, lmax, 31, 119, 180);
  draw(c.metric, 0, mmax, 255, 127, 14);
  data::write_png(png, cv.img);
  const nlohmann::json axes = {{"x", {{"label", "step"}, {"min", 0}, {"max", max_step}}},
                               {"loss", {{"color", "blue"}, {"min", lmin}, {"max", lmax}}},
                               {"metric", {{"color", "orange"}, {"min", 0}, {"max", mmax}}}};
  std::filesystem::path j = png;
  j.replace_extension(".json");
  write_file_atomic(j, axes.dump(1) + "\n");
}

}  // namespace m4
