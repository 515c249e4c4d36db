// The from-scratch baseline of `m4forge eval --from-scratch`: a small
// task-specific model ("TS-model", the comparison in the M4 paper, MobiCom'24)
// trained from random init on the task's training split, then scored with the
// task's metric on its test split. The model is chosen by the data's inputs.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "task/evaluate.h"

namespace m4 {

struct TaskConfig;
namespace data {
class DatasetReader;
}

struct ScratchOptions {
  int64_t steps = 0;            // optimizer steps; 0: the task's train.steps
  int64_t batch_size = 0;       // 0: the task's train.batch_size
  double lr = 0;                // peak learning rate; 0: the model's default (CNNs 1e-2, n-gram bag 1e-1, GRU 3e-3)
  std::optional<int64_t> seed;  // init and data order; unset: the task's train.seed
  int64_t eval_limit = 0;       // first N test samples in file order (0: all)
};

struct ScratchResult : EvalResult {
  std::string model;       // short description, e.g. "cnn 2x conv3x3 (32, 64) on 1x28x28, 29k params"
  int64_t parameters = 0;  // all of them trained
  int64_t steps = 0;
  double lr = 0;               // the peak learning rate used
  std::vector<double> losses;  // training loss of every step
};

// Picks the model by the training split's datasets (all with `label` unless noted):
//   image (N,C,H,W)       -> 2-layer CNN on [0,1] pixels, downscaled to fit 32x32
//   audio (N,T)           -> log-mel (40 bands, firmware/log_mel.h) -> 2-layer CNN
//   imu (N,T,6)           -> 2-layer 1-D CNN over time on standardised axes
//   text                  -> fastText-like: hashed word uni+bigrams -> mean bag -> linear
//   text + target_text    -> word-level GRU encoder-decoder with dot attention, greedy
//                            decoding (no label; for BLEU/WER tasks)
// trains every parameter with AdamW (the task's betas, eps, weight decay, clipping
// and schedule; warmup capped at a tenth of the steps; the n-gram table lazily,
// only the rows a batch touches), and evaluates with the task's metric. Same seed, same
// result. Any other combination of data and metric is one m4::Error(kMismatch)
// naming the task and saying that no from-scratch baseline exists for it.
ScratchResult train_scratch_baseline(const TaskConfig& task, const std::shared_ptr<data::DatasetReader>& train,
                                     const std::shared_ptr<data::DatasetReader>& test, const ScratchOptions& options);

}  // namespace m4
