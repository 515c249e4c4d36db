// The task side of M4's execution paths: path modules, Path-2 cosine logits, label templates.
#include "task/execution_path.h"

#include <gtest/gtest.h>

#include "tests/support/test_util.h"

namespace m4 {
namespace {

TEST(Paths, ModulesPerPath) {
  EXPECT_EQ(path_modules(1, "img_enc"), (std::vector<std::string>{"img_enc", "backbone"}));
  EXPECT_EQ(path_modules(2, "imu_enc"), (std::vector<std::string>{"imu_enc", "txt_enc"}));
  EXPECT_EQ(path_modules(3, ""), (std::vector<std::string>{"backbone"}));
  test::expect_error([] { path_modules(4, "img_enc"); }, {"path 4"});
  test::expect_error([] { path_modules(2, "backbone"); }, {"needs an input encoder", "'backbone'"});
}

TEST(Paths, CosineLogitsAndTemplates) {
  at::Tensor a = at::tensor({3.0f, 4.0f, 0.0f, 0.0f, 2.0f, 0.0f}).view({2, 3});
  at::Tensor b = at::tensor({6.0f, 8.0f, 0.0f, 0.0f, 0.0f, 5.0f, -1.0f, 0.0f, 0.0f}).view({3, 3});
  at::Tensor l = cosine_logits(a, b, 10.0);
  // Independent: cos = dot / (|a| |b|).
  EXPECT_NEAR(l[0][0].item<double>(), 10.0, 1e-5);
  EXPECT_NEAR(l[0][1].item<double>(), 0.0, 1e-5);
  EXPECT_NEAR(l[0][2].item<double>(), -6.0, 1e-5);
  EXPECT_NEAR(l[1][0].item<double>(), 8.0, 1e-5);
  test::expect_error([&] { cosine_logits(a, at::zeros({3, 4})); }, {"projection widths must match"});
  EXPECT_EQ(render_label_template("There is a photo of a {label}.", "cat"), "There is a photo of a cat.");
  test::expect_error([] { render_label_template("A photo.", "cat"); }, {"'A photo.'", "no {label}"});
}

}  // namespace
}  // namespace m4
