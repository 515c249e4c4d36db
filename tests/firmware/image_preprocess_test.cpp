// CLIP image preprocessing (CLIPImageProcessor semantics): shapes, exact
// normalisation, center crop placement, the resize against Pillow's bicubic
// (which HF uses) on patterns and on real photos through HF itself, and the
// bad-input errors.
#include "firmware/image_preprocess.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <iostream>
#include <vector>

#include "core/safetensors.h"
#include "data/png_image.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

using test::expect_error;

// Pillow 9.4's Image.resize(BICUBIC, reducing_gap=None) then crop, on the image
// made by pattern_image(): generated offline by a short Python script
// (shortest side -> size with HF's int(size * long / short), then HF's center
// crop), values (c, y, x) in row-major order.
// 12x20 -> shortest side 8 (8x13), center crop
const std::vector<int64_t> kPil12x20To8 = {
    130, 132, 120, 92,  109, 116, 181, 108, 116, 131, 134, 98,  76,  91,  166, 106, 162, 123, 152, 141, 151, 94,
    115, 97,  125, 111, 108, 144, 119, 123, 105, 145, 136, 89,  94,  150, 159, 130, 149, 157, 125, 131, 150, 146,
    121, 149, 184, 106, 177, 117, 112, 123, 198, 71,  106, 127, 151, 170, 90,  64,  164, 95,  143, 198, 128, 164,
    89,  132, 111, 182, 151, 106, 114, 153, 95,  148, 69,  145, 129, 111, 151, 98,  115, 153, 130, 75,  87,  135,
    166, 169, 97,  97,  175, 172, 151, 76,  130, 103, 100, 195, 88,  93,  132, 146, 94,  146, 88,  138, 134, 147,
    165, 100, 56,  125, 171, 120, 126, 132, 160, 148, 214, 227, 146, 99,  170, 160, 99,  120, 179, 118, 138, 121,
    167, 92,  71,  85,  151, 113, 149, 140, 119, 172, 54,  95,  122, 155, 127, 136, 59,  138, 140, 205, 124, 134,
    101, 109, 107, 160, 137, 126, 67,  157, 159, 89,  142, 114, 132, 84,  158, 106, 148, 147, 95,  147, 98,  118,
    130, 100, 121, 172, 91,  156, 153, 132, 103, 57,  95,  96,  145, 229, 93,  92,
};
// 6x9 -> shortest side 8 (8x12), center crop
const std::vector<int64_t> kPil6x9To8 = {
    46,  73,  100, 137, 170, 198, 237, 75,  113, 158, 195, 100, 56,  101, 135, 111, 166, 132, 179, 83,  45,  101,
    134, 119, 158, 23,  74,  125, 159, 184, 246, 96,  97,  125, 179, 243, 179, 71,  245, 117, 181, 210, 101, 144,
    121, 46,  165, 152, 147, 183, 87,  89,  107, 102, 65,  159, 13,  90,  161, 128, 144, 177, 0,   141, 98,  128,
    165, 195, 234, 227, 30,  23,  187, 194, 76,  83,  126, 147, 113, 134, 155, 173, 53,  71,  123, 148, 119, 145,
    31,  91,  142, 166, 205, 214, 38,  45,  138, 193, 247, 116, 64,  111, 39,  63,  169, 84,  142, 132, 105, 95,
    132, 197, 131, 64,  123, 163, 172, 156, 140, 162, 72,  156, 215, 181, 197, 231, 66,  0,   156, 194, 220, 255,
    181, 20,  59,  87,  169, 75,  113, 149, 148, 125, 159, 202, 142, 47,  100, 144, 144, 122, 165, 214, 109, 154,
    173, 227, 165, 29,  69,  109, 213, 225, 62,  75,  126, 142, 90,  126, 88,  138, 118, 151, 176, 179, 197, 113,
    65,  118, 103, 193, 194, 118, 192, 89,  166, 184, 8,   148, 165, 25,  94,  71,
};
// 40x30 -> shortest side 6 (8x6), center crop
const std::vector<int64_t> kPil40x30To6 = {
    130, 130, 135, 123, 126, 130, 138, 127, 119, 116, 116, 136, 126, 117, 122, 125, 126, 157, 130, 114, 127, 133,
    134, 121, 142, 129, 114, 115, 119, 123, 122, 126, 119, 116, 124, 155, 128, 128, 135, 122, 123, 127, 149, 154,
    138, 131, 138, 113, 145, 131, 130, 120, 126, 126, 131, 124, 116, 119, 132, 131, 122, 141, 139, 135, 138, 117,
    141, 129, 143, 129, 136, 111, 129, 124, 126, 115, 128, 138, 117, 117, 143, 118, 103, 105, 136, 132, 137, 124,
    126, 114, 134, 130, 132, 132, 128, 131, 118, 118, 131, 124, 117, 117, 121, 140, 146, 124, 119, 97,
};

// (1, 3, H, W) uint8 with fine structure, so that resizing without antialias
// would be far off.
at::Tensor pattern_image(int64_t H, int64_t W) {
  at::Tensor img = at::empty({1, 3, H, W}, at::kByte);
  auto a = img.accessor<uint8_t, 4>();
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x)
        a[0][c][y][x] = static_cast<uint8_t>((37 * x + 91 * y + 53 * c + ((x * y) % 17) * 7) % 256);
  return img;
}

// HF's arithmetic for one value: float32(v * (1/255)), then (x - mean) / std in float32.
float hf_normalised(int v, int c) {
  const float x = static_cast<float>(v * (1.0 / 255.0));
  return (x - static_cast<float>(kClipImageMean[c])) / static_cast<float>(kClipImageStd[c]);
}

// Back to 0..255 from a normalised output (B, 3, S, S).
at::Tensor to_pixels(const at::Tensor& out) {
  at::Tensor mean =
      at::tensor({kClipImageMean[0], kClipImageMean[1], kClipImageMean[2]}, at::kDouble).view({1, 3, 1, 1});
  at::Tensor std = at::tensor({kClipImageStd[0], kClipImageStd[1], kClipImageStd[2]}, at::kDouble).view({1, 3, 1, 1});
  return ((out.to(at::kDouble) * std + mean) * 255).round();
}

TEST(ImagePreprocess, ShapesForLandscapePortraitAndSingleImages) {
  EXPECT_EQ(clip_preprocess(pattern_image(48, 64), 32).sizes(), (std::vector<int64_t>{1, 3, 32, 32}));
  EXPECT_EQ(clip_preprocess(pattern_image(70, 40), 32).sizes(), (std::vector<int64_t>{1, 3, 32, 32}));
  EXPECT_EQ(clip_preprocess(pattern_image(20, 30), 32).sizes(), (std::vector<int64_t>{1, 3, 32, 32}));  // upscaled
  at::Tensor batch = at::cat({pattern_image(50, 60), pattern_image(50, 60)}, 0);
  at::Tensor out = clip_preprocess(batch, 24);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 3, 24, 24}));
  EXPECT_EQ(out.scalar_type(), at::kFloat);
  EXPECT_TRUE(out[0].equal(out[1]));
  // (C, H, W) gives a batch of one, as HF's pixel_values.
  at::Tensor single = clip_preprocess(pattern_image(50, 60)[0], 24);
  EXPECT_EQ(single.sizes(), (std::vector<int64_t>{1, 3, 24, 24}));
  EXPECT_TRUE(single.equal(out.narrow(0, 0, 1)));
}

TEST(ImagePreprocess, ConstantImagesNormaliseExactly) {
  for (int v : {0, 1, 100, 254, 255}) {
    for (auto [H, W] : {std::pair<int64_t, int64_t>{32, 32}, {50, 70}, {90, 33}, {10, 12}}) {
      at::Tensor img = at::full({1, 3, H, W}, v, at::kByte);
      at::Tensor out = clip_preprocess(img, 32);
      for (int c = 0; c < 3; ++c) {
        at::Tensor expected = at::full({32, 32}, hf_normalised(v, c), at::kFloat);
        EXPECT_TRUE(out[0][c].equal(expected)) << "value " << v << ", " << H << "x" << W << ", channel " << c;
      }
    }
  }
}

TEST(ImagePreprocess, CenterCropTakesTheMiddle) {
  // 32 x 64 with size 32: no resize; columns 16..47 survive. Left half 10, right half 240.
  at::Tensor img = at::full({1, 3, 32, 64}, 10, at::kByte);
  img.narrow(3, 32, 32).fill_(240);
  at::Tensor out = clip_preprocess(img, 32);
  for (int c = 0; c < 3; ++c) {
    EXPECT_TRUE(out[0][c].narrow(1, 0, 16).eq(hf_normalised(10, c)).all().item<bool>()) << c;
    EXPECT_TRUE(out[0][c].narrow(1, 16, 16).eq(hf_normalised(240, c)).all().item<bool>()) << c;
  }
  // Portrait: rows. 64 x 32, top half 10, bottom 240.
  at::Tensor tall = at::full({1, 3, 64, 32}, 10, at::kByte);
  tall.narrow(2, 32, 32).fill_(240);
  at::Tensor t = clip_preprocess(tall, 32);
  EXPECT_TRUE(t[0][1].narrow(0, 0, 16).eq(hf_normalised(10, 1)).all().item<bool>());
  EXPECT_TRUE(t[0][1].narrow(0, 16, 16).eq(hf_normalised(240, 1)).all().item<bool>());
  // An odd surplus rounds the offset down: 33 columns -> columns 0..31.
  at::Tensor odd = at::full({1, 3, 32, 33}, 0, at::kByte);
  odd.narrow(3, 32, 1).fill_(255);
  EXPECT_TRUE(
      clip_preprocess(odd, 32).eq(clip_preprocess(at::zeros({1, 3, 32, 32}, at::kByte), 32)).all().item<bool>());
}

TEST(ImagePreprocess, AlreadySizedImagesAreNotResampled) {
  at::Tensor img = pattern_image(32, 32);
  at::Tensor out = clip_preprocess(img, 32);
  EXPECT_TRUE(to_pixels(out).equal(img.to(at::kDouble)));
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(out[0][c][5][7].item<float>(), hf_normalised(img[0][c][5][7].item<uint8_t>(), c));
  }
  // Shortest side already `size`: crop only.
  at::Tensor wide = pattern_image(32, 40);
  EXPECT_TRUE(to_pixels(clip_preprocess(wide, 32)).equal(wide.narrow(3, 4, 32).to(at::kDouble)));
}

TEST(ImagePreprocess, GrayscaleBecomesThreeChannels) {
  at::Tensor gray = pattern_image(40, 40).narrow(1, 0, 1).contiguous();  // (1, 1, 40, 40)
  at::Tensor out = clip_preprocess(gray, 32);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 3, 32, 32}));
  at::Tensor px = to_pixels(out);
  EXPECT_TRUE(px[0][0].equal(px[0][1]));
  EXPECT_TRUE(px[0][0].equal(px[0][2]));
  at::Tensor rgb = clip_preprocess(gray.expand({1, 3, 40, 40}).contiguous(), 32);
  EXPECT_TRUE(out.equal(rgb));
}

TEST(ImagePreprocess, ResizeMatchesPillowBicubic) {
  struct Case {
    int64_t H, W, size;
    const std::vector<int64_t>* expected;
  };
  for (const Case& k : {Case{12, 20, 8, &kPil12x20To8}, Case{6, 9, 8, &kPil6x9To8}, Case{40, 30, 6, &kPil40x30To6}}) {
    at::Tensor px = to_pixels(clip_preprocess(pattern_image(k.H, k.W), k.size));
    at::Tensor pil = at::tensor(*k.expected, at::kLong).view({1, 3, k.size, k.size}).to(at::kDouble);
    const double d = test::max_abs_diff(px, pil);
    const double mean = (px - pil).abs().mean().item<double>();
    std::cout << "[parity] clip_preprocess " << k.H << "x" << k.W << " -> " << k.size
              << " vs Pillow bicubic: max |diff| = " << d << " (0..255), mean " << mean << "\n";
    EXPECT_EQ(d, 0.0);  // Pillow's fixed-point arithmetic, reproduced
  }
}

// HF's CLIPImageProcessor on real photos (scikit-image's CC0 samples, as Debian's
// python3-skimage ships them, cropped: tests/fixtures/hf-frontends/clip_image): the
// resized and cropped pixels exactly (landscape and portrait downscales, a 4:1 strip,
// grayscale, a 64 x 48 upscale), and pixel_values of a 64-pixel processor.
TEST(ImagePreprocess, MatchesHfOnRealPhotos) {
  const auto dir = test::frontend_fixtures() / "clip_image";
  const SafetensorsFile ref = SafetensorsFile::open(dir / "reference.safetensors");
  for (const std::string name : {"chelsea", "coffee_portrait", "coffee_strip", "camera_gray", "chelsea_small"}) {
    const auto png = dir / (name + ".png");
    const data::Image im = data::read_png(png, data::read_png_info(png).color ? 3 : 1);
    const at::Tensor pixels =
        at::from_blob(const_cast<uint8_t*>(im.pixels.data()), {1, im.channels, im.height, im.width}, at::kByte).clone();
    const at::Tensor ours = to_pixels(clip_preprocess(pixels, 224))[0];
    const at::Tensor hf = ref.tensor(name + ".pixels").to(at::kDouble);
    const double d = test::max_abs_diff(ours, hf);
    const int64_t differ = ours.ne(hf).sum().item<int64_t>();
    std::cout << "[parity] clip image " << name << " " << im.width << "x" << im.height << " -> 224: max |diff| " << d
              << " (0..255), " << differ << " of " << hf.numel() << " values differ\n";
    EXPECT_EQ(differ, 0) << name;
    if (name == "chelsea") {
      const double dv = test::max_abs_diff(clip_preprocess(pixels, 64)[0], ref.tensor("chelsea.pixel_values_64"));
      std::cout << "[parity] clip image chelsea -> 64 pixel_values: max |diff| " << dv << "\n";
      EXPECT_LE(dv, 1e-6);
    }
  }
}

TEST(ImagePreprocess, CustomMeanAndStd) {
  at::Tensor img = at::full({1, 3, 8, 8}, 51, at::kByte);
  at::Tensor out = clip_preprocess(img, 8, {0.5, 0.5, 0.5}, {0.5, 0.25, 1.0});
  EXPECT_FLOAT_EQ(out[0][0][0][0].item<float>(), (0.2f - 0.5f) / 0.5f);
  EXPECT_FLOAT_EQ(out[0][1][0][0].item<float>(), (0.2f - 0.5f) / 0.25f);
  EXPECT_FLOAT_EQ(out[0][2][0][0].item<float>(), (0.2f - 0.5f) / 1.0f);
}

TEST(ImagePreprocess, BadInputsGiveOneLineErrors) {
  expect_error([] { clip_preprocess(at::zeros({1, 3, 32, 32}), 32); }, {"uint8", "Float"});
  expect_error(
      [] {
        clip_preprocess(at::zeros({1, 4, 32, 32}, at::kByte), 32);
      },
      {"3 (RGB) or 1 (grayscale) channels, found 4", "[1, 4, 32, 32]"});
  expect_error([] { clip_preprocess(at::zeros({32, 32}, at::kByte), 32); }, {"(channels, height, width)", "[32, 32]"});
  expect_error([] { clip_preprocess(at::zeros({1, 1, 3, 32, 32}, at::kByte), 32); }, {"[1, 1, 3, 32, 32]"});
  expect_error([] { clip_preprocess(at::zeros({1, 3, 0, 32}, at::kByte), 32); }, {"empty image"});
  expect_error([] { clip_preprocess(at::zeros({1, 3, 8, 8}, at::kByte), 0); }, {"size must be positive"});
  expect_error([] { clip_preprocess(at::Tensor(), 32); }, {"no image"});
  // A 1 x 100000 image would be resized to 224 x 22,400,000 before its crop: refused.
  expect_error([] { clip_preprocess(at::zeros({1, 1, 1, 100000}, at::kByte), 224); },
               {"100000 x 1 image", "aspect ratio over 32:1"});
  EXPECT_EQ(clip_preprocess(at::zeros({1, 1, 10, 320}, at::kByte), 32).sizes(), at::IntArrayRef({1, 3, 32, 32}));  // 32:1
}

}  // namespace
}  // namespace m4
