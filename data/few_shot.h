// Few-shot subsets: a deterministic fraction of a split, stratified per label,
// optionally label-skewed with a Zipf-like law (docs/data-format.md, "Few-shot").
#pragma once

#include <cstdint>
#include <vector>

namespace m4::data {

struct FewShotOptions {
  double fraction = 1.0;  // of the split, in (0, 1]
  uint64_t seed = 0;      // which samples (and, when skewed, which labels are rare)
  // 0: every label keeps `fraction` of its samples (stratified). s > 0: labels
  // are put in a seeded random order and the label at position j (0-based) is
  // weighted n_label * (j + 1)^-s, so s = 1 is Zipf's law over labels.
  double skew = 0.0;
  bool active() const { return fraction < 1.0 || skew > 0.0; }
};

// How many samples each label keeps: total round(fraction * N) (at least one
// per label present), apportioned by weight with largest remainders and capped
// at what each label has. counts[c] = samples with label c.
std::vector<int64_t> few_shot_counts(const std::vector<int64_t>& counts, const FewShotOptions& options);

// The chosen sample indices, ascending. `labels` may be empty (unlabelled
// data): then a uniform subset of `num_samples` (skew needs labels).
std::vector<int64_t> few_shot_subset(const std::vector<int64_t>& labels, int64_t num_labels, int64_t num_samples,
                                     const FewShotOptions& options);

}  // namespace m4::data
