// The loader: sharding across ranks, seeded epoch orders, resume from a saved
// cursor, prefetch equivalence and error propagation, few-shot subsets.
#include <gtest/gtest.h>

#include <fstream>
#include <numeric>
#include <set>

#include "data/dataset_reader.h"
#include "data/few_shot.h"
#include "data/loader.h"
#include "tests/data/data_test_util.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;
using data::Batch;
using data::Loader;
using data::LoaderOptions;
using data::LoaderState;

class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = tmp_ / "d.h5";
    data::write_dataset(path_, test::indexed_contents(kN, 5));
    reader_ = data::DatasetReader::open(path_);
  }
  LoaderOptions opts(int64_t batch, int64_t rank = 0, int64_t world = 1) {
    LoaderOptions o;
    o.batch_size = batch;
    o.rank = rank;
    o.world = world;
    o.seed = kSeed;
    return o;
  }
  // Every batch of one epoch.
  static std::vector<Batch> epoch(Loader& l) {
    std::vector<Batch> out;
    while (auto b = l.next()) out.push_back(std::move(*b));
    return out;
  }
  static constexpr int64_t kN = 203;
  static constexpr uint64_t kSeed = 1234;
  test::TempDir tmp_;
  fs::path path_;
  std::shared_ptr<data::DatasetReader> reader_;
};

void expect_consistent(const Batch& b) {
  // Every dataset row belongs to the sample index the batch says.
  const at::Tensor& img = b.tensors.at("image");
  const at::Tensor& lab = b.tensors.at("label");
  ASSERT_EQ(img.size(0), b.size());
  for (int64_t i = 0; i < b.size(); ++i) {
    const int64_t s = b.indices[static_cast<size_t>(i)];
    EXPECT_EQ(img[i][0][1][0].item<int64_t>(), s % 251);
    EXPECT_EQ(lab[i].item<int64_t>(), s % 5);
    EXPECT_EQ(b.texts.at("text")[static_cast<size_t>(i)], "s" + std::to_string(s));
  }
}

TEST_F(LoaderTest, OneEpochVisitsEverySampleOnceWithDropLastFalse) {
  LoaderOptions o = opts(16);
  o.drop_last = false;
  Loader l(reader_, o);
  EXPECT_EQ(l.batches_per_epoch(), 13);
  std::vector<Batch> bs = epoch(l);
  ASSERT_EQ(bs.size(), 13u);
  EXPECT_EQ(bs.back().size(), 203 - 12 * 16);
  std::multiset<int64_t> seen;
  for (const auto& b : bs) {
    expect_consistent(b);
    seen.insert(b.indices.begin(), b.indices.end());
  }
  EXPECT_EQ(seen.size(), 203u);
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 203u);
  EXPECT_EQ(l.state(), (LoaderState{1, 0}));
}

TEST_F(LoaderTest, TwoRankShardsAreDisjointAndInterleaveTheOneRankBatch) {
  Loader one(reader_, opts(8));
  Loader r0(reader_, opts(4, 0, 2)), r1(reader_, opts(4, 1, 2));
  EXPECT_EQ(one.batches_per_epoch(), 203 / 8);
  EXPECT_EQ(r0.batches_per_epoch(), one.batches_per_epoch());
  for (int e = 0; e < 2; ++e) {
    std::vector<Batch> a = epoch(one), b0 = epoch(r0), b1 = epoch(r1);
    ASSERT_EQ(a.size(), b0.size());
    ASSERT_EQ(a.size(), b1.size());
    for (size_t g = 0; g < a.size(); ++g) {
      ASSERT_EQ(b0[g].size(), 4);
      ASSERT_EQ(b1[g].size(), 4);
      std::set<int64_t> s0(b0[g].indices.begin(), b0[g].indices.end());
      for (int64_t i : b1[g].indices) EXPECT_EQ(s0.count(i), 0u) << "shards overlap";
      for (size_t k = 0; k < 4; ++k) {
        EXPECT_EQ(b0[g].indices[k], a[g].indices[2 * k]);
        EXPECT_EQ(b1[g].indices[k], a[g].indices[2 * k + 1]);
      }
      expect_consistent(b1[g]);
    }
  }
}

TEST_F(LoaderTest, SeededOrders) {
  Loader a(reader_, opts(8)), b(reader_, opts(8));
  LoaderOptions other = opts(8);
  other.seed = kSeed + 1;
  Loader c(reader_, other);
  EXPECT_EQ(a.epoch_order(0), b.epoch_order(0));
  EXPECT_NE(a.epoch_order(0), a.epoch_order(1));
  EXPECT_NE(a.epoch_order(0), c.epoch_order(0));
  std::vector<int64_t> sorted = a.epoch_order(3);
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, a.subset());
  std::vector<Batch> ea = epoch(a), eb = epoch(b);
  for (size_t i = 0; i < ea.size(); ++i) EXPECT_EQ(ea[i].indices, eb[i].indices);
  LoaderOptions plain = opts(8);
  plain.shuffle = false;
  Loader d(reader_, plain);
  EXPECT_EQ(d.next()->indices, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST_F(LoaderTest, SavedCursorResumesTheSameSequence) {
  Loader straight(reader_, opts(8, 1, 2));
  std::vector<std::vector<int64_t>> expected;
  LoaderState saved;
  for (int i = 0; i < 40; ++i) {
    if (i == 17) saved = straight.state();
    auto b = straight.next();
    expected.push_back(b ? b->indices : std::vector<int64_t>{-1});
  }
  EXPECT_EQ(saved, (LoaderState{1, 4})) << "12 batches + end of epoch 0, then 4 of epoch 1";
  Loader resumed(reader_, opts(8, 1, 2), saved);
  for (int i = 17; i < 40; ++i) {
    auto b = resumed.next();
    EXPECT_EQ(b ? b->indices : std::vector<int64_t>{-1}, expected[static_cast<size_t>(i)]) << "step " << i;
  }
  test::expect_error([&] { Loader(reader_, opts(8, 1, 2), LoaderState{0, 99}); },
                     {"d.h5", "(epoch 0, index 99)", "epoch of 12 batches"});
}

TEST_F(LoaderTest, PrefetchDeliversTheSameBatches) {
  LoaderOptions p = opts(7, 1, 3);
  p.prefetch = 3;
  Loader with(reader_, p, LoaderState{0, 4}), without(reader_, opts(7, 1, 3), LoaderState{0, 4});
  for (int i = 0; i < 30; ++i) {
    auto a = with.next(), b = without.next();
    ASSERT_EQ(a.has_value(), b.has_value());
    EXPECT_EQ(with.state(), without.state());
    if (!a) continue;
    EXPECT_EQ(a->indices, b->indices);
    EXPECT_TRUE(at::equal(a->tensors.at("image"), b->tensors.at("image")));
    EXPECT_EQ(a->texts.at("text"), b->texts.at("text"));
  }
}

TEST_F(LoaderTest, PrefetchErrorsReachTheConsumer) {
  // Overwrite the file in place after open, all but the superblock: the image
  // chunk index, not read yet, no longer parses, so the first read on the
  // prefetch thread fails.
  const fs::path p = tmp_ / "big.h5";
  data::DatasetContents c = test::indexed_contents(2000, 5);
  c.tensors["image"] = at::zeros({2000, 1, 28, 28}, at::kByte);
  data::write_dataset(p, c);
  auto r = data::DatasetReader::open(p);
  const auto size = fs::file_size(p);
  {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(96);
    std::string junk(size - 96, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  LoaderOptions o = opts(8);
  o.prefetch = 2;
  o.fields = {"image"};
  Loader l(r, o);
  test::expect_error([&] { l.next(); }, {"big.h5"});
  test::expect_error([&] { l.next(); }, {"big.h5"});
}

TEST_F(LoaderTest, BadOptions) {
  test::expect_error([&] { Loader(reader_, opts(0)); }, {"batch size must be > 0"});
  test::expect_error([&] { Loader(reader_, opts(4, 2, 2)); }, {"rank 2 is outside world size 2"});
  test::expect_error([&] { Loader(reader_, opts(128, 0, 2)); }, {"203 samples in play", "global batch of 256"});
  LoaderOptions o = opts(4);
  o.fields = {"audio"};
  test::expect_error([&] { Loader(reader_, o); }, {"no dataset 'audio'"});
}

TEST(FewShot, StratifiedCountsAreExactAndDeterministic) {
  std::vector<int64_t> labels;
  for (int c = 0; c < 5; ++c) {
    for (int i = 0; i < 100 * (c + 1); ++i) labels.push_back(c);
  }
  data::FewShotOptions f;
  f.fraction = 0.1;
  f.seed = 3;
  EXPECT_EQ(data::few_shot_counts({100, 200, 300, 400, 500}, f), (std::vector<int64_t>{10, 20, 30, 40, 50}));
  std::vector<int64_t> s = data::few_shot_subset(labels, 5, 1500, f);
  ASSERT_EQ(s.size(), 150u);
  std::vector<int64_t> per(5, 0);
  for (int64_t i : s) ++per[static_cast<size_t>(labels[static_cast<size_t>(i)])];
  EXPECT_EQ(per, (std::vector<int64_t>{10, 20, 30, 40, 50}));
  EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
  EXPECT_EQ(s, data::few_shot_subset(labels, 5, 1500, f));
  data::FewShotOptions g = f;
  g.seed = 4;
  EXPECT_NE(s, data::few_shot_subset(labels, 5, 1500, g));
  f.fraction = 0.01;  // 15 samples: still at least one per label
  auto small = data::few_shot_counts({100, 200, 300, 400, 500}, f);
  EXPECT_EQ(small, (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(data::few_shot_counts({1000, 3}, f), (std::vector<int64_t>{9, 1}));
}

TEST(FewShot, SkewIsZipfOverASeededLabelOrder) {
  data::FewShotOptions f;
  f.fraction = 0.2;
  f.skew = 1.0;
  f.seed = 11;
  const std::vector<int64_t> counts(5, 1000);
  std::vector<int64_t> k = data::few_shot_counts(counts, f);
  EXPECT_EQ(std::accumulate(k.begin(), k.end(), int64_t{0}), 1000);
  // Equal class sizes: the kept counts are 1000 * (1/j) / H_5 for j = 1..5 in some order.
  std::vector<int64_t> sorted = k;
  std::sort(sorted.rbegin(), sorted.rend());
  EXPECT_EQ(sorted, (std::vector<int64_t>{438, 219, 146, 109, 88}));
  EXPECT_EQ(k, data::few_shot_counts(counts, f));
  test::expect_error([&] { data::few_shot_subset({}, 0, 10, f); }, {"skew needs a 'label' dataset"});
  f.fraction = 0;
  test::expect_error([&] { data::few_shot_counts(counts, f); }, {"fraction 0 is outside (0, 1]"});
}

TEST_F(LoaderTest, FewShotSubsetFeedsTheLoader) {
  LoaderOptions o = opts(4);
  o.few_shot.fraction = 0.1;
  o.few_shot.seed = 5;
  Loader l(reader_, o);
  // 203 samples, labels i % 5: 41, 41, 41, 40, 40 -> 20 kept (4 each).
  ASSERT_EQ(l.subset().size(), 20u);
  std::vector<int64_t> per(5, 0);
  for (int64_t i : l.subset()) ++per[static_cast<size_t>(i % 5)];
  EXPECT_EQ(per, (std::vector<int64_t>{4, 4, 4, 4, 4}));
  std::set<int64_t> in(l.subset().begin(), l.subset().end());
  for (const auto& b : epoch(l)) {
    for (int64_t i : b.indices) EXPECT_EQ(in.count(i), 1u);
  }
  Loader again(reader_, o);
  EXPECT_EQ(again.subset(), l.subset());
}

}  // namespace
}  // namespace m4
