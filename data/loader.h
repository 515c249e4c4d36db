// The training data loader: a seeded per-epoch permutation of the (few-shot)
// subset, split into global batches of batch_size x world; rank r reads only
// its samples r, r+world, ... of each global batch, by hyperslab; optional
// background prefetch; a saveable (epoch, index) cursor.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/few_shot.h"

namespace m4::data {

class DatasetReader;

struct LoaderOptions {
  int64_t batch_size = 32;  // per rank
  int64_t rank = 0;
  int64_t world = 1;
  uint64_t seed = 0;
  bool shuffle = true;     // false: file order (e.g. evaluation)
  bool drop_last = true;   // false: the last global batch may be short, and uneven across ranks
  int64_t prefetch = 0;    // batches read ahead on a background thread; 0 = read inside next()
  std::vector<std::string> fields;  // datasets to read; empty = all of them
  FewShotOptions few_shot;
  // Tensors in page-locked memory (read ahead: on the prefetch thread), so a
  // CUDA run copies them to the device asynchronously. Needs a CUDA LibTorch.
  bool pin_memory = false;
};

// Where a loader stands: the next batch is global batch `index` of `epoch`.
// Saving it with a checkpoint and passing it back resumes the same sequence.
struct LoaderState {
  int64_t epoch = 0;
  int64_t index = 0;
  bool operator==(const LoaderState& o) const { return epoch == o.epoch && index == o.index; }
};

// One rank's share of one global batch.
struct Batch {
  int64_t epoch = 0, index = 0;
  std::vector<int64_t> indices;  // file sample indices, in batch order
  std::map<std::string, at::Tensor> tensors;              // e.g. image (B,C,H,W) uint8, label (B) int64
  std::map<std::string, std::vector<std::string>> texts;  // text, target_text
  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

// The batch's tensors on `device` (texts stay on the host); the same batch
// when they are there already. Pinned tensors copy asynchronously.
Batch to_device(const Batch& batch, c10::Device device);

class Loader {
 public:
  Loader(std::shared_ptr<const DatasetReader> reader, LoaderOptions options, LoaderState start = {});
  ~Loader();  // stops and joins the prefetch thread
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch of this epoch, or nullopt at the end of the epoch (the call
  // after that starts the next epoch). A read error on the prefetch thread is
  // rethrown here, in order.
  std::optional<Batch> next();
  // The position of the batch next() returns next.
  LoaderState state() const;

  int64_t batches_per_epoch() const;
  const std::vector<int64_t>& subset() const;  // the samples in play (ascending)
  // The global order of `epoch` (file indices, before splitting into batches).
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  const LoaderOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace m4::data
