// The task's metric on a dataset split: predictions from a TaskModel, scored
// with the task's metric (accuracy, macro-F1, BLEU, WER).
#pragma once

#include <cstdint>
#include <string>

#include "data/dataset_reader.h"
#include "task/task_model.h"

namespace m4 {

struct EvalResult {
  std::string metric;  // canonical name, e.g. "accuracy"
  double value = 0;
  int64_t samples = 0;
};

// Evaluates the first `limit` samples (0: all) in file order, `batch` at a time.
EvalResult evaluate(TaskModel& model, const std::shared_ptr<data::DatasetReader>& reader, int64_t limit = 0,
                    int64_t batch = 16);

}  // namespace m4
