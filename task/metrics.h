// Task metrics for mAIBench (accuracy, macro-F1, sacreBLEU-compatible corpus
// BLEU, corpus WER, recall@k, SQuAD token F1, MAE), plus metric-name parsing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace m4 {

enum class MetricKind { kAccuracy, kMacroF1, kBleu, kWer, kRecallAtK, kTokenF1, kMae };

struct MetricSpec {
  MetricKind kind = MetricKind::kAccuracy;
  int64_t k = 0;  // recall@k only
  std::string name() const;  // canonical spelling, e.g. "recall@5"
  bool higher_is_better() const { return kind != MetricKind::kWer && kind != MetricKind::kMae; }
};

// "accuracy", "macro_f1", "bleu", "wer", "recall@K" (K >= 1), "token_f1", "mae".
// Returns false (and leaves *out alone) for anything else.
bool parse_metric(const std::string& name, MetricSpec* out);
const char* known_metrics();  // for error messages

// Scales: every metric is a fraction (accuracy 0.87, WER 0.0316) except BLEU,
// which keeps sacreBLEU's 0..100 scale so numbers compare 1:1 with its output.

// Fraction of preds[i] == refs[i]. Sizes must match and be non-zero.
double accuracy(const std::vector<int64_t>& preds, const std::vector<int64_t>& refs);

// sklearn f1_score(average='macro', zero_division=0): unweighted mean of per-label
// F1 over every label present in refs OR preds (so a prediction of an unseen
// label, e.g. -1 "no label matched", counts as a class with F1 0).
double macro_f1(const std::vector<int64_t>& preds, const std::vector<int64_t>& refs);

// sacreBLEU's 13a tokenizer (mteval-v13a), exactly as sacrebleu.tokenizers.tokenizer_13a.
std::string tokenize_13a(const std::string& line);

struct BleuStats {
  double score = 0;                 // 0..100
  std::vector<double> precisions;   // 4 values, 0..100 (after smoothing)
  std::vector<int64_t> correct, total;
  double bp = 0;
  int64_t sys_len = 0, ref_len = 0;
};
// sacreBLEU corpus_score defaults: 13a, 4-gram, case-sensitive, smooth_method='exp',
// effective order off, closest reference length (shorter on ties).
// refs[s][i] is reference stream s for hypothesis i (sacreBLEU's layout).
BleuStats corpus_bleu_stats(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs);
double corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs);
double corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs);  // one stream

// Corpus WER: total word-level Levenshtein edits / total reference words.
// Words are whitespace-separated and compared exactly (normalise beforehand).
double wer(const std::vector<std::string>& hyps, const std::vector<std::string>& refs);
int64_t word_edit_distance(const std::vector<std::string>& a, const std::vector<std::string>& b);

// scores: row-major (n_queries, n_items); correct[q] = the right item of query q.
// Rank of the right item = 1 + number of OTHER items scoring >= it (ties count
// against the query, so a constant scorer is not rewarded). Fraction with rank <= k.
double recall_at_k(const std::vector<float>& scores, int64_t n_queries, int64_t n_items,
                   const std::vector<int64_t>& correct, int64_t k);

// SQuAD v2 token F1 averaged over examples (lower-case, strip punctuation and
// a/an/the; both empty = 1).
double token_f1(const std::vector<std::string>& preds, const std::vector<std::string>& refs);

// Mean absolute error (counting).
double mae(const std::vector<double>& preds, const std::vector<double>& refs);

}  // namespace m4
