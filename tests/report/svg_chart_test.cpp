// The chart renderer: round ticks that cover the data, labels at the precision
// the step needs, every series drawn (non-finite points skipped), text escaped.
#include "report/svg_chart.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace m4 {
namespace {

int count(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

TEST(NiceTicks, CoverTheRangeInRoundSteps) {
  struct Case {
    double lo, hi, step;
  } cases[] = {{0, 150, 50}, {2.13, 3.07, 0.25}, {0, 1e-3, 2.5e-4}, {0.0977, 0.1588, 0.02}, {-3, 7, 2.5}, {0, 11, 5}, {100, 100000, 25000}};
  for (const auto& c : cases) {
    const std::vector<double> t = nice_ticks(c.lo, c.hi, 5);
    ASSERT_GE(t.size(), 2u) << c.lo << ".." << c.hi;
    EXPECT_LE(t.front(), c.lo) << c.lo << ".." << c.hi;
    EXPECT_GE(t.back(), c.hi - 1e-12) << c.lo << ".." << c.hi;
    EXPECT_NEAR(t[1] - t[0], c.step, c.step * 1e-9) << c.lo << ".." << c.hi;
    EXPECT_LE(t.size(), 9u) << c.lo << ".." << c.hi;
  }
  // One value, reversed bounds and non-finite input still give a usable axis.
  const auto one = nice_ticks(2.5, 2.5);
  EXPECT_LT(one.front(), 2.5);
  EXPECT_GT(one.back(), 2.5);
  EXPECT_EQ(nice_ticks(10, 0).front(), 0);
  EXPECT_EQ(nice_ticks(0, std::numeric_limits<double>::infinity()).size(), 2u);
  for (double v : nice_ticks(-1, 1)) EXPECT_FALSE(std::signbit(v) && v == 0) << "a -0 tick";
}

TEST(FormatTick, PrecisionFollowsTheStep) {
  EXPECT_EQ(format_tick(150, 25), "150");
  EXPECT_EQ(format_tick(2.4, 0.2), "2.4");
  EXPECT_EQ(format_tick(0.25, 0.25), "0.25");
  EXPECT_EQ(format_tick(0.12, 0.01), "0.12");
  EXPECT_EQ(format_tick(0, 0.01), "0");
  EXPECT_EQ(format_tick(5e-4, 2.5e-4), "5e-4");
  EXPECT_EQ(format_tick(7.5e-4, 2.5e-4), "7.5e-4");
  EXPECT_EQ(format_tick(3e6, 1e6), "3e6");
}

TEST(RenderSvg, TitleAxesLegendAndEverySeries) {
  Chart c;
  c.title = "Training loss";
  c.x_label = "step";
  c.y_label = "cross-entropy (nats)";
  c.series.push_back({"raw", {{1, 2.5}, {2, 2.4}, {3, std::nan("")}, {4, 2.2}}, "#111111"});
  c.series.push_back({"one point", {{4, 2.3}}, "#222222"});
  const std::string svg = render_svg(c);
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find(">Training loss</text>"), std::string::npos);
  EXPECT_NE(svg.find(">step</text>"), std::string::npos);
  EXPECT_NE(svg.find(">cross-entropy (nats)</text>"), std::string::npos);
  EXPECT_NE(svg.find("data-series=\"raw\" data-points=\"3\""), std::string::npos) << "the NaN point is skipped";
  EXPECT_NE(svg.find("data-series=\"one point\" data-points=\"1\""), std::string::npos);
  EXPECT_EQ(count(svg, "<polyline"), 1) << "one line for the series with points to join";
  EXPECT_EQ(count(svg, "<circle"), 1) << "a lone point gets a marker";
  EXPECT_EQ(count(svg, "class=\"legend-entry\""), 2);
  EXPECT_GE(count(svg, "class=\"tick x-tick\""), 3);
  EXPECT_GE(count(svg, "class=\"tick y-tick\""), 3);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(RenderSvg, AGivenXRangeIsIncluded) {
  Chart c;
  c.series.push_back({"eval", {{50, 0.1}, {150, 0.16}}, "#333333"});
  EXPECT_EQ(render_svg(c).find("text-anchor=\"middle\">0</text>"), std::string::npos) << "the data alone start at 40";
  c.x_min = 0;
  c.x_max = 200;
  const std::string svg = render_svg(c);
  EXPECT_NE(svg.find("class=\"tick x-tick\" x=\"72.0\" y=\"288.0\" text-anchor=\"middle\">0</text>"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">200</text>"), std::string::npos);
}

TEST(RenderSvg, NoDataSaysSo) {
  Chart c;
  c.title = "Evaluation";
  c.series.push_back({"accuracy", {}, "#333333"});
  const std::string svg = render_svg(c);
  EXPECT_NE(svg.find("no data recorded"), std::string::npos);
  EXPECT_EQ(svg.find("<polyline"), std::string::npos);
}

TEST(RenderSvg, TextIsEscaped) {
  Chart c;
  c.title = "</title><script>alert(1)</script>";
  c.series.push_back({"a\"b<c>&", {{0, 1}, {1, 2}}, "red\"/><script>"});
  const std::string svg = render_svg(c);
  EXPECT_EQ(svg.find("<script"), std::string::npos);
  EXPECT_NE(svg.find("&lt;/title&gt;&lt;script&gt;"), std::string::npos);
  EXPECT_NE(svg.find("data-series=\"a&quot;b&lt;c&gt;&amp;\""), std::string::npos);
}

TEST(ThinPoints, KeepsEndsAndBound) {
  std::vector<std::pair<double, double>> pts;
  for (int i = 0; i < 10001; ++i) pts.emplace_back(i, i * 0.5);
  const auto t = thin_points(pts, 2000);
  ASSERT_EQ(t.size(), 2000u);
  EXPECT_EQ(t.front().first, 0);
  EXPECT_EQ(t.back().first, 10000);
  EXPECT_EQ(thin_points(pts, 20000).size(), pts.size());
}

TEST(EmaSmooth, DebiasedLikeTensorBoard) {
  const auto s = ema_smooth({{1, 4}, {2, 2}, {3, std::nan("")}, {4, 2}}, 0.5);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_DOUBLE_EQ(s[0].second, 4);             // the first value itself, not 4 * 0.5
  EXPECT_DOUBLE_EQ(s[1].second, (0.5 * 4 * 0.5 + 0.5 * 2) / 0.75);  // (0.25*4 + 0.5*2) / (1 - 0.25)
  EXPECT_LT(s[2].second, s[1].second);
  EXPECT_GT(s[2].second, 2);
}

}  // namespace
}  // namespace m4
