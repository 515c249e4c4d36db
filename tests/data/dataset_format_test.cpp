// The HDF5 dataset format: round trips per modality, scattered reads, and every
// problem the reader must report in one line (dtype, N, labels, corrupt files).
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <fstream>

#include "core/atomic_file.h"
#include "data/dataset_reader.h"
#include "data/dataset_writer.h"
#include "data/hdf5_file.h"
#include "tests/data/data_test_util.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;
using data::DatasetContents;
using data::DatasetReader;

class DatasetFormat : public ::testing::Test {
 protected:
  void SetUp() override { at::manual_seed(7); }
  test::TempDir tmp_;
};

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i;
  return v;
}

TEST_F(DatasetFormat, ImageLabelTextRoundTrip) {
  DatasetContents c = test::indexed_contents(37, 4);
  c.tensors["image"] = at::randint(0, 256, {37, 3, 5, 6}, at::kByte);
  c.texts["target_text"] = std::vector<std::string>(37, "ünïcode ✓");
  c.attrs.created_by = "test";
  const fs::path p = tmp_ / "x.h5";
  EXPECT_EQ(data::write_dataset(p, c), 37);
  auto r = DatasetReader::open(p);
  EXPECT_EQ(r->num_samples(), 37);
  EXPECT_EQ(r->attributes().label_names, c.attrs.label_names);
  EXPECT_EQ(r->attributes().source, "generated");
  EXPECT_EQ(r->attributes().license, "CC0");
  EXPECT_EQ(r->attributes().split, "train");
  EXPECT_EQ(r->attributes().created_by, "test");
  EXPECT_EQ(r->attributes().modality, (std::vector<std::string>{"image", "text"}));
  EXPECT_TRUE(at::equal(r->read("image", iota(37)), c.tensors["image"]));
  EXPECT_TRUE(at::equal(r->read("label", iota(37)), c.tensors["label"]));
  EXPECT_EQ(r->read_text("text", iota(37)), c.texts["text"]);
  EXPECT_EQ(r->read_text("target_text", {3})[0], "ünïcode ✓");
  EXPECT_EQ(r->labels().size(), 37u);
}

TEST_F(DatasetFormat, TheSameContentsGiveTheSameBytes) {
  DatasetContents c = test::indexed_contents(11, 3);
  c.tensors["image"] = at::randint(0, 256, {11, 1, 4, 4}, at::kByte);
  data::write_dataset(tmp_ / "a.h5", c);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a later second: timestamps would differ
  data::write_dataset(tmp_ / "b.h5", c);
  EXPECT_EQ(read_text_file(tmp_ / "a.h5"), read_text_file(tmp_ / "b.h5"));
}

TEST_F(DatasetFormat, ScatteredReadsComeBackInTheOrderAsked) {
  DatasetContents c = test::indexed_contents(300, 3);
  const fs::path p = tmp_ / "x.h5";
  data::write_dataset(p, c);
  auto r = DatasetReader::open(p);
  std::vector<int64_t> idx = {299, 5, 6, 7, 150, 0, 5, 298};  // runs, repeats, reversed
  at::Tensor img = r->read("image", idx);
  ASSERT_EQ(img.sizes(), (at::IntArrayRef{8, 1, 2, 2}));
  std::vector<std::string> text = r->read_text("text", idx);
  for (size_t i = 0; i < idx.size(); ++i) {
    EXPECT_EQ(img[static_cast<int64_t>(i)][0][1][1].item<int>(), idx[i] % 251);
    EXPECT_EQ(text[i], "s" + std::to_string(idx[i]));
  }
  test::expect_error([&] { r->read("image", {300}); }, {"x.h5", "300", "out of range"});
  test::expect_error([&] { r->read("audio", {0}); }, {"no dataset 'audio'", "(the file has: image, text, label)"});
}

TEST_F(DatasetFormat, AudioImuInputIdsRoundTrip) {
  DatasetContents c;
  c.tensors["audio"] = at::randn({6, 1600});
  c.tensors["audio_length"] = at::tensor(std::vector<int64_t>{1600, 10, 0, 5, 1600, 7});
  c.tensors["imu"] = at::randn({6, 20, 6});
  c.tensors["input_ids"] = at::randint(0, 1000, {6, 9}, at::kLong);
  c.tensors["attention_mask"] = at::ones({6, 9}, at::kLong);
  c.attrs.sample_rate = 16000;
  const fs::path p = tmp_ / "a.h5";
  data::write_dataset(p, c);
  auto r = DatasetReader::open(p);
  EXPECT_EQ(r->attributes().sample_rate, 16000);
  EXPECT_EQ(r->attributes().modality, (std::vector<std::string>{"audio", "imu", "text"}));
  for (const char* name : {"audio", "audio_length", "imu", "input_ids", "attention_mask"}) {
    EXPECT_TRUE(at::equal(r->read(name, iota(6)), c.tensors[name])) << name;
  }
  EXPECT_TRUE(r->labels().empty());
}

TEST_F(DatasetFormat, WriterRejectsBadContentsAndLeavesNothing) {
  const fs::path p = tmp_ / "bad.h5";
  DatasetContents c = test::indexed_contents(10, 3);
  c.tensors["label"][4] = 3;
  test::expect_error([&] { data::write_dataset(p, c); }, {"bad.h5", "'label'", "[0, 3]", "expected [0, 3)"});
  c = test::indexed_contents(10, 3);
  c.tensors["label"] = c.tensors["label"].to(at::kFloat);
  test::expect_error([&] { data::write_dataset(p, c); }, {"dataset 'label' has dtype float32, expected int64"});
  c = test::indexed_contents(10, 3);
  c.tensors["label"] = c.tensors["label"].to(at::kDouble);
  test::expect_error([&] { data::write_dataset(p, c); }, {"bad.h5", "dataset 'label' has dtype Double, expected int64"});
  c = test::indexed_contents(10, 3);
  c.texts["text"].pop_back();
  test::expect_error([&] { data::write_dataset(p, c); }, {"'text' has 9 samples but 'image' has 10"});
  c = test::indexed_contents(10, 3);
  c.tensors["audio"] = at::zeros({10, 4});
  test::expect_error([&] { data::write_dataset(p, c); }, {"'audio' and 'audio_length' must come together",
                                                          "needs the attribute 'sample_rate'"});
  // Images no encoder takes: caught in the file, not mid-training.
  c = test::indexed_contents(10, 3);
  c.tensors["image"] = at::zeros({10, 2, 4, 4}, at::kByte);
  test::expect_error([&] { data::write_dataset(p, c); }, {"bad.h5", "2 channels, expected 1 (gray) or 3 (RGB)"});
  c = test::indexed_contents(10, 3);
  c.tensors["image"] = at::zeros({10, 3, 0, 0}, at::kByte);
  test::expect_error([&] { data::write_dataset(p, c); }, {"bad.h5", "empty images"});
  EXPECT_TRUE(fs::is_empty(tmp_.path())) << "no output and no temp file after failures";
}

// Files written below the writer (hdf5_file.h) to give the reader what the
// writer never would.
void write_raw(const fs::path& p, const std::string& format, data::ElemType label_type, int64_t n_label,
               int64_t label_value) {
  data::H5File f = data::H5File::create(p);
  data::write_string_attr(f.id(), "format", format, p.string());
  data::write_int_attr(f.id(), "num_samples", 4, p.string());
  data::write_strings_attr(f.id(), "label_names", {"a", "b"}, p.string());
  data::Hid img = data::create_dataset(f.id(), "image", data::ElemType::kU8, {4, 1, 2, 2}, p.string());
  std::vector<uint8_t> px(16, 0);
  data::write_rows(img.get(), data::ElemType::kU8, {4, 1, 2, 2}, 0, 4, px.data(), p.string());
  data::Hid lab = data::create_dataset(f.id(), "label", label_type, {n_label}, p.string());
  if (label_type == data::ElemType::kI64) {
    std::vector<int64_t> v(static_cast<size_t>(n_label), label_value);
    data::write_rows(lab.get(), label_type, {n_label}, 0, n_label, v.data(), p.string());
  } else {
    std::vector<float> v(static_cast<size_t>(n_label), 0.f);
    data::write_rows(lab.get(), label_type, {n_label}, 0, n_label, v.data(), p.string());
  }
  img.reset();
  lab.reset();
  f.close();
}

TEST_F(DatasetFormat, ReaderReportsEachProblemInOneLine) {
  const fs::path p = tmp_ / "x.h5";
  write_raw(p, "m4forge-dataset/1", data::ElemType::kF32, 4, 0);
  test::expect_error([&] { DatasetReader::open(p); }, {p.string() + ": dataset 'label' has dtype float32, expected int64"});
  write_raw(p, "m4forge-dataset/1", data::ElemType::kI64, 3, 0);
  test::expect_error([&] { DatasetReader::open(p); }, {"x.h5", "'label' has 3 samples but 'image' has 4"});
  write_raw(p, "m4forge-dataset/1", data::ElemType::kI64, 4, 2);
  test::expect_error([&] { DatasetReader::open(p); }, {"x.h5", "'label' has value 2 at sample 0", "[0, 2)"});
  write_raw(p, "something-else/3", data::ElemType::kI64, 4, 0);
  test::expect_error([&] { DatasetReader::open(p); }, {"x.h5", "format is \"something-else/3\"", "m4forge-dataset/1"});
  write_raw(p, "m4forge-dataset/1", data::ElemType::kI64, 4, 1);
  EXPECT_EQ(DatasetReader::open(p)->num_samples(), 4);
}

TEST_F(DatasetFormat, TruncatedOrForeignFilesAreOneLineWithoutHdf5Noise) {
  const fs::path p = tmp_ / "t.h5";
  DatasetContents c = test::indexed_contents(2000, 3);
  c.tensors["image"] = at::zeros({2000, 1, 28, 28}, at::kByte);
  data::write_dataset(p, c);
  fs::resize_file(p, fs::file_size(p) / 2);
  testing::internal::CaptureStderr();
  test::expect_error([&] { DatasetReader::open(p); }, {p.string(), "truncated or corrupt"});
  const fs::path q = tmp_ / "q.h5";
  std::ofstream(q) << "hello, not hdf5";
  test::expect_error([&] { DatasetReader::open(q); }, {q.string(), "not an HDF5 file"});
  test::expect_error([&] { DatasetReader::open(tmp_ / "missing.h5"); }, {"missing.h5", "no such file"});
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "") << "HDF5 must not print its error stack";
}

}  // namespace
}  // namespace m4
