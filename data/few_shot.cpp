// Few-shot subset selection (see few_shot.h).
#include "data/few_shot.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "data/shuffle.h"

namespace m4::data {
namespace {

void check_options(const FewShotOptions& o) {
  M4_CHECK(o.fraction > 0.0 && o.fraction <= 1.0, ErrorCode::kInvalidArgument, "few-shot fraction ", o.fraction,
           " is outside (0, 1]");
  M4_CHECK(o.skew >= 0.0 && std::isfinite(o.skew), ErrorCode::kInvalidArgument, "few-shot skew ", o.skew,
           " must be >= 0");
}

}  // namespace

std::vector<int64_t> few_shot_counts(const std::vector<int64_t>& counts, const FewShotOptions& o) {
  check_options(o);
  const size_t c = counts.size();
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  const int64_t present = std::count_if(counts.begin(), counts.end(), [](int64_t n) { return n > 0; });
  const int64_t target = std::clamp<int64_t>(std::llround(o.fraction * static_cast<double>(total)), present, total);
  std::vector<double> weight(c, 0.0);
  std::vector<size_t> order(c);
  std::iota(order.begin(), order.end(), size_t{0});
  if (o.skew > 0.0) {
    Rng rng(mix_seed(o.seed, 0xfeedull));
    shuffle(order, rng);
  }
  for (size_t j = 0; j < c; ++j) {
    const size_t label = order[j];
    weight[label] = static_cast<double>(counts[label]) * std::pow(static_cast<double>(j + 1), -o.skew);
  }
  const double wsum = std::accumulate(weight.begin(), weight.end(), 0.0);
  std::vector<double> quota(c, 0.0);
  std::vector<int64_t> k(c, 0);
  int64_t sum = 0;
  for (size_t i = 0; i < c; ++i) {
    if (counts[i] == 0) continue;
    quota[i] = wsum > 0 ? static_cast<double>(target) * weight[i] / wsum : 0.0;
    k[i] = std::clamp<int64_t>(static_cast<int64_t>(std::floor(quota[i])), 1, counts[i]);
    sum += k[i];
  }
  // Largest remainder, one sample at a time; labels that hit their cap pass
  // their share on to the others.
  while (sum < target) {
    size_t best = c;
    for (size_t i = 0; i < c; ++i) {
      if (k[i] < counts[i] && (best == c || quota[i] - k[i] > quota[best] - k[best])) best = i;
    }
    if (best == c) break;
    ++k[best];
    ++sum;
  }
  while (sum > target) {
    size_t best = c;
    for (size_t i = 0; i < c; ++i) {
      if (k[i] > 1 && (best == c || quota[i] - k[i] < quota[best] - k[best])) best = i;
    }
    if (best == c) break;
    --k[best];
    --sum;
  }
  return k;
}

std::vector<int64_t> few_shot_subset(const std::vector<int64_t>& labels, int64_t num_labels, int64_t num_samples,
                                     const FewShotOptions& o) {
  check_options(o);
  std::vector<int64_t> out;
  if (labels.empty()) {
    M4_CHECK(o.skew == 0.0, ErrorCode::kInvalidArgument, "few-shot skew needs a 'label' dataset");
    std::vector<int64_t> all(static_cast<size_t>(num_samples));
    std::iota(all.begin(), all.end(), int64_t{0});
    const size_t k = static_cast<size_t>(
        std::clamp<int64_t>(std::llround(o.fraction * static_cast<double>(num_samples)), 1, num_samples));
    Rng rng(mix_seed(o.seed, 0));
    shuffle_prefix(all, rng, k);
    out.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k));
  } else {
    std::vector<std::vector<int64_t>> by_label(static_cast<size_t>(num_labels));
    for (size_t i = 0; i < labels.size(); ++i) by_label.at(static_cast<size_t>(labels[i])).push_back(static_cast<int64_t>(i));
    std::vector<int64_t> counts;
    for (const auto& v : by_label) counts.push_back(static_cast<int64_t>(v.size()));
    std::vector<int64_t> keep = few_shot_counts(counts, o);
    for (size_t c = 0; c < by_label.size(); ++c) {
      // Each label draws from its own stream: the choice within a label does
      // not depend on how many samples other labels have.
      Rng rng(mix_seed(o.seed, 1000 + c));
      shuffle_prefix(by_label[c], rng, static_cast<size_t>(keep[c]));
      out.insert(out.end(), by_label[c].begin(), by_label[c].begin() + keep[c]);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace m4::data
