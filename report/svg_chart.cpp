// SVG line charts: round ticks, labelled axes, a legend row under the title.
#include "report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace m4 {
namespace {

std::string num(double v) {  // coordinates: 1 decimal is finer than a pixel
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

bool finite_point(const std::pair<double, double>& p) { return std::isfinite(p.first) && std::isfinite(p.second); }

}  // namespace

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0, 1};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {  // one value: a unit-sized window around it
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad, hi += pad;
  }
  const double raw = (hi - lo) / std::max(1, target - 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * mag;
  for (double m : {1.0, 2.0, 2.5, 5.0}) {
    if (m * mag >= raw * (1 - 1e-9)) {
      step = m * mag;
      break;
    }
  }
  std::vector<double> ticks;
  const double first = std::floor(lo / step + 1e-9) * step;
  for (double t = first; ticks.size() < 64; t += step) {
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);  // no "-0"
    if (t >= hi - step * 1e-9) break;
  }
  return ticks;
}

std::string format_tick(double value, double step) {
  char b[32];
  const double s = std::abs(step);
  if (value == 0) return "0";
  if (s > 0 && (s < 1e-3 || std::abs(value) >= 1e6)) {
    std::snprintf(b, sizeof b, "%.0e", value);  // 2e-04, 3e+06
    // One more digit where the step's mantissa needs it (2.5e-04).
    if (std::abs(std::strtod(b, nullptr) - value) > s * 1e-3) std::snprintf(b, sizeof b, "%.1e", value);
    // 2e-04 -> 2e-4, 3e+06 -> 3e6
    std::string t = b;
    const size_t e = t.find('e');
    std::string exp = t.substr(e + 1), sign = exp[0] == '-' ? "-" : "";
    exp = exp.substr(exp[0] == '-' || exp[0] == '+' ? 1 : 0);
    exp.erase(0, std::min(exp.find_first_not_of('0'), exp.size() - 1));
    return t.substr(0, e) + "e" + sign + exp;
  }
  const int decimals = s >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(s) - 1e-9));
  std::snprintf(b, sizeof b, "%.*f", decimals, value);
  // A step of 0.25 needs 2 decimals, not 1.
  if (std::abs(std::strtod(b, nullptr) - value) > s * 1e-3) std::snprintf(b, sizeof b, "%.*f", decimals + 1, value);
  return b;
}

std::vector<std::pair<double, double>> thin_points(const std::vector<std::pair<double, double>>& points, size_t max_points) {
  if (points.size() <= max_points || max_points < 2) return points;
  std::vector<std::pair<double, double>> out;
  out.reserve(max_points);
  for (size_t i = 0; i < max_points; ++i) out.push_back(points[i * (points.size() - 1) / (max_points - 1)]);
  return out;
}

std::vector<std::pair<double, double>> ema_smooth(const std::vector<std::pair<double, double>>& points, double weight) {
  std::vector<std::pair<double, double>> out;
  out.reserve(points.size());
  double acc = 0, norm = 0;
  for (const auto& p : points) {
    if (!finite_point(p)) continue;
    acc = weight * acc + (1 - weight) * p.second;
    norm = weight * norm + (1 - weight);
    out.emplace_back(p.first, acc / norm);
  }
  return out;
}

std::string render_svg(const Chart& c) {
  const double left = 72, right = c.width - 24, top = 56, bottom = c.height - 48;
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  size_t shown = 0;
  for (const auto& s : c.series) {
    for (const auto& p : s.points) {
      if (!finite_point(p)) continue;
      xmin = std::min(xmin, p.first), xmax = std::max(xmax, p.first);
      ymin = std::min(ymin, p.second), ymax = std::max(ymax, p.second);
      ++shown;
    }
  }
  if (c.y_from_zero && shown) ymin = std::min(ymin, 0.0), ymax = std::max(ymax, 0.0);
  if (shown && std::isfinite(c.x_min)) xmin = std::min(xmin, c.x_min);
  if (shown && std::isfinite(c.x_max)) xmax = std::max(xmax, c.x_max);
  std::string o;
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" + std::to_string(c.width) + "\" height=\"" +
       std::to_string(c.height) + "\" viewBox=\"0 0 " + std::to_string(c.width) + " " + std::to_string(c.height) +
       "\" role=\"img\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<title>" + xml_escape(c.title) + "</title>\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  o += "<text class=\"title\" x=\"" + num(left) + "\" y=\"20\" font-size=\"15\" font-weight=\"bold\">" + xml_escape(c.title) +
       "</text>\n";
  // Legend: one row under the title.
  double lx = left;
  for (const auto& s : c.series) {
    o += "<g class=\"legend-entry\"><line x1=\"" + num(lx) + "\" y1=\"36\" x2=\"" + num(lx + 22) + "\" y2=\"36\" stroke=\"" +
         xml_escape(s.color) + "\" stroke-width=\"3\" opacity=\"" + num(std::max(s.opacity, 0.5)) + "\"/><text x=\"" +
         num(lx + 28) + "\" y=\"40\">" + xml_escape(s.name) + "</text></g>\n";
    lx += 28 + 7.0 * static_cast<double>(s.name.size()) + 24;
  }
  if (!shown) {
    o += "<text class=\"no-data\" x=\"" + num((left + right) / 2) + "\" y=\"" + num((top + bottom) / 2) +
         "\" text-anchor=\"middle\" fill=\"#666666\">no data recorded</text>\n</svg>\n";
    return o;
  }
  const std::vector<double> xt = nice_ticks(xmin, xmax, 6), yt = nice_ticks(ymin, ymax, 5);
  const double x0 = xt.front(), x1 = xt.back(), y0 = yt.front(), y1 = yt.back();
  auto X = [&](double x) { return left + (right - left) * (x - x0) / (x1 - x0); };
  auto Y = [&](double y) { return bottom - (bottom - top) * (y - y0) / (y1 - y0); };
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1, ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  o += "<g class=\"grid\" stroke=\"#e0e0e0\" stroke-width=\"1\">\n";
  for (double t : xt) o += "<line x1=\"" + num(X(t)) + "\" y1=\"" + num(top) + "\" x2=\"" + num(X(t)) + "\" y2=\"" + num(bottom) + "\"/>\n";
  for (double t : yt) o += "<line x1=\"" + num(left) + "\" y1=\"" + num(Y(t)) + "\" x2=\"" + num(right) + "\" y2=\"" + num(Y(t)) + "\"/>\n";
  o += "</g>\n";
  o += "<g class=\"axes\" stroke=\"#333333\" stroke-width=\"1\"><line x1=\"" + num(left) + "\" y1=\"" + num(bottom) + "\" x2=\"" +
       num(right) + "\" y2=\"" + num(bottom) + "\"/><line x1=\"" + num(left) + "\" y1=\"" + num(top) + "\" x2=\"" + num(left) +
       "\" y2=\"" + num(bottom) + "\"/></g>\n";
  for (double t : xt)
    o += "<text class=\"tick x-tick\" x=\"" + num(X(t)) + "\" y=\"" + num(bottom + 16) + "\" text-anchor=\"middle\">" +
         xml_escape(format_tick(t, xstep)) + "</text>\n";
  for (double t : yt)
    o += "<text class=\"tick y-tick\" x=\"" + num(left - 6) + "\" y=\"" + num(Y(t) + 4) + "\" text-anchor=\"end\">" +
         xml_escape(format_tick(t, ystep)) + "</text>\n";
  o += "<text class=\"axis-label x-label\" x=\"" + num((left + right) / 2) + "\" y=\"" + num(c.height - 10.0) +
       "\" text-anchor=\"middle\">" + xml_escape(c.x_label) + "</text>\n";
  o += "<text class=\"axis-label y-label\" transform=\"translate(16 " + num((top + bottom) / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">" + xml_escape(c.y_label) + "</text>\n";
  for (const auto& s : c.series) {
    std::string pts;
    size_t n = 0;
    for (const auto& p : s.points) {
      if (!finite_point(p)) continue;
      if (n++) pts += ' ';
      pts += num(X(p.first));
      pts += ',';
      pts += num(Y(p.second));
    }
    const std::string attrs = "class=\"series\" data-series=\"" + xml_escape(s.name) + "\" data-points=\"" + std::to_string(n) + "\"";
    o += "<g " + attrs + ">";
    if (n >= 2)
      o += "<polyline fill=\"none\" stroke=\"" + xml_escape(s.color) + "\" stroke-width=\"" + num(s.stroke_width) +
           "\" stroke-linejoin=\"round\" opacity=\"" + num(s.opacity) + "\" points=\"" + pts + "\"/>";
    if (s.markers || n < 2) {
      for (const auto& p : s.points) {
        if (finite_point(p))
          o += "<circle cx=\"" + num(X(p.first)) + "\" cy=\"" + num(Y(p.second)) + "\" r=\"3.5\" fill=\"" + xml_escape(s.color) + "\"/>";
      }
    }
    o += "</g>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace m4
