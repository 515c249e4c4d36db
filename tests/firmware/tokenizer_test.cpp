// The SentencePiece tokenizer (firmware/tokenizer.h): deterministic training,
// loading from bytes and files, encode/decode round trips (non-ASCII included),
// and the error for each bad input.
#include "firmware/tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

namespace fs = std::filesystem;
using test::expect_error;
using test::TempDir;

const char* kTrainArgs =
    "--model_type=bpe --vocab_size=300 --character_coverage=1.0 --num_threads=1 --minloglevel=4";

// A few hundred sentences, generated deterministically (no RNG), mixing ASCII
// with Latin accents, Greek, Cyrillic, CJK and an emoji.
std::vector<std::string> corpus() {
  const std::vector<std::string> subjects = {"the quick fox", "a naïve model", "das Grüße-Team", "el señor",
                                             "η Ελλάδα", "привет мир", "日本語の文", "our firmware"};
  const std::vector<std::string> verbs = {"reads", "writes", "trains", "loads", "über-checks", "encodes"};
  const std::vector<std::string> objects = {"the café menu", "weights and biases", "中文 tokens", "a tiny adapter",
                                            "every déjà vu", "the lazy dog 🙂", "numbers 0123456789",
                                            "punctuation, please!"};
  std::vector<std::string> out;
  for (const auto& s : subjects)
    for (const auto& v : verbs)
      for (const auto& o : objects) out.push_back(s + " " + v + " " + o + ".");
  return out;  // 8 * 6 * 8 = 384 sentences
}

const std::string& trained() {
  static const std::string model = Tokenizer::train(kTrainArgs, corpus());
  return model;
}

TEST(Tokenizer, TrainsAndLoads) {
  ASSERT_GE(corpus().size(), 300u);
  Tokenizer t = Tokenizer::from_bytes(trained(), "trained-in-memory");
  EXPECT_EQ(t.vocab_size(), 300);
  EXPECT_EQ(t.model_bytes(), trained());
  // SentencePiece's default special ids.
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.pad_id(), -1);
}

TEST(Tokenizer, TrainingIsDeterministic) {
  const std::string again = Tokenizer::train(kTrainArgs, corpus());
  EXPECT_EQ(again.size(), trained().size());
  EXPECT_TRUE(again == trained()) << "two trainings on the same sentences differ";
}

TEST(Tokenizer, RoundTrips) {
  Tokenizer t = Tokenizer::from_bytes(trained(), "trained-in-memory");
  const std::vector<std::string> texts = {
      "the quick fox reads the café menu.",  // a training sentence
      "our model trains every dog",          // new sentences from known characters
      "Grüße über déjà vu, señor!",
      "η Ελλάδα, привет мир!",
      "日本語の中文 tokens 🙂",
      "0123456789",
  };
  for (const auto& text : texts) {
    std::vector<int64_t> ids = t.encode(text);
    ASSERT_FALSE(ids.empty()) << text;
    for (int64_t id : ids) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, t.vocab_size());
      EXPECT_NE(id, 0) << "unknown piece in '" << text << "'";  // id 0 is <unk>
    }
    EXPECT_EQ(t.decode(ids), text);
  }
  // BPE merges something: a frequent training sentence takes fewer pieces than characters.
  EXPECT_LT(t.encode(texts[0]).size(), texts[0].size() / 2);
  EXPECT_TRUE(t.encode("").empty());
  EXPECT_EQ(t.decode({}), "");
}

// A piece of many 3-byte characters decodes to more than the 8 bytes per id
// that decode() first reserves: the grow-and-retry path must return the whole text.
TEST(Tokenizer, DecodeLongerThanFirstBufferRoundTrips) {
  const std::string phrase = "日本語の文章を書きます";  // 11 characters, 33 bytes
  std::vector<std::string> sentences = corpus();
  for (int i = 0; i < 200; ++i) sentences.push_back(phrase + " " + std::to_string(i % 10));
  Tokenizer t = Tokenizer::from_bytes(Tokenizer::train(kTrainArgs, sentences), "long-pieces");
  const std::string text = phrase + " " + phrase + " " + phrase + " " + phrase;
  std::vector<int64_t> ids = t.encode(text);
  ASSERT_GT(text.size(), ids.size() * 8 + 16) << "the text does not exercise the retry; ids: " << ids.size();
  EXPECT_EQ(t.decode(ids), text);
}

TEST(Tokenizer, UnseenCharacterIsUnknown) {
  Tokenizer t = Tokenizer::from_bytes(trained(), "trained-in-memory");
  std::vector<int64_t> ids = t.encode("☃");
  EXPECT_NE(std::find(ids.begin(), ids.end(), 0), ids.end()) << "expected <unk> (id 0)";
}

TEST(Tokenizer, LoadFromFile) {
  TempDir tmp;
  write_file_atomic(tmp / "tokenizer.model", trained());
  Tokenizer a = Tokenizer::load(tmp / "tokenizer.model");
  Tokenizer b = Tokenizer::from_bytes(trained(), "x");
  const std::string text = "a naïve model encodes 中文 tokens.";
  EXPECT_EQ(a.encode(text), b.encode(text));
}

TEST(Tokenizer, GarbageBytesRefused) {
  try {
    Tokenizer::from_bytes("definitely not a protobuf \x01\x02\xff", "garbage-source");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
  }
  expect_error([] { Tokenizer::from_bytes("definitely not a protobuf \x01\x02\xff", "garbage-source"); },
               {"garbage-source", "not a SentencePiece model"});
  expect_error([] { Tokenizer::from_bytes("", "empty-source"); }, {"empty-source", "not a SentencePiece model"});
  TempDir tmp;
  write_file_atomic(tmp / "tokenizer.model", "nope");
  expect_error([&] { Tokenizer::load(tmp / "tokenizer.model"); },
               {(tmp / "tokenizer.model").string(), "not a SentencePiece model"});
}

TEST(Tokenizer, DecodeOutOfRangeIdRefused) {
  Tokenizer t = Tokenizer::from_bytes(trained(), "trained-in-memory");
  expect_error([&] { t.decode({5, 300}); }, {"trained-in-memory", "token id 300", "outside the vocabulary of 300"});
  expect_error([&] { t.decode({-1}); }, {"token id -1", "outside the vocabulary of 300"});
}

TEST(Tokenizer, LoadMissingFileNamesThePath) {
  TempDir tmp;
  const fs::path p = tmp / "no" / "tokenizer.model";
  try {
    Tokenizer::load(p);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
  }
  expect_error([&] { Tokenizer::load(p); }, {p.string(), "cannot open"});
}

TEST(Tokenizer, BadTrainerArgumentsRefused) {
  expect_error([] { Tokenizer::train("--model_type=bogus --vocab_size=300 --minloglevel=4", corpus()); },
               {"SentencePiece training failed"});
}

}  // namespace
}  // namespace m4
