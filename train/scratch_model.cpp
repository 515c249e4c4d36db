// Small task-specific models trained from scratch (see scratch_model.h): CNNs
// for images, log-mel audio and IMU windows; fastText's bag of hashed n-grams
// (Joulin et al., "Bag of Tricks for Efficient Text Classification", 2017);
// and a GRU encoder-decoder with Luong's dot attention (Luong et al., 2015).
#include "train/scratch_model.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "core/error.h"
#include "data/dataset_reader.h"
#include "data/loader.h"
#include "firmware/log_mel.h"
#include "task/metrics.h"
#include "task/task_config.h"
#include "train/adamw.h"
#include "train/schedule.h"

namespace m4 {
namespace {

using data::Batch;
namespace ds = data::ds;

// "950", "29k", "4.8M"
std::string count_str(int64_t n) {
  char buf[32];
  if (n < 1000) {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  } else if (n < 1000000) {
    std::snprintf(buf, sizeof buf, "%lldk", static_cast<long long>((n + 500) / 1000));
  } else {
    std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(n) / 1e6);
  }
  return buf;
}

bool is_classification(const MetricSpec& m) {
  return m.kind == MetricKind::kAccuracy || m.kind == MetricKind::kMacroF1;
}

std::vector<int64_t> to_vector(const at::Tensor& t) {
  at::Tensor c = t.to(at::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

// A model with its own seeded generator for initialisation, so results depend
// on the seed alone and the global RNG is left untouched.
class ScratchNet : public torch::nn::Module {
 public:
  explicit ScratchNet(uint64_t seed) : gen_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}
  // The datasets a batch must hold, besides `label` / `target_text`.
  virtual std::vector<std::string> inputs() const = 0;
  virtual std::string describe() const = 0;
  virtual double default_lr() const { return 3e-3; }
  // Parameters whose gradient is row-sparse (embedding tables); LazyAdamW updates them.
  virtual std::vector<at::Tensor> sparse_parameters() const { return {}; }
  virtual at::Tensor loss(const Batch& b) = 0;
  // Classifiers append label ids, generators texts.
  virtual void predict(const Batch& b, std::vector<int64_t>* labels, std::vector<std::string>* texts) = 0;

 protected:
  at::Tensor uniform(const std::string& name, at::IntArrayRef shape, double bound) {
    at::Tensor t = at::empty(shape, at::kFloat);
    t.uniform_(-bound, bound, gen_);
    return register_parameter(name, t);
  }
  // Weight and bias with torch.nn's default init for Linear, Conv and GRU: U(+-1/sqrt(fan_in)).
  std::pair<at::Tensor, at::Tensor> dense(const std::string& name, std::vector<int64_t> weight_shape,
                                          int64_t fan_in = 0) {
    if (fan_in == 0) {
      fan_in = 1;
      for (size_t i = 1; i < weight_shape.size(); ++i) fan_in *= weight_shape[i];
    }
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    at::Tensor w = uniform(name + "_weight", weight_shape, bound);
    return {w, uniform(name + "_bias", {weight_shape[0]}, bound)};
  }

  at::Generator gen_;
};

class Classifier : public ScratchNet {
 public:
  using ScratchNet::ScratchNet;
  virtual at::Tensor logits(const Batch& b) = 0;  // (B, classes)
  at::Tensor loss(const Batch& b) override {
    return at::nll_loss(at::log_softmax(logits(b), 1), b.tensors.at(ds::kLabel));
  }
  void predict(const Batch& b, std::vector<int64_t>* labels, std::vector<std::string>*) override {
    const auto p = to_vector(logits(b).argmax(1));
    labels->insert(labels->end(), p.begin(), p.end());
  }
};

// Two conv -> ReLU -> 2x max-pool blocks, then average pooling to a 4x4 grid
// (4 steps in 1-D), which keeps coarse position, and one linear layer.
class ConvClassifier : public Classifier {
 public:
  static constexpr int64_t kC1 = 32, kC2 = 64, kGrid = 4;
  ConvClassifier(uint64_t seed, int dims, int64_t in_channels, int64_t classes) : Classifier(seed), dims_(dims) {
    const int64_t k = dims == 2 ? 3 : 5;
    std::vector<int64_t> w1 = {kC1, in_channels, k}, w2 = {kC2, kC1, k};
    if (dims == 2) {
      w1.push_back(k);
      w2.push_back(k);
    }
    std::tie(w1_, b1_) = dense("conv1", w1);
    std::tie(w2_, b2_) = dense("conv2", w2);
    std::tie(wo_, bo_) = dense("out", {classes, kC2 * (dims == 2 ? kGrid * kGrid : kGrid)});
  }
  double default_lr() const override { return 1e-2; }
  // (B, C, H, W) or (B, C, T) float
  virtual at::Tensor features(const Batch& b) = 0;
  at::Tensor logits(const Batch& b) override {
    at::Tensor x = features(b);
    if (dims_ == 2) {
      for (auto [w, bias] : {std::pair{w1_, b1_}, std::pair{w2_, b2_}}) {
        x = at::max_pool2d(at::relu(at::conv2d(x, w, bias, {1, 1}, {1, 1})), {2, 2}, {2, 2}, {0, 0}, {1, 1}, true);
      }
      x = at::adaptive_avg_pool2d(x, {kGrid, kGrid});  // (B, 64, 4, 4)
    } else {
      for (auto [w, bias] : {std::pair{w1_, b1_}, std::pair{w2_, b2_}}) {
        x = at::max_pool1d(at::relu(at::conv1d(x, w, bias, {1}, {2})), {2}, {2}, {0}, {1}, true);
      }
      x = at::adaptive_avg_pool1d(x, {kGrid});  // (B, 64, 4)
    }
    return at::linear(x.flatten(1), wo_, bo_);
  }

 protected:
  std::string conv_str() const {
    const char* k = dims_ == 2 ? "3x3" : "5";
    return std::string(dims_ == 2 ? "cnn" : "1-d cnn") + " 2x conv" + k + " (" + std::to_string(kC1) + ", " +
           std::to_string(kC2) + ")";
  }

 private:
  int dims_;
  at::Tensor w1_, b1_, w2_, b2_, wo_, bo_;
};

// Pixels scaled to [0, 1]; images larger than 32x32 are area-downscaled to fit.
class ImageCnn : public ConvClassifier {
 public:
  static constexpr int64_t kMaxSide = 32;
  ImageCnn(uint64_t seed, const std::vector<int64_t>& shape, int64_t classes)
      : ConvClassifier(seed, 2, shape[1], classes), c_(shape[1]), h_(shape[2]), w_(shape[3]) {
    const double scale = std::min(1.0, static_cast<double>(kMaxSide) / static_cast<double>(std::max(h_, w_)));
    h_ = std::max<int64_t>(1, std::llround(static_cast<double>(h_) * scale));
    w_ = std::max<int64_t>(1, std::llround(static_cast<double>(w_) * scale));
  }
  std::vector<std::string> inputs() const override { return {ds::kImage}; }
  std::string describe() const override {
    return conv_str() + " on " + std::to_string(c_) + "x" + std::to_string(h_) + "x" + std::to_string(w_) + " pixels";
  }
  at::Tensor features(const Batch& b) override {
    at::Tensor x = b.tensors.at(ds::kImage).to(at::kFloat).div_(255.0);  // (B, C, H, W)
    if (x.size(2) != h_ || x.size(3) != w_) x = at::adaptive_avg_pool2d(x, {h_, w_});
    return x;
  }

 private:
  int64_t c_, h_, w_;
};

// Whisper-style log-mel with 40 bands (16 kHz; other rates are resampled
// linearly), at most 200 frames, as a one-channel image.
class AudioCnn : public ConvClassifier {
 public:
  static constexpr int64_t kRate = 16000, kMels = 40, kMaxFrames = 200;
  AudioCnn(uint64_t seed, int64_t samples, int64_t sample_rate, int64_t classes)
      : ConvClassifier(seed, 2, 1, classes), rate_(sample_rate) {
    const int64_t n = samples * kRate / rate_;
    mel_.n_mels = kMels;
    mel_.hop = std::max<int64_t>(160, (n + kMaxFrames - 1) / kMaxFrames);
    mel_.frames = std::max<int64_t>(1, (n + mel_.hop - 1) / mel_.hop);
  }
  std::vector<std::string> inputs() const override { return {ds::kAudio}; }
  std::string describe() const override {
    return conv_str() + " on " + std::to_string(kMels) + "x" + std::to_string(mel_.frames) + " log-mel";
  }
  at::Tensor features(const Batch& b) override {
    at::Tensor a = b.tensors.at(ds::kAudio);  // (B, T)
    if (rate_ != kRate) {
      a = at::upsample_linear1d(a.unsqueeze(1), {a.size(1) * kRate / rate_}, false).squeeze(1);
    }
    return whisper_log_mel(a, mel_).unsqueeze(1);  // (B, 1, 40, frames)
  }

 private:
  int64_t rate_;
  LogMelOptions mel_;
};

// Each axis standardised with the mean and std of (up to) the first 1024
// training windows.
class ImuCnn : public ConvClassifier {
 public:
  ImuCnn(uint64_t seed, const data::DatasetReader& train, int64_t classes) : ConvClassifier(seed, 1, 6, classes) {
    const auto& shape = train.layout(ds::kImu).shape;
    steps_ = shape[1];
    std::vector<int64_t> idx(static_cast<size_t>(std::min<int64_t>(shape[0], 1024)));
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
    at::Tensor x = train.read(ds::kImu, idx).to(at::kFloat).reshape({-1, 6});  // (n * T, 6)
    mean_ = register_buffer("mean", x.mean(0));
    std_ = register_buffer("std", x.std(0).clamp_min(1e-6));
  }
  std::vector<std::string> inputs() const override { return {ds::kImu}; }
  std::string describe() const override { return conv_str() + " on 6x" + std::to_string(steps_) + " imu"; }
  at::Tensor features(const Batch& b) override {
    return ((b.tensors.at(ds::kImu) - mean_) / std_).transpose(1, 2).contiguous();  // (B, 6, T)
  }

 private:
  int64_t steps_;
  at::Tensor mean_, std_;
};

// Lower-cased ASCII words: runs of letters, digits and non-ASCII bytes.
std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> out;
  std::string w;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c >= 0x80) {
      w += static_cast<char>(std::tolower(c));
    } else if (!w.empty()) {
      out.push_back(std::move(w));
      w.clear();
    }
  }
  if (!w.empty()) out.push_back(std::move(w));
  return out;
}

uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// fastText's supervised model: every word and word bigram (plus an end-of-text
// token, so no bag is empty) hashed into a bucket -> mean of their embeddings
// -> linear.
class NgramBag : public Classifier {
 public:
  static constexpr int64_t kBuckets = int64_t{1} << 18, kDim = 32;
  NgramBag(uint64_t seed, int64_t classes) : Classifier(seed) {
    emb_ = uniform("embedding", {kBuckets, kDim}, 1.0 / kDim);  // fastText's init
    std::tie(wo_, bo_) = dense("out", {classes, kDim});
  }
  std::vector<std::string> inputs() const override { return {ds::kText}; }
  std::string describe() const override {
    return "bag of hashed word uni+bigrams, 2^18 buckets x " + std::to_string(kDim);
  }
  double default_lr() const override { return 1e-1; }  // fastText's
  std::vector<at::Tensor> sparse_parameters() const override { return {emb_}; }
  at::Tensor logits(const Batch& b) override {
    std::vector<int64_t> ids, offsets;
    for (const auto& text : b.texts.at(ds::kText)) {
      offsets.push_back(static_cast<int64_t>(ids.size()));
      const auto w = words_of(text);
      for (size_t i = 0; i < w.size(); ++i) {
        ids.push_back(static_cast<int64_t>(fnv1a(w[i]) % kBuckets));
        if (i > 0) ids.push_back(static_cast<int64_t>(fnv1a(w[i], fnv1a(w[i - 1] + " ")) % kBuckets));
      }
      ids.push_back(static_cast<int64_t>(fnv1a("</s>") % kBuckets));
    }
    at::Tensor bag = std::get<0>(at::embedding_bag(emb_, at::tensor(ids, at::kLong), at::tensor(offsets, at::kLong),
                                                   false, /*mode=mean*/ 1, /*sparse=*/true));  // (B, dim)
    return at::linear(bag, wo_, bo_);
  }

 private:
  at::Tensor emb_, wo_, bo_;
};

// Word vocabulary: the most frequent training tokens (ties by spelling) after
// four specials.
struct Vocab {
  static constexpr int64_t kPad = 0, kUnk = 1, kBos = 2, kEos = 3;
  std::vector<std::string> words = {"<pad>", "<unk>", "<bos>", "<eos>"};
  std::unordered_map<std::string, int64_t> ids;

  static Vocab build(const std::vector<std::vector<std::string>>& sentences, size_t max_words) {
    std::unordered_map<std::string, int64_t> counts;
    for (const auto& s : sentences) {
      for (const auto& w : s) ++counts[w];
    }
    std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    Vocab v;
    for (size_t i = 0; i < sorted.size() && i < max_words; ++i) v.words.push_back(sorted[i].first);
    for (size_t i = 0; i < v.words.size(); ++i) v.ids[v.words[i]] = static_cast<int64_t>(i);
    return v;
  }
  int64_t size() const { return static_cast<int64_t>(words.size()); }
  int64_t id(const std::string& w) const {
    auto it = ids.find(w);
    return it == ids.end() ? kUnk : it->second;
  }
};

std::vector<std::string> split_spaces(const std::string& s) {
  std::vector<std::string> out;
  std::string w;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (!w.empty()) out.push_back(std::move(w));
      w.clear();
    } else {
      w += c;
    }
  }
  if (!w.empty()) out.push_back(std::move(w));
  return out;
}

// Word-level encoder-decoder: GRU encoder, GRU decoder started from the last
// encoder state, dot attention over the encoder states on each decoder output
// (Luong's "global, dot" without input feeding, so training runs the decoder
// over the whole target at once), greedy decoding. Tokens: sacreBLEU's 13a
// tokenizer (source always; target for BLEU, so BLEU sees the same tokens) or
// whitespace (target for WER); outputs are the tokens joined by spaces.
class Seq2Seq : public ScratchNet {
 public:
  static constexpr int64_t kEmb = 128, kHidden = 256, kMaxLen = 50;
  static constexpr size_t kVocab = 8000;
  Seq2Seq(uint64_t seed, const data::DatasetReader& train, bool bleu_tokens) : ScratchNet(seed), bleu_(bleu_tokens) {
    // Vocabularies from (up to) the first 200k training pairs.
    std::vector<int64_t> idx(static_cast<size_t>(std::min<int64_t>(train.num_samples(), 200000)));
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
    std::vector<std::vector<std::string>> src, tgt;
    for (const auto& s : train.read_text(ds::kText, idx)) src.push_back(source_tokens(s));
    for (const auto& s : train.read_text(ds::kTargetText, idx)) tgt.push_back(target_tokens(s));
    src_ = Vocab::build(src, kVocab);
    tgt_ = Vocab::build(tgt, kVocab);
    src_emb_ = uniform("src_embedding", {src_.size(), kEmb}, 0.1);
    tgt_emb_ = uniform("tgt_embedding", {tgt_.size(), kEmb}, 0.1);
    for (const char* part : {"enc", "dec"}) {
      auto& g = part[0] == 'e' ? enc_ : dec_;
      auto [w_ih, b_ih] = dense(std::string(part) + "_ih", {3 * kHidden, kEmb}, kHidden);
      auto [w_hh, b_hh] = dense(std::string(part) + "_hh", {3 * kHidden, kHidden}, kHidden);
      g = {w_ih, w_hh, b_ih, b_hh};  // at::gru's order
    }
    std::tie(comb_w_, comb_b_) = dense("combine", {kHidden, 2 * kHidden});
    std::tie(out_w_, out_b_) = dense("out", {tgt_.size(), kHidden});
  }
  std::vector<std::string> inputs() const override { return {ds::kText}; }
  std::string describe() const override {
    return "gru encoder-decoder with dot attention, vocab " + std::to_string(src_.size()) + "/" +
           std::to_string(tgt_.size()) + ", emb " + std::to_string(kEmb) + ", hidden " + std::to_string(kHidden);
  }

  at::Tensor loss(const Batch& b) override {
    const Encoded e = encode(b.texts.at(ds::kText));
    const auto& targets = b.texts.at(ds::kTargetText);
    std::vector<std::vector<int64_t>> in, out;
    for (const auto& t : targets) {
      std::vector<int64_t> y = ids_of(tgt_, target_tokens(t));
      in.push_back(y);
      in.back().insert(in.back().begin(), Vocab::kBos);
      out.push_back(std::move(y));
      out.back().push_back(Vocab::kEos);
    }
    at::Tensor x = at::embedding(tgt_emb_, padded(in).first);                                        // (B, T, E)
    at::Tensor d = std::get<0>(at::gru(x, e.last, dec_, true, 1, 0.0, is_training(), false, true));  // (B, T, H)
    at::Tensor logp = at::log_softmax(attend(d, e), 2);                                              // (B, T, V)
    return at::nll_loss(logp.reshape({-1, tgt_.size()}), padded(out).first.reshape({-1}), {}, at::Reduction::Mean,
                        Vocab::kPad);
  }

  void predict(const Batch& b, std::vector<int64_t>*, std::vector<std::string>* texts) override {
    const Encoded e = encode(b.texts.at(ds::kText));
    const int64_t n = e.states.size(0);
    const int64_t max_len = std::min<int64_t>(2 * e.states.size(1) + 10, kMaxLen + 10);
    at::Tensor tok = at::full({n, 1}, Vocab::kBos, at::kLong), h = e.last;
    std::vector<std::vector<std::string>> words(static_cast<size_t>(n));
    std::vector<bool> done(static_cast<size_t>(n), false);
    int64_t open = n;
    for (int64_t t = 0; t < max_len && open > 0; ++t) {
      at::Tensor d;
      std::tie(d, h) = at::gru(at::embedding(tgt_emb_, tok), h, dec_, true, 1, 0.0, false, false, true);
      tok = attend(d, e).argmax(2);  // (B, 1)
      const auto next = to_vector(tok);
      for (size_t i = 0; i < next.size(); ++i) {
        if (done[i]) continue;
        if (next[i] == Vocab::kEos) {
          done[i] = true;
          --open;
        } else if (next[i] > Vocab::kEos) {
          words[i].push_back(tgt_.words[static_cast<size_t>(next[i])]);
        }
      }
    }
    for (const auto& w : words) {
      std::string s;
      for (const auto& x : w) s += (s.empty() ? "" : " ") + x;
      texts->push_back(std::move(s));
    }
  }

 private:
  struct Encoded {
    at::Tensor states;  // (B, S, H)
    at::Tensor mask;    // (B, S) bool, true on real tokens
    at::Tensor last;    // (1, B, H): the state after each source's last token
  };

  std::vector<std::string> source_tokens(const std::string& s) const { return split_spaces(tokenize_13a(s)); }
  std::vector<std::string> target_tokens(const std::string& s) const {
    return split_spaces(bleu_ ? tokenize_13a(s) : s);
  }
  static std::vector<int64_t> ids_of(const Vocab& v, const std::vector<std::string>& words) {
    std::vector<int64_t> ids;
    for (size_t i = 0; i < words.size() && static_cast<int64_t>(i) < kMaxLen; ++i) ids.push_back(v.id(words[i]));
    return ids;
  }
  // Right-padded (B, max length) ids and the lengths (B).
  static std::pair<at::Tensor, at::Tensor> padded(const std::vector<std::vector<int64_t>>& seqs) {
    size_t len = 1;
    for (const auto& s : seqs) len = std::max(len, s.size());
    at::Tensor ids = at::full({static_cast<int64_t>(seqs.size()), static_cast<int64_t>(len)}, Vocab::kPad, at::kLong);
    std::vector<int64_t> lengths;
    auto a = ids.accessor<int64_t, 2>();
    for (size_t i = 0; i < seqs.size(); ++i) {
      for (size_t j = 0; j < seqs[i].size(); ++j) a[static_cast<int64_t>(i)][static_cast<int64_t>(j)] = seqs[i][j];
      lengths.push_back(static_cast<int64_t>(seqs[i].size()));
    }
    return {ids, at::tensor(lengths, at::kLong)};
  }

  Encoded encode(const std::vector<std::string>& texts) {
    std::vector<std::vector<int64_t>> seqs;
    for (const auto& t : texts) {
      seqs.push_back(ids_of(src_, source_tokens(t)));
      seqs.back().push_back(Vocab::kEos);  // never empty
    }
    auto [ids, lengths] = padded(seqs);
    const int64_t n = ids.size(0);
    at::Tensor h0 = at::zeros({1, n, kHidden});
    Encoded e;
    e.states = std::get<0>(at::gru(at::embedding(src_emb_, ids), h0, enc_, true, 1, 0.0, is_training(), false, true));
    e.mask = at::arange(ids.size(1), at::kLong).unsqueeze(0) < lengths.unsqueeze(1);
    e.last = e.states.gather(1, (lengths - 1).view({n, 1, 1}).expand({n, 1, kHidden})).transpose(0, 1).contiguous();
    return e;
  }
  // d: (B, T, H) decoder outputs -> (B, T, V) logits
  at::Tensor attend(const at::Tensor& d, const Encoded& e) const {
    at::Tensor scores = at::bmm(d, e.states.transpose(1, 2)).masked_fill(~e.mask.unsqueeze(1), -1e9);  // (B, T, S)
    at::Tensor context = at::bmm(at::softmax(scores, 2), e.states);                                    // (B, T, H)
    return at::linear(at::tanh(at::linear(at::cat({d, context}, 2), comb_w_, comb_b_)), out_w_, out_b_);
  }

  bool bleu_;
  Vocab src_, tgt_;
  at::Tensor src_emb_, tgt_emb_, comb_w_, comb_b_, out_w_, out_b_;
  std::vector<at::Tensor> enc_, dec_;
};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::unique_ptr<ScratchNet> make_net(const TaskConfig& task, const data::DatasetReader& train,
                                     const data::DatasetReader& test, uint64_t seed) {
  const MetricKind m = task.metric.kind;
  const bool classification = is_classification(task.metric);
  const bool generation = m == MetricKind::kBleu || m == MetricKind::kWer;
  const bool signal = train.has(ds::kImage) || train.has(ds::kAudio) || train.has(ds::kImu);
  std::vector<std::string> present;
  for (const auto& l : train.layouts()) present.push_back(l.name);
  auto unsupported = [&]() {
    M4_FAIL(ErrorCode::kMismatch, "task ", task.task, ": no from-scratch baseline exists for it (",
            train.path().string(), " has ", join(present), "; metric ", task.metric.name(),
            "); from-scratch models cover image, audio, imu or text with label (accuracy, macro_f1) and text to "
            "target_text without other inputs (bleu, wer)");
  };
  std::unique_ptr<ScratchNet> net;
  if (classification && train.has(ds::kLabel)) {
    int64_t classes = static_cast<int64_t>(train.attributes().label_names.size());
    for (const auto* r : {&train, &test}) {
      for (int64_t y : r->labels()) classes = std::max(classes, y + 1);
    }
    if (train.has(ds::kImage)) {
      net = std::make_unique<ImageCnn>(seed, train.layout(ds::kImage).shape, classes);
    } else if (train.has(ds::kAudio)) {
      M4_CHECK(train.attributes().sample_rate.has_value() && *train.attributes().sample_rate > 0, ErrorCode::kBadInput,
               train.path().string(), ": audio without a positive sample_rate attribute");
      net =
          std::make_unique<AudioCnn>(seed, train.layout(ds::kAudio).shape[1], *train.attributes().sample_rate, classes);
    } else if (train.has(ds::kImu)) {
      net = std::make_unique<ImuCnn>(seed, train, classes);
    } else if (train.has(ds::kText)) {
      net = std::make_unique<NgramBag>(seed, classes);
    }
  } else if (generation && !signal && train.has(ds::kText) && train.has(ds::kTargetText)) {
    net = std::make_unique<Seq2Seq>(seed, train, m == MetricKind::kBleu);
  }
  if (!net) unsupported();
  std::vector<std::string> needed = net->inputs();
  needed.push_back(classification ? ds::kLabel : ds::kTargetText);
  for (const auto& name : needed) {
    M4_CHECK(test.has(name), ErrorCode::kMismatch, "task ", task.task, ": test split ", test.path().string(),
             " has no '", name, "' dataset, which the from-scratch model needs (the training split has it)");
  }
  if (train.has(ds::kImage)) {
    const auto &a = train.layout(ds::kImage).shape, &b = test.layout(ds::kImage).shape;
    M4_CHECK(a[1] == b[1], ErrorCode::kMismatch, "task ", task.task, ": training images have ", a[1],
             " channels but test images ", b[1], " (", test.path().string(), ")");
  }
  if (train.has(ds::kAudio) && classification) {
    M4_CHECK(test.attributes().sample_rate == train.attributes().sample_rate, ErrorCode::kMismatch, "task ", task.task,
             ": training audio is at ", *train.attributes().sample_rate, " Hz but test audio at ",
             test.attributes().sample_rate.value_or(0), " Hz (", test.path().string(), ")");
  }
  return net;
}

// AdamW on the rows a row-sparse gradient touches (TensorFlow's LazyAdam):
// a 2^18-row table then costs what a batch uses, not a dense pass per step.
// Moments and decay of untouched rows wait until their next gradient.
class LazyAdamW {
 public:
  LazyAdamW(std::vector<at::Tensor> params, AdamWOptions o) : params_(std::move(params)), o_(o) {
    for (const auto& p : params_) {
      m_.push_back(at::zeros_like(p));
      v_.push_back(at::zeros_like(p));
    }
  }
  void step(double lr) {
    at::NoGradGuard ng;
    ++step_;
    const double bc1 = 1 - std::pow(o_.beta1, static_cast<double>(step_));
    const double bc2_sqrt = std::sqrt(1 - std::pow(o_.beta2, static_cast<double>(step_)));
    for (size_t i = 0; i < params_.size(); ++i) {
      at::Tensor& p = params_[i];
      if (!p.grad().defined()) continue;
      const at::Tensor g = p.grad().coalesce();
      const at::Tensor rows = g.indices()[0], gv = g.values();  // (n), (n, D)
      at::Tensor m = m_[i].index_select(0, rows).mul_(o_.beta1).add_(gv, 1 - o_.beta1);
      at::Tensor v = v_[i].index_select(0, rows).mul_(o_.beta2).addcmul_(gv, gv, 1 - o_.beta2);
      at::Tensor w = p.index_select(0, rows).mul_(1 - lr * o_.weight_decay);
      w.addcdiv_(m, (v.sqrt() / bc2_sqrt).add_(o_.eps), -lr / bc1);
      m_[i].index_copy_(0, rows, m);
      v_[i].index_copy_(0, rows, v);
      p.index_copy_(0, rows, w);
    }
  }
  void zero_grad() {
    for (auto& p : params_) p.mutable_grad() = at::Tensor();
  }

 private:
  std::vector<at::Tensor> params_, m_, v_;
  AdamWOptions o_;
  int64_t step_ = 0;
};

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  at::NoGradGuard ng;
  double total = 0;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    const at::Tensor g = p.grad().is_sparse() ? p.grad().coalesce().values() : p.grad();
    total += g.to(at::kDouble).pow(2).sum().item<double>();
  }
  total = std::sqrt(total);
  if (max_norm > 0 && total > max_norm) {
    for (const auto& p : params) {
      if (p.grad().defined()) p.grad().mul_(max_norm / (total + 1e-6));
    }
  }
  return total;
}

// Trains every parameter: AdamW on the dense ones, LazyAdamW on row-sparse tables.
std::vector<double> fit(ScratchNet& net, const TaskConfig& task, const std::shared_ptr<data::DatasetReader>& train,
                        const std::vector<std::string>& fields, int64_t steps, int64_t batch, double lr,
                        uint64_t seed) {
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.seed = seed;
  lo.drop_last = false;  // a training split smaller than one batch still trains
  lo.fields = fields;
  data::Loader loader(train, lo);
  const std::vector<at::Tensor> params = net.parameters(), sparse = net.sparse_parameters();
  std::vector<at::Tensor> dense;
  for (const auto& p : params) {
    if (std::none_of(sparse.begin(), sparse.end(), [&](const at::Tensor& s) { return s.is_same(p); })) {
      dense.push_back(p);
    }
  }
  const AdamWOptions ao{lr, task.optim.beta1, task.optim.beta2, task.optim.eps, task.optim.weight_decay};
  AdamW opt(dense, ao);
  LazyAdamW lazy(sparse, ao);
  const int64_t warmup = std::min(task.optim.warmup_steps, steps / 10);
  std::vector<double> losses;
  net.train();
  for (int64_t step = 0; step < steps; ++step) {
    std::optional<Batch> b = loader.next();
    if (!b) b = loader.next();  // the next epoch
    opt.zero_grad();
    lazy.zero_grad();
    at::Tensor loss = net.loss(*b);
    loss.backward();
    clip_grad_norm(params, task.optim.clip_grad_norm);
    const double step_lr = scheduled_lr(task.optim.schedule, lr, step, warmup, steps);
    opt.step(step_lr);
    lazy.step(step_lr);
    losses.push_back(loss.item<double>());
    if ((step + 1) % 50 == 0 || step + 1 == steps) {
      spdlog::info("from-scratch step {}/{} loss {:.4f}", step + 1, steps, losses.back());
    }
  }
  return losses;
}

// The task's metric on exactly the first `limit` test samples (0: all).
EvalResult score(ScratchNet& net, const TaskConfig& task, const std::shared_ptr<data::DatasetReader>& test,
                 const std::vector<std::string>& fields, int64_t limit) {
  net.eval();
  at::NoGradGuard ng;
  data::LoaderOptions eo;
  eo.batch_size = 64;
  eo.shuffle = false;
  eo.drop_last = false;
  eo.fields = fields;
  data::Loader loader(test, eo);
  const bool classification = is_classification(task.metric);
  std::vector<int64_t> preds, refs;
  std::vector<std::string> hyps, refs_text;
  int64_t n = 0;
  while (auto b = loader.next()) {
    net.predict(*b, &preds, &hyps);
    if (classification) {
      const auto y = to_vector(b->tensors.at(ds::kLabel));
      refs.insert(refs.end(), y.begin(), y.end());
    } else {
      const auto& t = b->texts.at(ds::kTargetText);
      refs_text.insert(refs_text.end(), t.begin(), t.end());
    }
    n += b->size();
    if (limit > 0 && n >= limit) break;
  }
  if (limit > 0 && n > limit) {
    n = limit;
    for (auto* v : {&preds, &refs}) v->resize(std::min<size_t>(v->size(), static_cast<size_t>(limit)));
    for (auto* v : {&hyps, &refs_text}) v->resize(std::min<size_t>(v->size(), static_cast<size_t>(limit)));
  }
  M4_CHECK(n > 0, ErrorCode::kBadInput, test->path().string(), ": the test split of task ", task.task, " is empty");
  for (size_t i = 0; i < hyps.size() && i < 3; ++i) {
    spdlog::debug("from-scratch output {}: \"{}\" (reference \"{}\")", i, hyps[i], refs_text[i]);
  }
  EvalResult r;
  r.metric = task.metric.name();
  r.samples = n;
  switch (task.metric.kind) {
    case MetricKind::kAccuracy: r.value = accuracy(preds, refs); break;
    case MetricKind::kMacroF1: r.value = macro_f1(preds, refs); break;
    case MetricKind::kBleu: r.value = corpus_bleu(hyps, refs_text); break;
    case MetricKind::kWer: r.value = wer(hyps, refs_text); break;
    default: M4_FAIL(ErrorCode::kInternal, "task ", task.task, ": metric ", r.metric, " has no from-scratch scoring");
  }
  return r;
}

}  // namespace

ScratchResult train_scratch_baseline(const TaskConfig& task, const std::shared_ptr<data::DatasetReader>& train,
                                     const std::shared_ptr<data::DatasetReader>& test, const ScratchOptions& o) {
  M4_CHECK(train && test, ErrorCode::kInternal, "from-scratch baseline: missing a dataset split");
  const int64_t steps = o.steps > 0 ? o.steps : task.train.steps;
  const int64_t batch = o.batch_size > 0 ? o.batch_size : task.train.batch_size;
  M4_CHECK(steps > 0 && batch > 0 && o.lr >= 0 && o.eval_limit >= 0, ErrorCode::kInvalidArgument, "task ", task.task,
           ": the from-scratch baseline needs positive steps and batch size and non-negative lr and eval limit, found ",
           steps, ", ", batch, ", ", o.lr, ", ", o.eval_limit);
  M4_CHECK(train->num_samples() > 0, ErrorCode::kBadInput, train->path().string(), ": the training split of task ",
           task.task, " is empty");
  const uint64_t seed = static_cast<uint64_t>(o.seed.value_or(task.train.seed));
  std::unique_ptr<ScratchNet> net = make_net(task, *train, *test, seed);
  int64_t parameters = 0;
  for (const auto& p : net->parameters()) parameters += p.numel();
  const double lr = o.lr > 0 ? o.lr : net->default_lr();
  std::vector<std::string> fields = net->inputs();
  fields.push_back(is_classification(task.metric) ? ds::kLabel : ds::kTargetText);
  const std::string model = net->describe() + ", " + count_str(parameters) + " params";
  spdlog::info("task {}: from-scratch baseline {}, {} steps of batch {}, lr {:.1e}, seed {}", task.task, model, steps,
               batch, lr, seed);

  ScratchResult r;
  r.losses = fit(*net, task, train, fields, steps, batch, lr, seed);
  static_cast<EvalResult&>(r) = score(*net, task, test, fields, o.eval_limit);
  r.model = model;
  r.parameters = parameters;
  r.steps = steps;
  r.lr = lr;
  return r;
}

}  // namespace m4
