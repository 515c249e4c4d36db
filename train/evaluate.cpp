// Evaluation loop and metric dispatch.
#include "train/evaluate.h"

#include "firmware/error.h"
#include "prompts/metrics.h"

namespace m4 {

EvalResult evaluate(TaskModel& model, const std::shared_ptr<data::DatasetReader>& reader, int64_t limit, int64_t batch) {
  data::LoaderOptions o;
  o.batch_size = batch;
  o.shuffle = false;
  o.drop_last = false;
  data::Loader loader(reader, o);
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
