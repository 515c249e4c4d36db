// A task's model on a firmware: only the modules its path names are loaded,
// the adapter is attached to them, and the prompt template builds the inputs.
// It gives the loss a batch trains with and the predictions an evaluation or
// `m4forge run` makes (paper §3.3 paths 1-3).
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset_reader.h"
#include "data/loader.h"
#include "firmware/firmware.h"
#include "firmware/module_loader.h"
#include "peft/adapter.h"
#include "prompts/prompt_template.h"
#include "task/task_config.h"

namespace m4 {

using data::Batch;

struct Prediction {
  int64_t label = -1;         // classification: the label id; -1 when the answer maps to none
  std::string text;           // generation: the generated text (classification: the label text)
  std::vector<float> scores;  // classification: one score per label (logits or cosine logits)
};

class TaskModel {
 public:
  // `label_names`: the dataset's label names (may be empty for generation);
  // the verbalizer is prompt.labels_for(label_names). `adapter_file`, when
  // given, is loaded fail-closed (training's peft.init_from, or a bundle's).
  // With `modules`, the firmware modules come from that resident cache (its
  // firmware must be `fw`) instead of being loaded for this model alone.
  TaskModel(const Firmware& fw, const TaskConfig& task, PromptTemplate prompt, std::vector<std::string> label_names,
            const std::filesystem::path& adapter_file = {}, ModuleCache* modules = nullptr);
  ~TaskModel();

  Adapter& adapter();
  const TaskConfig& task() const;
  const std::vector<std::string>& labels() const;  // verbalizer texts, label id order
  int64_t max_new_tokens() const;                  // generation: greedy decoding's token budget

  // The training loss of a batch (adapter in train mode): classification
  // cross-entropy (Path-2: cosine logits with temperature), causal-LM
  // cross-entropy on target tokens only (generation).
  at::Tensor loss(const Batch& batch);
  // Predictions (no grad, eval mode). Not for retrieval tasks.
  std::vector<Prediction> predict(const Batch& batch);
  // train.precision bf16: the frozen Linear weights of the model's modules get
  // bf16 copies once (firmware/linear.h), used under bf16 autocast only.
  // Returns the bytes the copies take.
  int64_t keep_bf16_weights();
  // Moves the model's modules and its adapter to `device` (train.device):
  // call before an optimizer takes the adapter's tensors, and before
  // keep_bf16_weights. Batches given to loss/predict/probe are moved to it
  // there; probe's output and predictions come back on the CPU. Modules from
  // a shared ModuleCache move for every model that uses them.
  void to(c10::Device device);
  c10::Device device() const;

  // Path-2 retrieval (a template without labels): row i's text (the [E]
  // segments) is a query whose right item is row i's input. Training uses the
  // symmetric contrastive loss over the batch; evaluation ranks every item for
  // every query by the cosine of these embeddings (queries, items).
  bool retrieval() const;

  // The canary (export/canary.h): `n` probe inputs of the task's modality,
  // seeded (image (n,3,32,32) uint8, audio (n,16000) f32, imu (n,200,6) f32,
  // a text for every template variable, or input_ids when the backbone has
  // no tokenizer), and the model's numeric output on them (no grad, eval mode):
  // retrieval: (n, n) query-item cosine logits; Path-2: (n, labels) cosine
  // logits; a classifier head: its (n, labels) logits; otherwise the (n, vocab)
  // next-token logits at the end of the prompt, through the whole path.
  Batch probe_inputs(int64_t n, uint64_t seed) const;
  at::Tensor probe(const Batch& batch);
  std::string probe_output() const;  // which of those, in words

  // The dataset fields a split must hold for this model (label for
  // classification, the input encoder's modality, target_text for generation).
  std::vector<std::string> dataset_fields() const;
  std::pair<at::Tensor, at::Tensor> retrieval_embeddings(const Batch& batch);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Refuses a split that lacks a field the model reads, naming the file, the
// field and what the file has, before any batch is read.
void check_dataset_fields(const TaskModel& model, const data::DatasetReader& split, bool training);

}  // namespace m4
