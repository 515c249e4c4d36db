// The from-scratch baseline (train/scratch_model.h) on small generated datasets
// whose labels follow a rule the model must learn: each model kind beats chance
// by a wide margin, the seq2seq model learns to reverse word sequences, the same
// seed gives the identical run, and data without a from-scratch model is refused.
#include "train/scratch_model.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

#include "data/dataset_reader.h"
#include "data/dataset_writer.h"
#include "task/task_config.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;
using data::DatasetContents;

TaskConfig task_named(const std::string& name, const std::string& metric, int64_t steps) {
  TaskConfig t;
  t.task = name;
  EXPECT_TRUE(parse_metric(metric, &t.metric));
  t.train.steps = steps;
  t.train.batch_size = 16;
  t.train.seed = 0;
  return t;
}

std::vector<std::string> names(int64_t n, const std::string& stem) {
  std::vector<std::string> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(stem + std::to_string(i));
  return v;
}

class Scratch : public ::testing::Test {
 protected:
  std::shared_ptr<data::DatasetReader> write(const std::string& file, DatasetContents c) {
    c.attrs.source = "m4forge test";
    c.attrs.license = "CC0";
    data::write_dataset(tmp_ / file, c);
    return data::DatasetReader::open(tmp_ / file);
  }
  ScratchResult run(const TaskConfig& t, const std::string& split_stem, ScratchOptions o = {}) {
    const auto start = std::chrono::steady_clock::now();
    ScratchResult r = train_scratch_baseline(t, readers_.at(split_stem + "train"), readers_.at(split_stem + "test"), o);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "[check] " << t.task << " from scratch: " << r.metric << " " << r.value << " on " << r.samples
              << " samples, " << r.steps << " steps, loss " << r.losses.front() << " -> " << r.losses.back() << ", "
              << r.model << " (" << s << " s)\n";
    return r;
  }
  // Class = which quadrant of a noisy 1x16x16 image is bright.
  void quadrant_images(int64_t n, uint64_t seed, const std::string& name) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    at::Tensor img = at::randint(0, 120, {n, 1, 16, 16}, gen, at::kLong);
    at::Tensor label = at::randint(0, 4, {n}, gen, at::kLong);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t q = label[i].item<int64_t>();
      img[i].narrow(1, (q / 2) * 8, 8).narrow(2, (q % 2) * 8, 8).add_(120);
    }
    DatasetContents c;
    c.tensors["image"] = img.to(at::kByte);
    c.tensors["label"] = label;
    c.attrs.label_names = {"top-left", "top-right", "bottom-left", "bottom-right"};
    readers_[name] = write(name + ".h5", c);
  }
  // Class = the keyword group hidden among filler words.
  void keyword_texts(int64_t n, uint64_t seed, const std::string& name) {
    const std::vector<std::vector<std::string>> keys = {{"apple", "pear"}, {"truck", "train"}, {"violin", "drum"}};
    const auto filler = names(40, "w");
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    DatasetContents c;
    std::vector<int64_t> labels;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t y = at::randint(0, 3, {1}, gen, at::kLong).item<int64_t>();
      const int64_t len = at::randint(4, 10, {1}, gen, at::kLong).item<int64_t>();
      const int64_t at_word = at::randint(0, len, {1}, gen, at::kLong).item<int64_t>();
      std::string s;
      for (int64_t j = 0; j < len; ++j) {
        const std::string w = j == at_word ? keys[y][at::randint(0, 2, {1}, gen, at::kLong).item<int64_t>()]
                                           : filler[at::randint(0, 40, {1}, gen, at::kLong).item<int64_t>()];
        s += (j ? " " : "") + w;
      }
      c.texts["text"].push_back(s);
      labels.push_back(y);
    }
    c.tensors["label"] = at::tensor(labels, at::kLong);
    c.attrs.label_names = {"fruit", "vehicle", "instrument"};
    readers_[name] = write(name + ".h5", c);
  }
  // target_text = text's words reversed.
  void reversed_words(int64_t n, uint64_t seed, const std::string& name) {
    const auto vocab = names(10, "tok");
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    DatasetContents c;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t len = at::randint(3, 7, {1}, gen, at::kLong).item<int64_t>();
      std::vector<std::string> w;
      for (int64_t j = 0; j < len; ++j) w.push_back(vocab[at::randint(0, 10, {1}, gen, at::kLong).item<int64_t>()]);
      std::string src, tgt;
      for (int64_t j = 0; j < len; ++j) {
        src += (j ? " " : "") + w[j];
        tgt += (j ? " " : "") + w[len - 1 - j];
      }
      c.texts["text"].push_back(src);
      c.texts["target_text"].push_back(tgt);
    }
    readers_[name] = write(name + ".h5", c);
  }
  // Class = the one axis (of 6) that carries a 5 Hz sine over noise.
  void imu_axes(int64_t n, uint64_t seed, const std::string& name) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    at::Tensor x = at::randn({n, 50, 6}, gen) * 0.5;
    at::Tensor label = at::randint(0, 6, {n}, gen, at::kLong);
    const at::Tensor wave = 2.0 * at::sin(at::arange(50, at::kFloat) * (2 * M_PI * 5 / 50));
    for (int64_t i = 0; i < n; ++i) x[i].select(1, label[i].item<int64_t>()).add_(wave);
    DatasetContents c;
    c.tensors["imu"] = x;
    c.tensors["label"] = label;
    c.attrs.label_names = names(6, "axis");
    readers_[name] = write(name + ".h5", c);
  }
  // Class = a 300 Hz or a 3 kHz tone (random phase and level) in 0.25 s of noise at 16 kHz.
  void tones(int64_t n, uint64_t seed, const std::string& name) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    const int64_t samples = 4000;
    at::Tensor label = at::randint(0, 2, {n}, gen, at::kLong);
    at::Tensor t = at::arange(samples, at::kFloat) / 16000.0;
    at::Tensor audio = at::randn({n, samples}, gen) * 0.05;
    for (int64_t i = 0; i < n; ++i) {
      const double f = label[i].item<int64_t>() == 0 ? 300.0 : 3000.0;
      const double phase = at::rand({1}, gen).item<double>() * 2 * M_PI;
      const double level = 0.2 + 0.5 * at::rand({1}, gen).item<double>();
      audio[i].add_(level * at::sin(t * (2 * M_PI * f) + phase));
    }
    DatasetContents c;
    c.tensors["audio"] = audio;
    c.tensors["audio_length"] = at::full({n}, samples, at::kLong);
    c.tensors["label"] = label;
    c.attrs.label_names = {"low", "high"};
    c.attrs.sample_rate = 16000;
    readers_[name] = write(name + ".h5", c);
  }

  test::TempDir tmp_;
  std::map<std::string, std::shared_ptr<data::DatasetReader>> readers_;
};

TEST_F(Scratch, CnnLearnsWhichQuadrantIsBright) {
  quadrant_images(400, 1, "quad_train");
  quadrant_images(200, 2, "quad_test");
  ScratchResult r = run(task_named("quadrants", "accuracy", 80), "quad_");
  EXPECT_EQ(r.metric, "accuracy");
  EXPECT_EQ(r.samples, 200);
  EXPECT_EQ(r.steps, 80);
  EXPECT_GT(r.value, 0.9);  // chance: 0.25
  EXPECT_NE(r.model.find("cnn"), std::string::npos) << r.model;
  EXPECT_GT(r.parameters, 1000);
}

TEST_F(Scratch, NgramBagLearnsKeywordLabelsAndMacroF1) {
  keyword_texts(600, 1, "kw_train");
  keyword_texts(150, 2, "kw_test");
  ScratchResult r = run(task_named("keywords", "macro_f1", 60), "kw_");
  EXPECT_EQ(r.metric, "macro_f1");
  EXPECT_GT(r.value, 0.85);  // chance: ~0.33
  EXPECT_NE(r.model.find("uni+bigrams"), std::string::npos) << r.model;
}

TEST_F(Scratch, Seq2SeqLearnsToReverseWords) {
  reversed_words(2000, 1, "rev_train");
  reversed_words(100, 2, "rev_test");
  ScratchResult r = run(task_named("reverse", "bleu", 150), "rev_");
  EXPECT_EQ(r.metric, "bleu");
  EXPECT_LT(r.losses.back(), 0.2 * r.losses.front());
  EXPECT_GT(r.value, 50.0);  // BLEU 0..100; an untrained model scores ~0
  EXPECT_NE(r.model.find("gru encoder-decoder"), std::string::npos) << r.model;
}

TEST_F(Scratch, ImuAndAudioCnnsBeatChance) {
  imu_axes(300, 1, "imu_train");
  imu_axes(120, 2, "imu_test");
  ScratchResult imu = run(task_named("imu_axes", "accuracy", 60), "imu_");
  EXPECT_GT(imu.value, 0.8);  // chance: 1/6
  EXPECT_NE(imu.model.find("1-d cnn"), std::string::npos) << imu.model;
  tones(200, 1, "tone_train");
  tones(100, 2, "tone_test");
  ScratchResult audio = run(task_named("tones", "accuracy", 30), "tone_");
  EXPECT_GT(audio.value, 0.9);  // chance: 0.5
  EXPECT_NE(audio.model.find("log-mel"), std::string::npos) << audio.model;
}

TEST_F(Scratch, SameSeedSameRunOtherSeedOtherRun) {
  quadrant_images(64, 1, "seed_train");
  quadrant_images(64, 2, "seed_test");
  const TaskConfig t = task_named("quadrants", "accuracy", 12);
  ScratchResult a = run(t, "seed_"), b = run(t, "seed_");
  EXPECT_EQ(a.losses, b.losses);
  EXPECT_EQ(a.value, b.value);
  ScratchOptions o;
  o.seed = 7;
  ScratchResult c = run(t, "seed_", o);
  EXPECT_NE(a.losses, c.losses);
}

TEST_F(Scratch, OptionsOverrideTheTaskAndLimitTheEvaluation) {
  quadrant_images(64, 1, "opt_train");
  quadrant_images(100, 2, "opt_test");
  ScratchOptions o;
  o.steps = 5;
  o.lr = 1e-4;
  o.eval_limit = 70;
  ScratchResult r = run(task_named("quadrants", "accuracy", 200), "opt_", o);
  EXPECT_EQ(r.steps, 5);
  EXPECT_EQ(r.losses.size(), 5u);
  EXPECT_EQ(r.lr, 1e-4);
  EXPECT_EQ(r.samples, 70);
}

TEST_F(Scratch, DataWithoutAFromScratchModelIsRefused) {
  // Retrieval: images with captions, no labels, recall@5.
  DatasetContents c;
  c.tensors["image"] = at::zeros({4, 3, 8, 8}, at::kByte);
  c.texts["text"] = {"a", "b", "c", "d"};
  readers_["ret_train"] = write("ret_train.h5", c);
  readers_["ret_test"] = write("ret_test.h5", c);
  test::expect_error([&] { run(task_named("image_retrieval", "recall@5", 10), "ret_"); },
                     {"task image_retrieval", "no from-scratch baseline", "image, text", "recall@5"});
  // Labelled text scored with BLEU is not classification either.
  keyword_texts(20, 1, "bleu_train");
  keyword_texts(20, 2, "bleu_test");
  test::expect_error([&] { run(task_named("odd", "bleu", 10), "bleu_"); }, {"task odd", "no from-scratch baseline"});
}

TEST_F(Scratch, TestSplitWithoutTheInputIsRefused) {
  quadrant_images(16, 1, "miss_train");
  keyword_texts(16, 2, "miss_test");
  test::expect_error([&] { run(task_named("quadrants", "accuracy", 2), "miss_"); },
                     {"task quadrants", "has no 'image' dataset"});
}

}  // namespace
}  // namespace m4
