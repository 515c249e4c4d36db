// The report as a person sees it: a real `m4forge train` and `eval --run`,
// then report.html rendered by headless Chromium (Debian's `chromium`): the
// page loads without console errors, its labels and figures are in the DOM,
// the charts have their series, each SVG file parses on its own, and the
// screenshot shows the plotted lines. The same checks catch a broken page.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/png_image.h"
#include "task/run_record.h"
#include "tests/support/cli_test.h"
#include "tests/train/train_test_util.h"

namespace m4::test {
namespace {

namespace fs = std::filesystem;

struct Browser {
  int code = -1;
  std::string out, err;
};

class ReportBrowser : public CliTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(std::system("command -v chromium >/dev/null"), 0)
        << "chromium is not installed (bash scripts/setup-debian.sh installs Debian's chromium)";
  }
  Browser chromium(const std::vector<std::string>& args, const fs::path& page) {
    std::string cmd = "timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --enable-logging=stderr --v=0 "
                      "--user-data-dir=" + quote((tmp_ / "chromium-profile").string());
    for (const auto& a : args) cmd += " " + quote(a);
    cmd += " " + quote("file://" + fs::absolute(page).string());
    const fs::path o = tmp_ / "chromium.out", e = tmp_ / "chromium.err";
    cmd += " >" + quote(o.string()) + " 2>" + quote(e.string());
    const int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128, slurp(o), slurp(e)};
  }
  // What the page itself logged: uncaught exceptions and console messages.
  static std::vector<std::string> page_errors(const Browser& b) {
    std::vector<std::string> out;
    std::istringstream lines(b.err);
    for (std::string line; std::getline(lines, line);) {
      if (line.find(":CONSOLE") != std::string::npos) out.push_back(line);
    }
    return out;
  }
  // Pixels of `png` within `tol` of the colour (r, g, b).
  static int64_t pixels_of(const data::Image& img, int r, int g, int b, int tol = 12) {
    const int64_t plane = img.width * img.height;
    int64_t n = 0;
    for (int64_t i = 0; i < plane; ++i) {
      n += std::abs(img.pixels[i] - r) <= tol && std::abs(img.pixels[plane + i] - g) <= tol &&
           std::abs(img.pixels[2 * plane + i] - b) <= tol;
    }
    return n;
  }
};

TEST_F(ReportBrowser, ATrainedRunsReportRendersWithItsFiguresAndCurves) {
  const TinyTask task = make_tiny_task(tmp_ / "repo", "train: {batch_size: 4, grad_accum: 1, steps: 8, eval_every: 4, seed: 0}");
  const fs::path run = tmp_ / "run";
  const CliRun t = m4({"train", task.config.string(), "--firmware", task.firmware.string(), "--run-dir", run.string()});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.err.find("report: " + (run / "report.html").string()), std::string::npos) << t.err;
  const CliRun e = m4({"eval", "--run", run.string(), "--firmware", task.firmware.string(), "--limit", "6"});
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NE(e.out.find("report: " + (run / "report.html").string()), std::string::npos) << e.out;
  const RunRecord rec = read_run_record(run);
  char final_value[32];
  std::snprintf(final_value, sizeof final_value, "%.4f", rec.metrics.at("accuracy"));

  const Browser dom = chromium({"--dump-dom"}, run / "report.html");
  ASSERT_EQ(dom.code, 0) << dom.err;
  EXPECT_TRUE(page_errors(dom).empty()) << page_errors(dom).front();
  for (const std::string& needle : std::vector<std::string>{"Run report: run", "What was trained", "tiny_images", "Path-2 (img_enc, txt_enc)", "m4-demo",
                                   rec.firmware_id, "<b>lora</b>: alpha=4", "trainable /", "frozen", "adapter.safetensors",
                                   "Evaluation", "training, step 4", "training, step 8", "final evaluation", std::string(final_value),
                                   "zero-shot (no adapter)", "m4forge eval", "Training loss", "Learning rate (cosine)",
                                   "Evaluation on the test split", "Training throughput (mean since the process started)", "cross-entropy (nats)",
                                   "accuracy (fraction)", "samples/s (global batch)", ">step</text>"}) {
    EXPECT_NE(dom.out.find(needle), std::string::npos) << "not in the rendered DOM: " << needle;
  }
  EXPECT_NE(dom.out.find("data-series=\"loss (raw)\" data-points=\"8\""), std::string::npos);
  EXPECT_NE(dom.out.find("data-series=\"loss (smoothed, EMA 0.9)\" data-points=\"8\""), std::string::npos);
  EXPECT_NE(dom.out.find("data-series=\"learning rate\" data-points=\"8\""), std::string::npos);
  EXPECT_NE(dom.out.find("data-series=\"accuracy (adapter)\" data-points=\"2\""), std::string::npos);
  EXPECT_NE(dom.out.find("data-series=\"samples/s\" data-points=\"8\""), std::string::npos);
  // Self-contained: no script, no stylesheet or image fetched.
  EXPECT_EQ(dom.out.find("<script"), std::string::npos);
  EXPECT_EQ(dom.out.find("src="), std::string::npos);
  EXPECT_EQ(dom.out.find("<link"), std::string::npos);

  for (const char* f : {"loss.svg", "lr.svg", "eval.svg", "throughput.svg"}) {
    const Browser svg = chromium({"--dump-dom"}, run / f);
    ASSERT_EQ(svg.code, 0) << f << ": " << svg.err;
    EXPECT_EQ(svg.out.find("parsererror"), std::string::npos) << f << " does not parse as XML:\n" << svg.out.substr(0, 600);
    EXPECT_NE(svg.out.find("class=\"series\""), std::string::npos) << f;
  }

  const fs::path shot = tmp_ / "report.png";
  const Browser s = chromium({"--window-size=1280,1600", "--screenshot=" + shot.string()}, run / "report.html");
  ASSERT_EQ(s.code, 0) << s.err;
  const data::Image img = data::read_png(shot, 3);
  EXPECT_EQ(img.width, 1280);
  EXPECT_EQ(img.height, 1600);
  // The smoothed loss (#08519c) and the learning rate (#2ca02c) were drawn.
  EXPECT_GT(pixels_of(img, 0x08, 0x51, 0x9c), 40);
  EXPECT_GT(pixels_of(img, 0x2c, 0xa0, 0x2c), 40);
  // Text too: dark pixels well beyond the lines'.
  EXPECT_GT(pixels_of(img, 0x22, 0x22, 0x22, 40), 2000);
}

TEST_F(ReportBrowser, TheChecksSeeABrokenPage) {
  // The negative control of the checks above: a page that throws and logs,
  // and an SVG that is not XML, are caught.
  std::ofstream(tmp_ / "bad.html") << "<!DOCTYPE html><html><body><h1>x</h1><script>undefined_function();</script>"
                                      "<script>console.error('boom')</script></body></html>";
  const Browser b = chromium({"--dump-dom"}, tmp_ / "bad.html");
  ASSERT_EQ(b.code, 0) << b.err;
  const auto errors = page_errors(b);
  ASSERT_EQ(errors.size(), 2u) << b.err;
  EXPECT_NE(errors[0].find("undefined_function is not defined"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("boom"), std::string::npos) << errors[1];
  std::ofstream(tmp_ / "bad.svg") << "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"><text>a & b</text></svg>\n";
  const Browser svg = chromium({"--dump-dom"}, tmp_ / "bad.svg");
  EXPECT_NE(svg.out.find("parsererror"), std::string::npos) << svg.out;
}

}  // namespace
}  // namespace m4::test
