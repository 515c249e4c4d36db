// Evaluation loop and metric dispatch.
#include "task/evaluate.h"

#include "core/error.h"
#include "task/execution_path.h"
#include "task/metrics.h"

namespace m4 {

namespace {

// Recall@k of text queries over the items of the same rows (query i's right
// item is item i), every query against every evaluated item.
EvalResult evaluate_retrieval(TaskModel& model, data::Loader& loader, int64_t limit) {
  std::vector<at::Tensor> queries, items;
  int64_t n = 0;
  while (auto b = loader.next()) {
    auto [q, v] = model.retrieval_embeddings(*b);
    queries.push_back(q);
    items.push_back(v);
    n += b->size();
    if (limit > 0 && n >= limit) break;
  }
  EvalResult r;
  r.metric = model.task().metric.name();
  r.samples = n;
  M4_CHECK(n > 0, ErrorCode::kMismatch, "task ", model.task().task, ": no samples to evaluate");
  const at::Tensor scores = cosine_logits(at::cat(queries), at::cat(items), 1.0).contiguous();
  std::vector<float> flat(scores.data_ptr<float>(), scores.data_ptr<float>() + scores.numel());
  std::vector<int64_t> correct(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) correct[static_cast<size_t>(i)] = i;
  r.value = recall_at_k(flat, n, n, correct, model.task().metric.k);
  return r;
}

}  // namespace

EvalResult evaluate(TaskModel& model, const std::shared_ptr<data::DatasetReader>& reader, int64_t limit, int64_t batch) {
  data::LoaderOptions o;
  o.batch_size = batch;
  o.shuffle = false;
  o.drop_last = false;
  check_dataset_fields(model, *reader, /*training=*/false);
  data::Loader loader(reader, o);
  if (model.retrieval()) {
    M4_CHECK(model.task().metric.kind == MetricKind::kRecallAtK, ErrorCode::kMismatch, "task ", model.task().task,
             " is retrieval, so its metric must be recall@k, not ", model.task().metric.name());
    return evaluate_retrieval(model, loader, limit);
  }
  std::vector<int64_t> preds, refs;
  std::vector<std::string> hyps, refs_text;
  int64_t n = 0;
  while (auto b = loader.next()) {
    for (const auto& p : model.predict(*b)) {
      if (!model.labels().empty()) {
        preds.push_back(p.label);
      } else {
        hyps.push_back(p.text);
      }
    }
    if (!model.labels().empty()) {
      const at::Tensor y = b->tensors.at("label");
      for (int64_t i = 0; i < y.size(0); ++i) refs.push_back(y[i].item<int64_t>());
    } else {
      const auto& t = b->texts.at("target_text");
      refs_text.insert(refs_text.end(), t.begin(), t.end());
    }
    n += b->size();
    if (limit > 0 && n >= limit) break;
  }
  EvalResult r;
  r.samples = n;
  const MetricSpec& m = model.task().metric;
  r.metric = m.name();
  switch (m.kind) {
    case MetricKind::kAccuracy: r.value = accuracy(preds, refs); break;
    case MetricKind::kMacroF1: r.value = macro_f1(preds, refs); break;
    case MetricKind::kBleu: r.value = corpus_bleu(hyps, refs_text); break;
    case MetricKind::kWer: r.value = wer(hyps, refs_text); break;
    default: M4_FAIL(ErrorCode::kMismatch, "task ", model.task().task, ": metric ", r.metric, " is not evaluated by m4forge eval yet");
  }
  return r;
}

}  // namespace m4
