// A task's model answers each row of a batch as it answers that row alone:
// left padding never leaks into a row's answer (classifier head, Path-3).
#include "task/task_model.h"

#include <gtest/gtest.h>

#include "data/input_file.h"
#include "firmware/demo.h"
#include "prompts/prompt_template.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

TEST(TaskModel, ABatchAnswersEachRowAsItAnswersItAlone) {
  test::TempDir dir;
  DemoOptions o;
  o.out = dir / "fw";
  init_demo(o);
  const Firmware fw = Firmware::open(dir / "fw");
  const TaskConfig task = load_task_config(test::repo_dir() / "configs" / "tasks" / "text_classification.yaml", {}, test::repo_dir());
  const PromptTemplate prompt = load_prompt_template(test::repo_dir(), task.prompt);
  TaskModel model(fw, task, prompt, prompt.labels);  // a seeded random head: its scores follow the feature it reads
  const std::vector<std::string> texts = {"Stocks fell.",
                                          "The home team won the championship game after a long and exciting season."};
  data::Batch both;
  both.indices = {0, 1};
  both.texts["text"] = texts;
  const std::vector<Prediction> together = model.predict(both);
  ASSERT_EQ(together.size(), 2u);
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<Prediction> alone = model.predict(data::text_input(texts[i]));
    ASSERT_EQ(alone[0].scores.size(), together[i].scores.size());
    double diff = 0;
    for (size_t k = 0; k < alone[0].scores.size(); ++k) diff = std::max(diff, std::abs(double(alone[0].scores[k]) - together[i].scores[k]));
    EXPECT_LT(diff, 1e-5) << "row " << i << " (" << texts[i] << ")";
  }
}

}  // namespace
}  // namespace m4
