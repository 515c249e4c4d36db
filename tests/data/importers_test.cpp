// Importers on small generated raw files (IDX, PNG + CSV, JSONL, WAV + CSV, IMU
// CSV, safetensors), and each bad input with its one-line message.
#include <gtest/gtest.h>
#include <png.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/safetensors.h"
#include "data/dataset_reader.h"
#include "data/importers.h"
#include "data/png_image.h"
#include "data/wav.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;
using data::ImportOptions;

void write_bytes(const fs::path& p, const std::string& bytes, bool gzip = false) {
  if (gzip) {
    gzFile g = gzopen(p.c_str(), "wb");
    gzwrite(g, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(g);
  } else {
    std::ofstream(p, std::ios::binary) << bytes;
  }
}

std::string idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  std::vector<char> s = {0, 0, 8, static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int b = 3; b >= 0; --b) s.push_back(static_cast<char>((d >> (8 * b)) & 0xff));
  }
  s.insert(s.end(), data.begin(), data.end());
  return std::string(s.begin(), s.end());
}

std::vector<int64_t> all(int64_t n) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(i);
  return v;
}

class Importers : public ::testing::Test {
 protected:
  fs::path text(const std::string& name, const std::string& content) {
    write_bytes(tmp_ / name, content);
    return tmp_ / name;
  }
  void write_idx_pair(int n, bool gzip_images) {
    std::vector<uint8_t> px, lab;
    for (int i = 0; i < n * 12; ++i) px.push_back(static_cast<uint8_t>(i * 7));
    for (int i = 0; i < n; ++i) lab.push_back(static_cast<uint8_t>(i % 3));
    write_bytes(tmp_ / "img.idx.gz", idx_bytes({uint32_t(n), 3, 4}, px), gzip_images);
    write_bytes(tmp_ / "lab.idx", idx_bytes({uint32_t(n)}, lab));
  }
  ImportOptions idx_options() {
    ImportOptions o;
    o.format = "idx";
    o.images = tmp_ / "img.idx.gz";
    o.labels = tmp_ / "lab.idx";
    o.out = tmp_ / "out.h5";
    return o;
  }
  test::TempDir tmp_;
};

TEST_F(Importers, IdxGzipAndPlain) {
  write_idx_pair(7, true);
  ImportOptions o = idx_options();
  o.license = "MIT";
  EXPECT_EQ(data::import_dataset(o), 7);
  auto r = data::DatasetReader::open(o.out);
  at::Tensor img = r->read("image", all(7));
  EXPECT_EQ(img.sizes(), (at::IntArrayRef{7, 1, 3, 4}));
  EXPECT_EQ(img[2][0][1][3].item<int>(), static_cast<uint8_t>((2 * 12 + 1 * 4 + 3) * 7));
  EXPECT_EQ(r->labels(), (std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0}));
  EXPECT_EQ(r->attributes().label_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(r->attributes().license, "MIT");
}

TEST_F(Importers, IdxBadInputs) {
  write_idx_pair(7, false);
  ImportOptions o = idx_options();
  std::string full = idx_bytes({7, 3, 4}, std::vector<uint8_t>(84, 1));
  write_bytes(o.images, full.substr(0, full.size() - 5));
  test::expect_error([&] { data::import_dataset(o); }, {"img.idx.gz", "truncated IDX file", "expected 84", "found 79"});
  write_bytes(o.images, full.substr(0, full.size() / 2), true);
  std::string gz = [&] { std::ifstream in(o.images, std::ios::binary); return std::string(std::istreambuf_iterator<char>(in), {}); }();
  write_bytes(o.images, gz.substr(0, gz.size() / 2));
  test::expect_error([&] { data::import_dataset(o); }, {"img.idx.gz", "truncated"});
  write_idx_pair(7, true);
  o.label_names = {"a", "b"};
  test::expect_error([&] { data::import_dataset(o); }, {"lab.idx", "label 2 at index 2 has no name", "2 label names"});
  write_bytes(o.labels, idx_bytes({6}, std::vector<uint8_t>(6, 0)));
  o.label_names.clear();
  test::expect_error([&] { data::import_dataset(o); }, {"holds 7 images", "holds 6 labels"});
  EXPECT_FALSE(fs::exists(o.out));
}

class ImageCsv : public Importers {
 protected:
  void SetUp() override {
    data::Image gray{1, 4, 5, {}}, rgb{3, 4, 5, {}}, rgba{4, 4, 5, {}};
    for (int i = 0; i < 20; ++i) gray.pixels.push_back(static_cast<uint8_t>(10 * i));
    for (int i = 0; i < 60; ++i) rgb.pixels.push_back(static_cast<uint8_t>(3 * i + 1));
    for (int c = 0; c < 4; ++c) {
      for (int i = 0; i < 20; ++i) rgba.pixels.push_back(c == 3 ? 255 : static_cast<uint8_t>(c * 50 + i));
    }
    fs::create_directory(tmp_ / "img");
    data::write_png(tmp_ / "img/g.png", gray);
    data::write_png(tmp_ / "img/c.png", rgb);
    data::write_png(tmp_ / "img/a.png", rgba);
    data::Image big{1, 8, 10, std::vector<uint8_t>(80, 77)};
    data::write_png(tmp_ / "img/big.png", big);
  }
  ImportOptions csv_options(const std::string& csv) {
    ImportOptions o;
    o.format = "image-csv";
    o.csv = text("images.csv", csv);
    o.out = tmp_ / "out.h5";
    return o;
  }
};

TEST_F(ImageCsv, MixedGrayRgbRgbaBecomeRgbWithCaptions) {
  ImportOptions o = csv_options("file,label,text\nimg/g.png,dog,\"a dog, sitting\"\nimg/c.png,cat,two\nimg/a.png,dog,three\n");
  EXPECT_EQ(data::import_dataset(o), 3);
  auto r = data::DatasetReader::open(o.out);
  at::Tensor img = r->read("image", all(3));
  ASSERT_EQ(img.sizes(), (at::IntArrayRef{3, 3, 4, 5}));
  for (int c = 0; c < 3; ++c) EXPECT_EQ(img[0][c][1][2].item<int>(), 10 * 7) << "gray replicated";
  EXPECT_EQ(img[1][2][3][4].item<int>(), 3 * (2 * 20 + 19) + 1);
  EXPECT_EQ(img[2][1][0][3].item<int>(), 50 + 3) << "opaque RGBA keeps its RGB";
  EXPECT_EQ(r->attributes().label_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(r->labels(), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(r->read_text("text", all(3)), (std::vector<std::string>{"a dog, sitting", "two", "three"}));
}

TEST_F(ImageCsv, PaletteImagesExpandToRgb) {
  // A 2-colour palette PNG written with libpng directly (data::write_png has no palette mode).
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = 5;
  img.height = 4;
  img.format = PNG_FORMAT_RGB_COLORMAP;
  img.colormap_entries = 2;
  const uint8_t colormap[6] = {200, 10, 20, 5, 150, 250};
  std::vector<uint8_t> index(20, 0);
  index[7] = 1;  // row 1, column 2
  ASSERT_TRUE(png_image_write_to_file(&img, (tmp_ / "img/p.png").c_str(), 0, index.data(), 0, colormap)) << img.message;
  png_image_free(&img);
  ImportOptions o = csv_options("file,label\nimg/p.png,x\nimg/g.png,y\n");
  data::import_dataset(o);
  at::Tensor px = data::DatasetReader::open(o.out)->read("image", {0});
  ASSERT_EQ(px.sizes(), (at::IntArrayRef{1, 3, 4, 5}));
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(px[0][c][0][0].item<int>(), colormap[c]);
    EXPECT_EQ(px[0][c][1][2].item<int>(), colormap[3 + c]);
  }
}

TEST_F(ImageCsv, GrayStaysOneChannelAndResizeIsBilinear) {
  ImportOptions o = csv_options("file,label\nimg/g.png,x\nimg/big.png,y\n");
  o.resize = std::make_pair(int64_t{4}, int64_t{5});
  data::import_dataset(o);
  at::Tensor img = data::DatasetReader::open(o.out)->read("image", {0, 1});
  ASSERT_EQ(img.sizes(), (at::IntArrayRef{2, 1, 4, 5}));
  EXPECT_TRUE(at::all(img[1].eq(77)).item<bool>()) << "a flat image stays flat";
  EXPECT_EQ(img[0][0][2][3].item<int>(), 10 * 13);
  data::Image ramp{1, 1, 4, {0, 100, 200, 250}};
  data::Image half = data::resize_bilinear(ramp, 1, 2);
  EXPECT_EQ(half.pixels, (std::vector<uint8_t>{50, 225}));
}

TEST_F(ImageCsv, BadInputsNameFileAndLine) {
  ImportOptions o = csv_options("file,label\nimg/g.png,x\nimg/big.png,y\n");
  test::expect_error([&] { data::import_dataset(o); },
                     {"images.csv:3", "big.png is 8x10", "g.png is 4x5", "--resize"});
  o = csv_options("file,label\nimg/g.png,dog\nimg/c.png,zebra\n");
  o.label_names = {"cat", "dog"};
  test::expect_error([&] { data::import_dataset(o); }, {"images.csv:3", "unknown label 'zebra'", "cat,dog"});
  o = csv_options("file,kind\nimg/g.png,dog\n");
  test::expect_error([&] { data::import_dataset(o); }, {"images.csv", "header has no 'label' column", "file,kind"});
  o = csv_options("file,label\nimg/g.png,dog\nimg/c.png,\n");
  test::expect_error([&] { data::import_dataset(o); }, {"images.csv:3", "empty label"});
  text("img/not.png", "GIF89a...");
  o = csv_options("file,label\nimg/g.png,dog\n\nimg/not.png,cat\n");
  test::expect_error([&] { data::import_dataset(o); }, {"images.csv:4", "not.png", "not a readable PNG"});
  o = csv_options("file,label\nimg/g.png,dog,extra\n");
  test::expect_error([&] { data::import_dataset(o); }, {"images.csv:2", "has 3 fields, the header has 2"});
  EXPECT_FALSE(fs::exists(o.out));
}

TEST_F(Importers, JsonlTextLabelsTargets) {
  ImportOptions o;
  o.format = "jsonl";
  o.jsonl = text("d.jsonl", "{\"text\": \"good film\", \"label\": \"pos\", \"target_text\": \"yes\"}\n\n"
                            "{\"text\": \"bad\", \"label\": \"neg\", \"target_text\": \"no\"}\n"
                            "{\"text\": \"fine\", \"label\": \"pos\", \"target_text\": \"yes\"}\n");
  o.out = tmp_ / "out.h5";
  EXPECT_EQ(data::import_dataset(o), 3);
  auto r = data::DatasetReader::open(o.out);
  EXPECT_EQ(r->attributes().label_names, (std::vector<std::string>{"neg", "pos"}));
  EXPECT_EQ(r->labels(), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(r->read_text("text", all(3)), (std::vector<std::string>{"good film", "bad", "fine"}));
  EXPECT_EQ(r->read_text("target_text", {1}), (std::vector<std::string>{"no"}));
  EXPECT_EQ(r->attributes().modality, (std::vector<std::string>{"text"}));

  o.jsonl = text("bad.jsonl", "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\", \"label\": \n");
  test::expect_error([&] { data::import_dataset(o); }, {"bad.jsonl:2", "malformed JSON"});
  o.jsonl = text("bad.jsonl", "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\"}\n");
  test::expect_error([&] { data::import_dataset(o); }, {"bad.jsonl:2", "lacks 'label' but line 1 has it"});
  o.jsonl = text("bad.jsonl", "{\"text\": \"a\", \"label\": 3}\n");
  test::expect_error([&] { data::import_dataset(o); }, {"bad.jsonl:1", "'label' must be a string, found number"});
  o.jsonl = text("bad.jsonl", "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\", \"label\": \"meh\"}\n");
  o.label_names = {"neg", "pos"};
  test::expect_error([&] { data::import_dataset(o); }, {"bad.jsonl:2", "unknown label 'meh'"});
}

// Amplitude of the `freq` component of x[begin, end) at `rate`, and the RMS of
// what is left after removing it (small iff x is that one sinusoid).
std::pair<double, double> sine_fit(const float* x, int64_t begin, int64_t end, double freq, double rate) {
  double a = 0, b = 0;
  const double n = static_cast<double>(end - begin);
  for (int64_t i = begin; i < end; ++i) {
    a += x[i] * std::sin(2 * M_PI * freq * i / rate);
    b += x[i] * std::cos(2 * M_PI * freq * i / rate);
  }
  a *= 2 / n;
  b *= 2 / n;
  double res = 0;
  for (int64_t i = begin; i < end; ++i) {
    double e = x[i] - a * std::sin(2 * M_PI * freq * i / rate) - b * std::cos(2 * M_PI * freq * i / rate);
    res += e * e;
  }
  return {std::hypot(a, b), std::sqrt(res / n)};
}

TEST_F(Importers, WavResampledTo16kKeepsTheSine) {
  // 1 kHz at 8 kHz, amplitude 0.5, 1 s, stereo (right = left): mono mix, then 16 kHz.
  std::vector<float> st;
  for (int i = 0; i < 8000; ++i) {
    float v = 0.5f * static_cast<float>(std::sin(2 * M_PI * 1000.0 * i / 8000.0));
    st.push_back(v);
    st.push_back(v);
  }
  data::write_wav(tmp_ / "sine.wav", st, 8000, 2);
  std::vector<float> shortclip(2000, 0.25f);
  data::write_wav(tmp_ / "short.wav", shortclip, 8000);
  text("noise.wav", "RIFF but not really");
  ImportOptions o;
  o.format = "wav-csv";
  o.csv = text("sounds.csv", "file,label\nsine.wav,tone\nshort.wav,dc\n");
  o.sample_rate = 16000;
  o.seconds = 0.75;
  o.out = tmp_ / "out.h5";
  EXPECT_EQ(data::import_dataset(o), 2);
  auto r = data::DatasetReader::open(o.out);
  EXPECT_EQ(r->attributes().sample_rate, 16000);
  at::Tensor audio = r->read("audio", {0, 1});
  ASSERT_EQ(audio.sizes(), (at::IntArrayRef{2, 12000}));
  EXPECT_TRUE(at::equal(r->read("audio_length", {0, 1}), at::tensor(std::vector<int64_t>{12000, 4000})));
  // Away from the edges (the kernel spans ~17 input samples), the tone survives.
  auto [amp, residual] = sine_fit(audio[0].data_ptr<float>(), 200, 11800, 1000.0, 16000.0);
  EXPECT_NEAR(amp, 0.5, 2e-3);
  EXPECT_LT(residual, 2e-3);
  at::Tensor dc = audio[1];
  EXPECT_NEAR(dc[2000].item<float>(), 0.25, 1e-3);
  EXPECT_TRUE(at::all(dc.slice(0, 4000).eq(0)).item<bool>()) << "padded with zeros";

  o.csv = text("sounds.csv", "file,label\nsine.wav,tone\nnoise.wav,x\n");
  test::expect_error([&] { data::import_dataset(o); }, {"sounds.csv:3", "noise.wav", "not a decodable audio file"});
  o.seconds = 0;
  test::expect_error([&] { data::import_dataset(o); }, {"--seconds"});
}

TEST_F(Importers, ImuWindows) {
  std::ostringstream rows;
  rows << "window,label,ax,ay,az,gx,gy,gz\n";
  for (int w = 0; w < 3; ++w) {
    for (int t = 0; t < 4; ++t) {
      rows << "w" << w << "," << (w == 1 ? "run" : "walk");
      for (int a = 0; a < 6; ++a) rows << "," << (w * 100 + t * 10 + a) << ".5";
      rows << "\n";
    }
  }
  const std::string csv = rows.str();
  ImportOptions o;
  o.format = "imu-csv";
  o.csv = text("imu.csv", csv);
  o.out = tmp_ / "out.h5";
  EXPECT_EQ(data::import_dataset(o), 3);
  auto r = data::DatasetReader::open(o.out);
  at::Tensor imu = r->read("imu", all(3));
  ASSERT_EQ(imu.sizes(), (at::IntArrayRef{3, 4, 6}));
  EXPECT_EQ(imu[2][3][5].item<float>(), 235.5f);
  EXPECT_EQ(r->labels(), (std::vector<int64_t>{1, 0, 1}));

  std::string uneven = csv.substr(0, csv.rfind("w2,"));  // w2 loses its last row
  o.csv = text("imu.csv", uneven);
  test::expect_error([&] { data::import_dataset(o); }, {"imu.csv:10", "window 'w2' has 3 rows", "first window has 4"});
  o.csv = text("imu.csv", csv + "w0,walk,1,2,3,4,5,6\n");
  test::expect_error([&] { data::import_dataset(o); }, {"imu.csv:14", "window 'w0' appears again"});
  o.csv = text("imu.csv", "window,label,ax,ay,az,gx,gy,gz\nw,a,1,2,x,4,5,6\n");
  test::expect_error([&] { data::import_dataset(o); }, {"imu.csv:2", "column 'az' is not a finite number ('x')"});
}

TEST_F(Importers, InputIdsFromSafetensors) {
  at::Tensor ids = at::arange(15, at::kLong).view({3, 5});
  write_safetensors(tmp_ / "ids.safetensors", {{"input_ids", ids}});
  ImportOptions o;
  o.format = "input-ids";
  o.input = tmp_ / "ids.safetensors";
  o.out = tmp_ / "out.h5";
  EXPECT_EQ(data::import_dataset(o), 3);
  auto r = data::DatasetReader::open(o.out);
  EXPECT_TRUE(at::equal(r->read("input_ids", all(3)), ids));
  EXPECT_TRUE(at::equal(r->read("attention_mask", all(3)), at::ones({3, 5}, at::kLong)));

  write_safetensors(tmp_ / "f.safetensors", {{"input_ids", ids.to(at::kFloat)}});
  o.input = tmp_ / "f.safetensors";
  test::expect_error([&] { data::import_dataset(o); }, {"f.safetensors", "'input_ids' has dtype F32, expected I64"});
  write_safetensors(tmp_ / "m.safetensors", {{"input_ids", ids}, {"attention_mask", at::ones({3, 4}, at::kLong)}});
  o.input = tmp_ / "m.safetensors";
  test::expect_error([&] { data::import_dataset(o); }, {"m.safetensors", "'attention_mask' has shape [3, 4]"});
}

TEST_F(Importers, UnknownFormatAndBadResize) {
  ImportOptions o;
  o.format = "tfrecord";
  o.out = tmp_ / "out.h5";
  test::expect_error([&] { data::import_dataset(o); }, {"unknown import format 'tfrecord'", "idx, image-csv"});
  test::expect_error([&] { data::parse_size("28by28"); }, {"--resize '28by28'", "HxW"});
  EXPECT_EQ(data::parse_size("224x160"), std::make_pair(int64_t{224}, int64_t{160}));
}

}  // namespace
}  // namespace m4
