// The real Fashion-MNIST test split (Debian's dataset-fashion-mnist), when
// installed: import, counts, labels, and a loader pass over it.
#include <gtest/gtest.h>

#include "data/dataset_reader.h"
#include "data/importers.h"
#include "data/loader.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;

const fs::path kDir = "/usr/share/datasets/fashion-mnist";

TEST(FashionMnist, T10kImportsWithTenBalancedLabels) {
  if (!fs::exists(kDir / "t10k-images-idx3-ubyte.gz")) GTEST_SKIP() << kDir << " not installed";
  test::TempDir tmp;
  data::ImportOptions o;
  o.format = "idx";
  o.images = kDir / "t10k-images-idx3-ubyte.gz";
  o.labels = kDir / "t10k-labels-idx1-ubyte.gz";
  o.label_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  o.split = "test";
  o.license = "MIT";
  o.out = tmp / "fmnist-test.h5";
  EXPECT_EQ(data::import_dataset(o), 10000);
  auto r = data::DatasetReader::open(o.out);
  EXPECT_EQ(r->num_samples(), 10000);
  EXPECT_EQ(r->layout("image").shape, (std::vector<int64_t>{10000, 1, 28, 28}));
  EXPECT_EQ(r->attributes().label_names.size(), 10u);
  std::vector<int64_t> hist(10, 0);
  for (int64_t l : r->labels()) ++hist[static_cast<size_t>(l)];
  EXPECT_EQ(hist, std::vector<int64_t>(10, 1000));
  data::LoaderOptions lo;
  lo.batch_size = 64;
  lo.prefetch = 2;
  data::Loader loader(r, lo);
  auto b = loader.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->tensors.at("image").sizes(), (at::IntArrayRef{64, 1, 28, 28}));
  EXPECT_GT(b->tensors.at("image").to(at::kFloat).mean().item<float>(), 20.f) << "real pixels, not zeros";
}

}  // namespace
}  // namespace m4
