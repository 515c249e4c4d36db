// Task metrics. BLEU follows sacrebleu 2.x (metrics/bleu.py compute_bleu,
// tokenizers/tokenizer_13a.py + tokenizer_re.py); macro-F1 follows sklearn.
#include "task/metrics.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <map>

#include "core/error.h"

namespace m4 {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
// Python's str.split() whitespace, restricted to single bytes (the rest of its
// set is non-ASCII and never appears in tokenizer-relevant positions).
bool is_space(unsigned char c) { return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f); }

std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    const size_t b = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    if (i > b) out.push_back(s.substr(b, i - b));
  }
  return out;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

void check_sizes(size_t a, size_t b, const char* what) {
  M4_CHECK(a == b, ErrorCode::kInvalidArgument, what, ": ", a, " predictions but ", b, " references");
  M4_CHECK(a > 0, ErrorCode::kInvalidArgument, what, ": no examples");
}

using NgramCounts = std::map<std::vector<std::string>, int64_t>;

NgramCounts ngrams(const std::vector<std::string>& toks, int max_n) {
  NgramCounts c;
  for (int n = 1; n <= max_n; ++n) {
    for (size_t i = 0; i + n <= toks.size(); ++i) ++c[std::vector<std::string>(toks.begin() + i, toks.begin() + i + n)];
  }
  return c;
}

}  // namespace

std::string MetricSpec::name() const {
  switch (kind) {
    case MetricKind::kAccuracy: return "accuracy";
    case MetricKind::kMacroF1: return "macro_f1";
    case MetricKind::kBleu: return "bleu";
    case MetricKind::kWer: return "wer";
    case MetricKind::kRecallAtK: return "recall@" + std::to_string(k);
    case MetricKind::kTokenF1: return "token_f1";
    case MetricKind::kMae: return "mae";
  }
  return "?";
}

bool parse_metric(const std::string& name, MetricSpec* out) {
  static const std::map<std::string, MetricKind> kPlain = {
      {"accuracy", MetricKind::kAccuracy}, {"macro_f1", MetricKind::kMacroF1}, {"bleu", MetricKind::kBleu},
      {"wer", MetricKind::kWer},           {"token_f1", MetricKind::kTokenF1}, {"mae", MetricKind::kMae}};
  if (auto it = kPlain.find(name); it != kPlain.end()) {
    *out = MetricSpec{it->second, 0};
    return true;
  }
  const std::string prefix = "recall@";
  if (name.rfind(prefix, 0) != 0) return false;
  int64_t k = 0;
  const char* b = name.data() + prefix.size();
  const char* e = name.data() + name.size();
  auto [p, ec] = std::from_chars(b, e, k);
  if (ec != std::errc() || p != e || b == e || *b == '+' || k < 1) return false;
  *out = MetricSpec{MetricKind::kRecallAtK, k};
  return true;
}

const char* known_metrics() { return "accuracy, macro_f1, bleu, wer, recall@K (K >= 1), token_f1, mae"; }

double accuracy(const std::vector<int64_t>& preds, const std::vector<int64_t>& refs) {
  check_sizes(preds.size(), refs.size(), "accuracy");
  int64_t hit = 0;
  for (size_t i = 0; i < preds.size(); ++i) hit += preds[i] == refs[i];
  return static_cast<double>(hit) / static_cast<double>(preds.size());
}

double macro_f1(const std::vector<int64_t>& preds, const std::vector<int64_t>& refs) {
  check_sizes(preds.size(), refs.size(), "macro_f1");
  std::map<int64_t, std::array<int64_t, 3>> c;  // label -> tp, fp, fn
  for (size_t i = 0; i < preds.size(); ++i) {
    if (preds[i] == refs[i]) {
      ++c[preds[i]][0];
    } else {
      ++c[preds[i]][1];
      ++c[refs[i]][2];
    }
  }
  double sum = 0;
  for (const auto& [label, v] : c) {
    // 2tp / (2tp + fp + fn) equals 2PR/(P+R), and gives 0 where sklearn's
    // zero_division=0 would (tp = 0).
    const double denom = static_cast<double>(2 * v[0] + v[1] + v[2]);
    sum += denom > 0 ? 2.0 * static_cast<double>(v[0]) / denom : 0.0;
  }
  return sum / static_cast<double>(c.size());
}

std::string tokenize_13a(const std::string& input) {
  // Tokenizer13a.__call__: language-independent clean-up.
  std::string line = input;
  replace_all(line, "<skipped>", "");
  replace_all(line, "-\n", "");
  replace_all(line, "\n", " ");
  if (line.find('&') != std::string::npos) {
    replace_all(line, "&quot;", "\"");
    replace_all(line, "&amp;", "&");
    replace_all(line, "&lt;", "<");
    replace_all(line, "&gt;", ">");
  }
  line = " " + line + " ";
  // TokenizerRegexp rule 1: r'([\{-\~\[-\` -\&\(-\+\:-\@\/])' -> r' \1 '
  // i.e. { | } ~  [ \ ] ^ _ `  space ! " # $ % &  ( ) * +  : ; < = > ? @  /
  std::string s;
  s.reserve(line.size() * 2);
  for (char ch : line) {
    const unsigned char c = static_cast<unsigned char>(ch);
    const bool sym = (c >= 0x7b && c <= 0x7e) || (c >= 0x5b && c <= 0x60) || (c >= 0x20 && c <= 0x26) ||
                     (c >= 0x28 && c <= 0x2b) || (c >= 0x3a && c <= 0x40) || c == '/';
    if (sym) {
      s += ' ';
      s += ch;
      s += ' ';
    } else {
      s += ch;
    }
  }
  // Rules 2-4 emulate re.sub's left-to-right, non-overlapping matching. Working
  // on bytes is equivalent: UTF-8 continuation bytes are never digits, '.', ',' or '-'.
  auto sub2 = [](const std::string& in, auto match, auto emit) {
    std::string out;
    out.reserve(in.size() + 16);
    size_t i = 0;
    while (i < in.size()) {
      if (i + 1 < in.size() && match(in[i], in[i + 1])) {
        emit(out, in[i], in[i + 1]);
        i += 2;
      } else {
        out += in[i++];
      }
    }
    return out;
  };
  // r'([^0-9])([\.,])' -> r'\1 \2 '
  s = sub2(s, [](char a, char b) { return !is_digit(a) && (b == '.' || b == ','); },
           [](std::string& o, char a, char b) { o += a; o += ' '; o += b; o += ' '; });
  // r'([\.,])([^0-9])' -> r' \1 \2'
  s = sub2(s, [](char a, char b) { return (a == '.' || a == ',') && !is_digit(b); },
           [](std::string& o, char a, char b) { o += ' '; o += a; o += ' '; o += b; });
  // r'([0-9])(-)' -> r'\1 \2 '
  s = sub2(s, [](char a, char b) { return is_digit(a) && b == '-'; },
           [](std::string& o, char a, char b) { o += a; o += ' '; o += b; o += ' '; });
  const auto toks = split_ws(s);
  std::string out;
  for (size_t i = 0; i < toks.size(); ++i) out += (i ? " " : "") + toks[i];
  return out;
}

BleuStats corpus_bleu_stats(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs) {
  constexpr int kOrder = 4;
  M4_CHECK(!refs.empty(), ErrorCode::kInvalidArgument, "bleu: no reference streams");
  for (size_t s = 0; s < refs.size(); ++s) {
    M4_CHECK(refs[s].size() == hyps.size(), ErrorCode::kInvalidArgument, "bleu: reference stream ", s, " has ",
             refs[s].size(), " sentences but there are ", hyps.size(), " hypotheses");
  }
  M4_CHECK(!hyps.empty(), ErrorCode::kInvalidArgument, "bleu: no examples");
  BleuStats st;
  st.correct.assign(kOrder, 0);
  st.total.assign(kOrder, 0);
  st.precisions.assign(kOrder, 0.0);
  for (size_t i = 0; i < hyps.size(); ++i) {
    const auto hyp = split_ws(tokenize_13a(hyps[i]));
    const int64_t hyp_len = static_cast<int64_t>(hyp.size());
    // Max count of each n-gram over the references; closest reference length.
    NgramCounts ref_max;
    int64_t closest_len = -1, closest_diff = -1;
    for (const auto& stream : refs) {
      const auto ref = split_ws(tokenize_13a(stream[i]));
      const int64_t len = static_cast<int64_t>(ref.size());
      const int64_t diff = std::llabs(hyp_len - len);
      if (closest_diff < 0 || diff < closest_diff) {
        closest_diff = diff;
        closest_len = len;
      } else if (diff == closest_diff) {
        closest_len = std::min(closest_len, len);
      }
      for (const auto& [g, n] : ngrams(ref, kOrder)) ref_max[g] = std::max(ref_max[g], n);
    }
    st.sys_len += hyp_len;
    st.ref_len += closest_len;
    for (const auto& [g, n] : ngrams(hyp, kOrder)) {
      const size_t o = g.size() - 1;
      st.total[o] += n;
      auto it = ref_max.find(g);
      if (it != ref_max.end()) st.correct[o] += std::min(n, it->second);
    }
  }
  // compute_bleu(smooth_method='exp', effective_order=False).
  st.bp = st.sys_len < st.ref_len
              ? (st.sys_len > 0 ? std::exp(1.0 - static_cast<double>(st.ref_len) / static_cast<double>(st.sys_len)) : 0.0)
              : 1.0;
  if (std::all_of(st.correct.begin(), st.correct.end(), [](int64_t c) { return c == 0; })) {
    st.score = 0.0;
    return st;
  }
  double smooth = 1.0;
  for (int n = 0; n < kOrder; ++n) {
    if (st.total[n] == 0) break;
    if (st.correct[n] == 0) {
      smooth *= 2;
      st.precisions[n] = 100.0 / (smooth * static_cast<double>(st.total[n]));
    } else {
      st.precisions[n] = 100.0 * static_cast<double>(st.correct[n]) / static_cast<double>(st.total[n]);
    }
  }
  double log_sum = 0;
  // sacrebleu's my_log(0) = -9999999999: an order with no hypothesis n-grams zeroes the score.
  for (double p : st.precisions) log_sum += p > 0 ? std::log(p) : -9999999999.0;
  st.score = st.bp * std::exp(log_sum / kOrder);
  return st;
}

double corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs) {
  return corpus_bleu_stats(hyps, refs).score;
}

double corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs) {
  return corpus_bleu_stats(hyps, {refs}).score;
}

int64_t word_edit_distance(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<int64_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

double wer(const std::vector<std::string>& hyps, const std::vector<std::string>& refs) {
  check_sizes(hyps.size(), refs.size(), "wer");
  int64_t edits = 0, words = 0;
  for (size_t i = 0; i < hyps.size(); ++i) {
    const auto r = split_ws(refs[i]);
    edits += word_edit_distance(split_ws(hyps[i]), r);
    words += static_cast<int64_t>(r.size());
  }
  M4_CHECK(words > 0, ErrorCode::kInvalidArgument, "wer: the references have no words");
  return static_cast<double>(edits) / static_cast<double>(words);
}

double recall_at_k(const std::vector<float>& scores, int64_t n_queries, int64_t n_items,
                   const std::vector<int64_t>& correct, int64_t k) {
  M4_CHECK(n_queries > 0 && n_items > 0, ErrorCode::kInvalidArgument, "recall@", k, ": empty score matrix (",
           n_queries, " x ", n_items, ")");
  M4_CHECK(static_cast<int64_t>(scores.size()) == n_queries * n_items, ErrorCode::kInvalidArgument, "recall@", k,
           ": ", scores.size(), " scores for a ", n_queries, " x ", n_items, " matrix");
  M4_CHECK(static_cast<int64_t>(correct.size()) == n_queries, ErrorCode::kInvalidArgument, "recall@", k, ": ",
           correct.size(), " correct items for ", n_queries, " queries");
  M4_CHECK(k >= 1, ErrorCode::kInvalidArgument, "recall@k: k must be >= 1 (got ", k, ")");
  int64_t hits = 0;
  for (int64_t q = 0; q < n_queries; ++q) {
    const int64_t c = correct[q];
    M4_CHECK(c >= 0 && c < n_items, ErrorCode::kInvalidArgument, "recall@", k, ": query ", q, " has correct item ",
             c, " outside [0, ", n_items, ")");
    const float* row = scores.data() + q * n_items;
    M4_CHECK(!std::isnan(row[c]), ErrorCode::kInvalidArgument, "recall@", k, ": NaN score at query ", q);
    int64_t ahead = 0;
    for (int64_t j = 0; j < n_items; ++j) {
      M4_CHECK(!std::isnan(row[j]), ErrorCode::kInvalidArgument, "recall@", k, ": NaN score at query ", q,
               " item ", j);
      if (j != c && row[j] >= row[c]) ++ahead;
    }
    hits += ahead + 1 <= k;
  }
  return static_cast<double>(hits) / static_cast<double>(n_queries);
}

double token_f1(const std::vector<std::string>& preds, const std::vector<std::string>& refs) {
  check_sizes(preds.size(), refs.size(), "token_f1");
  // SQuAD v2 evaluate script: normalize_answer then get_tokens.
  auto tokens = [](const std::string& s) {
    std::string t;
    for (unsigned char c : s) {
      const bool punct = (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) ||
                         (c >= 0x7b && c <= 0x7e);
      if (punct) continue;
      t += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c);
    }
    std::vector<std::string> out;
    for (auto& w : split_ws(t)) {
      if (w != "a" && w != "an" && w != "the") out.push_back(std::move(w));
    }
    return out;
  };
  double sum = 0;
  for (size_t i = 0; i < preds.size(); ++i) {
    const auto p = tokens(preds[i]);
    const auto r = tokens(refs[i]);
    if (p.empty() || r.empty()) {
      sum += p.empty() && r.empty() ? 1.0 : 0.0;
      continue;
    }
    std::map<std::string, int64_t> rc;
    for (const auto& w : r) ++rc[w];
    int64_t common = 0;
    for (const auto& w : p) {
      auto it = rc.find(w);
      if (it != rc.end() && it->second > 0) {
        --it->second;
        ++common;
      }
    }
    if (common == 0) continue;
    const double prec = static_cast<double>(common) / static_cast<double>(p.size());
    const double rec = static_cast<double>(common) / static_cast<double>(r.size());
    sum += 2 * prec * rec / (prec + rec);
  }
  return sum / static_cast<double>(preds.size());
}

double mae(const std::vector<double>& preds, const std::vector<double>& refs) {
  check_sizes(preds.size(), refs.size(), "mae");
  double s = 0;
  for (size_t i = 0; i < preds.size(); ++i) s += std::fabs(preds[i] - refs[i]);
  return s / static_cast<double>(preds.size());
}

}  // namespace m4
