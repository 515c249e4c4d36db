// The CLIP BPE tokenizer on a tiny vocabulary built here the way openai/clip's
// is (the 256 byte symbols of bytes_to_unicode, their "</w>" forms, merges,
// then the two special tokens), with tokenizations worked out by hand from HF's
// CLIPTokenizer algorithm.
#include "firmware/clip_tokenizer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

using json = nlohmann::json;
using test::expect_error;
using test::TempDir;
using Tokens = std::vector<std::string>;

// GPT-2's bytes_to_unicode(), written independently of the tokenizer: the
// symbols in HF's order (printable bytes first, then the rest from U+0100).
std::vector<std::string> byte_symbols() {
  auto utf8 = [](int cp) {
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
  };
  std::vector<int> bs;
  for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
  std::vector<int> cs = bs;
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    if (std::find(bs.begin(), bs.end(), b) == bs.end()) {
      bs.push_back(b);
      cs.push_back(256 + n++);
    }
  }
  std::vector<std::string> out;
  for (int c : cs) out.push_back(utf8(c));
  return out;
}

const std::vector<std::pair<std::string, std::string>> kMerges = {
    {"p", "h"}, {"o", "t"},      {"ph", "ot"},   {"phot", "o</w>"}, {"o", "f</w>"},
    {"c", "a"}, {"ca", "t</w>"}, {"x", "y</w>"},  // its result is deliberately left out of the vocabulary
};

struct TinyVocab {
  json vocab = json::object();
  std::string merges = "#version: 0.2\n";
  int64_t bos = 0, eos = 0;
};

TinyVocab tiny_vocab() {
  TinyVocab v;
  int64_t id = 0;
  const auto symbols = byte_symbols();
  for (const auto& s : symbols) v.vocab[s] = id++;
  for (const auto& s : symbols) v.vocab[s + "</w>"] = id++;
  for (const auto& [a, b] : kMerges) {
    v.merges += a + " " + b + "\n";
    if (a != "x") v.vocab[a + b] = id++;
  }
  v.bos = id++;
  v.vocab["<|startoftext|>"] = v.bos;
  v.eos = id++;
  v.vocab["<|endoftext|>"] = v.eos;
  return v;
}

ClipTokenizer tiny_tokenizer() {
  TinyVocab v = tiny_vocab();
  return ClipTokenizer::from_strings(v.vocab.dump(), v.merges, "vocab.json", "merges.txt");
}

int64_t id_of(const ClipTokenizer& t, const std::string& token) {
  int64_t id = t.token_to_id(token);
  EXPECT_GE(id, 0) << token;
  return id;
}

TEST(ClipTokenizer, PhotoOfACat) {
  auto t = tiny_tokenizer();
  EXPECT_EQ(t.vocab_size(), 512 + 7 + 2);
  EXPECT_EQ(t.num_merges(), 8);
  EXPECT_EQ(t.tokenize("a photo of a cat."), (Tokens{"a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>", ".</w>"}));
  std::vector<int64_t> expected{t.bos_id()};
  for (const char* tok : {"a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>", ".</w>"})
    expected.push_back(id_of(t, tok));
  expected.push_back(t.eos_id());
  EXPECT_EQ(t.encode("a photo of a cat."), expected);
  EXPECT_EQ(t.encode("a photo of a cat."), expected);  // from the cache
  EXPECT_EQ(t.pad_id(), t.eos_id());                   // openai/clip pads with <|endoftext|>
  EXPECT_EQ(t.unk_id(), t.eos_id());
}

TEST(ClipTokenizer, MergesApplyByRankNotPosition) {
  auto t = tiny_tokenizer();
  // "photos": p h o t o s</w>; "o t" merges before "ph ot"; "photo</w>" needs the
  // word to end there, so the last o stays alone.
  EXPECT_EQ(t.tokenize("photos"), (Tokens{"phot", "o", "s</w>"}));
  EXPECT_EQ(t.tokenize("cats"), (Tokens{"ca", "t", "s</w>"}));
  EXPECT_EQ(t.tokenize("tot"), (Tokens{"t", "o", "t</w>"}));  // "o t</w>" is not a merge
  EXPECT_EQ(t.tokenize("otot"), (Tokens{"ot", "o", "t</w>"}));
}

TEST(ClipTokenizer, LowercaseAndWhitespace) {
  auto t = tiny_tokenizer();
  EXPECT_EQ(t.encode("A PHOTO Of a CaT."), t.encode("a photo of a cat."));
  EXPECT_EQ(t.encode("  a\tphoto\n\nof   a cat . "), t.encode("a photo of a cat ."));
  EXPECT_EQ(t.encode("a\xC2\xA0photo"), t.encode("a photo"));         // no-break space (Zs)
  EXPECT_EQ(t.tokenize("a\x01photo"), t.tokenize("aphoto"));          // control characters are dropped
  EXPECT_EQ(t.tokenize("a\xE2\x80\x8Bphoto"), t.tokenize("aphoto"));  // so is U+200B (Cf)
  EXPECT_EQ(t.tokenize(""), Tokens{});
  EXPECT_EQ(t.encode(""), (std::vector<int64_t>{t.bos_id(), t.eos_id()}));
}

TEST(ClipTokenizer, ApostrophesAndPunctuation) {
  auto t = tiny_tokenizer();
  EXPECT_EQ(t.tokenize("it's"), (Tokens{"i", "t</w>", "'", "s</w>"}));
  EXPECT_EQ(t.tokenize("we'll"), (Tokens{"w", "e</w>", "'", "l", "l</w>"}));
  EXPECT_EQ(t.tokenize("IT'S"), t.tokenize("it's"));  // lowercased first
  // "'x" is no contraction: the apostrophe is a punctuation run of its own.
  EXPECT_EQ(t.tokenize("'x"), (Tokens{"'</w>", "x</w>"}));
  // Runs of non-letter, non-digit, non-space characters stay together.
  EXPECT_EQ(t.tokenize("wow!?!"), (Tokens{"w", "o", "w</w>", "!", "?", "!</w>"}));
  EXPECT_EQ(t.tokenize("a,b"), (Tokens{"a</w>", ",</w>", "b</w>"}));
}

TEST(ClipTokenizer, DigitsAreSplitOneByOne) {
  auto t = tiny_tokenizer();
  EXPECT_EQ(t.tokenize("2023"), (Tokens{"2</w>", "0</w>", "2</w>", "3</w>"}));
  EXPECT_EQ(t.tokenize("cat9"), (Tokens{"cat</w>", "9</w>"}));
  // Non-ASCII digits are numbers too (U+0661, U+0662 ARABIC-INDIC ONE, TWO; U+00B2 SUPERSCRIPT TWO).
  Tokens arabic = t.tokenize("\xD9\xA1\xD9\xA2");
  ASSERT_EQ(arabic.size(), 4u);
  EXPECT_EQ(arabic[1], "\xC2\xA1</w>");  // the first digit ends a word
  EXPECT_EQ(t.tokenize("x\xC2\xB2"), (Tokens{"x</w>", "\xC3\x82", "\xC2\xB2</w>"}));
}

TEST(ClipTokenizer, NonAsciiLettersAreBytesMapped) {
  auto t = tiny_tokenizer();
  // é = C3 A9 -> symbols U+00C3 "Ã" and U+00A9 "©" (both printable, map to themselves).
  EXPECT_EQ(t.tokenize("café"), (Tokens{"ca", "f", "\xC3\x83", "\xC2\xA9</w>"}));
  EXPECT_EQ(t.tokenize("CAFÉ"), t.tokenize("café"));  // É lowercases to é
  // "straße" is one piece: s t r a, ß = C3 9F (9F is unprintable and maps to
  // U+0141), e.
  EXPECT_EQ(t.tokenize("straße"), (Tokens{"s", "t", "r", "a", "\xC3\x83", "\xC5\x81", "e</w>"}));
  // Each CJK ideograph is its own word (BasicTokenizer spaces them out).
  Tokens cjk = t.tokenize("你好");
  ASSERT_EQ(cjk.size(), 6u);
  EXPECT_EQ(cjk[2].substr(cjk[2].size() - 4), "</w>");
  EXPECT_EQ(cjk[5].substr(cjk[5].size() - 4), "</w>");
  // Greek: final sigma when lowercasing a word-final capital sigma.
  EXPECT_EQ(t.decode(t.encode("ΟΔΟΣ"), true), "οδος");
  EXPECT_EQ(t.decode(t.encode("ΣΑ"), true), "σα");
}

TEST(ClipTokenizer, SpecialTokensAndUnknowns) {
  auto t = tiny_tokenizer();
  EXPECT_EQ(t.encode("a <|endoftext|>"), (std::vector<int64_t>{t.bos_id(), id_of(t, "a</w>"), t.eos_id(), t.eos_id()}));
  EXPECT_EQ(t.tokenize("<|startoftext|>cat"), (Tokens{"<|startoftext|>", "cat</w>"}));
  // Special tokens are cut out before the punctuation rule could swallow "<|".
  EXPECT_EQ(t.tokenize("cat!<|endoftext|>!"), (Tokens{"cat</w>", "!</w>", "<|endoftext|>", "!</w>"}));
  // Not exact: lowercased, then the pattern's own special-token alternative.
  EXPECT_EQ(t.tokenize("<|EndOfText|>"), Tokens{"<|endoftext|>"});
  // "xy" merges into "xy</w>", which the vocabulary lacks: unk.
  EXPECT_EQ(t.tokenize("xy"), Tokens{"xy</w>"});
  EXPECT_EQ(t.encode("xy"), (std::vector<int64_t>{t.bos_id(), t.unk_id(), t.eos_id()}));
}

TEST(ClipTokenizer, BatchTruncatesKeepingEosAndPads) {
  auto t = tiny_tokenizer();
  const int64_t bos = t.bos_id(), eos = t.eos_id(), a = id_of(t, "a</w>"), photo = id_of(t, "photo</w>"),
                of = id_of(t, "of</w>"), cat = id_of(t, "cat</w>");
  ClipBatch b = t.encode_batch({"a cat", "a photo of a cat."}, 6);
  ASSERT_EQ(b.input_ids.sizes(), (std::vector<int64_t>{2, 6}));
  EXPECT_EQ(b.input_ids.scalar_type(), at::kLong);
  EXPECT_TRUE(
      b.input_ids.equal(at::tensor({bos, a, cat, eos, eos, eos, bos, a, photo, of, a, eos}, at::kLong).view({2, 6})));
  EXPECT_TRUE(b.attention_mask.equal(at::tensor({1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1}, at::kLong).view({2, 6})));

  ClipBatch longest = t.encode_batch({"a cat", "a photo"}, 77, /*pad_to_max_length=*/false);
  ASSERT_EQ(longest.input_ids.sizes(), (std::vector<int64_t>{2, 4}));
  EXPECT_TRUE(longest.attention_mask.equal(at::ones({2, 4}, at::kLong)));

  ClipBatch full = t.encode_batch({"a cat"}, 77);
  EXPECT_EQ(full.input_ids.size(1), 77);
  EXPECT_EQ(full.attention_mask.sum().item<int64_t>(), 4);

  // A pad token other than eos (as some laion checkpoints configure).
  TinyVocab v = tiny_vocab();
  ClipTokenizerOptions o;
  o.pad_token = "!";
  auto bang = ClipTokenizer::from_strings(v.vocab.dump(), v.merges, "vocab.json", "merges.txt", o);
  EXPECT_EQ(bang.pad_id(), 0);
  EXPECT_EQ(bang.encode_batch({"a"}, 5).input_ids[0][4].item<int64_t>(), 0);

  expect_error([&] { t.encode_batch({"a"}, 1); }, {"max_length must be at least 2"});
}

TEST(ClipTokenizer, DecodeRoundTrips) {
  auto t = tiny_tokenizer();
  for (const char* text : {"a photo of a cat.", "it's a cat!", "café au lait", "naïve? yes, naïve."}) {
    EXPECT_EQ(t.decode(t.encode(text), /*skip_special_tokens=*/true), text) << text;
  }
  // Lossy where HF's is: every word (each digit, each ideograph) ends in a space.
  EXPECT_EQ(t.decode(t.encode("2023 你好"), true), "2 0 2 3 你 好");
  // As HF: special tokens kept by default; "</w>" before them leaves a space.
  EXPECT_EQ(t.decode(t.encode("a photo of a cat.")), "<|startoftext|>a photo of a cat. <|endoftext|>");
  EXPECT_EQ(t.decode(t.encode("A  Photo")), "<|startoftext|>a photo <|endoftext|>");
  expect_error([&] { t.decode({100000}); }, {"vocab.json", "token id 100000"});
}

TEST(ClipTokenizer, HeaderLineOfMergesIsAlwaysSkipped) {
  // HF drops the first line of merges.txt unconditionally (the "#version" header).
  TinyVocab v = tiny_vocab();
  auto t = ClipTokenizer::from_strings(v.vocab.dump(), "p h\no t\n", "vocab.json", "merges.txt");
  EXPECT_EQ(t.num_merges(), 1);
  EXPECT_EQ(t.tokenize("ph"), (Tokens{"p", "h</w>"}));
  // Windows line endings and trailing blank lines are fine.
  auto crlf = ClipTokenizer::from_strings(v.vocab.dump(), "#version: 0.2\r\np h\r\nph ot\r\n\r\n\n", "vocab.json",
                                          "merges.txt");
  EXPECT_EQ(crlf.num_merges(), 2);
}

TEST(ClipTokenizer, LoadsFilesAndNamesThemInErrors) {
  TempDir tmp;
  TinyVocab v = tiny_vocab();
  write_file_atomic(tmp / "vocab.json", v.vocab.dump());
  write_file_atomic(tmp / "merges.txt", v.merges);
  auto t = ClipTokenizer::load(tmp / "vocab.json", tmp / "merges.txt");
  EXPECT_EQ(t.encode("a cat"), tiny_tokenizer().encode("a cat"));

  expect_error([&] { ClipTokenizer::load(tmp / "nope.json", tmp / "merges.txt"); }, {"nope.json", "cannot open"});
  expect_error([&] { ClipTokenizer::load(tmp / "vocab.json", tmp / "nope.txt"); }, {"nope.txt", "cannot open"});

  write_file_atomic(tmp / "bad.json", "{\"a\": 1,");
  expect_error([&] { ClipTokenizer::load(tmp / "bad.json", tmp / "merges.txt"); }, {"bad.json", "not valid JSON"});
  write_file_atomic(tmp / "list.json", "[1, 2]");
  expect_error([&] { ClipTokenizer::load(tmp / "list.json", tmp / "merges.txt"); }, {"list.json", "JSON object"});
  write_file_atomic(tmp / "str.json", "{\"a\": \"one\"}");
  expect_error([&] { ClipTokenizer::load(tmp / "str.json", tmp / "merges.txt"); },
               {"str.json", "token 'a'", "non-negative integer", "\"one\""});
  json no_bos = v.vocab;
  no_bos.erase("<|startoftext|>");
  write_file_atomic(tmp / "nobos.json", no_bos.dump());
  expect_error([&] { ClipTokenizer::load(tmp / "nobos.json", tmp / "merges.txt"); },
               {"nobos.json", "bos token '<|startoftext|>'"});

  write_file_atomic(tmp / "bad_merges.txt", "#version: 0.2\np h\nph ot extra\n");
  expect_error([&] { ClipTokenizer::load(tmp / "vocab.json", tmp / "bad_merges.txt"); },
               {"bad_merges.txt:3", "two symbols", "ph ot extra"});
  write_file_atomic(tmp / "one.txt", "#version: 0.2\np h\nalone\n");
  expect_error([&] { ClipTokenizer::load(tmp / "vocab.json", tmp / "one.txt"); }, {"one.txt:3", "'alone'"});
}

// HF's CLIPTokenizer (without ftfy) on real strings: WordNet glosses, Open Clip Art
// titles, country names in 30 languages from iso-codes, crafted cases (accents
// composed and decomposed, emoji, control and unassigned code points, runs of every
// kind of whitespace, special tokens in the text) and every code point that
// str.lower() changes; the demo firmware's vocabulary (tests/fixtures/hf-frontends).
TEST(ClipTokenizer, MatchesHfOnRealStrings) {
  const auto dir = test::frontend_fixtures() / "clip_tokenizer";
  const ClipTokenizer t = ClipTokenizer::load(dir / "vocab.json", dir / "merges.txt");
  const json cases = json::parse(read_text_file(dir / "cases.json", 16 << 20));
  std::map<std::string, std::pair<int, int>> by_source;  // source -> (strings, mismatches)
  int64_t ids = 0;
  for (const auto& c : cases.at("cases")) {
    const std::string text = c.at("text").get<std::string>(), source = c.at("source").get<std::string>();
    const auto want = c.at("ids").get<std::vector<int64_t>>();
    const auto got = t.encode(text);
    ids += static_cast<int64_t>(want.size());
    auto& [n, bad] = by_source[source];
    ++n;
    if (got != want) {
      ++bad;
      ADD_FAILURE() << source << ": " << json(text).dump() << "\n  hf:   " << json(want).dump()
                    << "\n  ours: " << json(got).dump();
    }
  }
  for (const auto& [source, counts] : by_source)
    std::cout << "[parity] clip tokenizer, " << source << ": " << counts.second << " of " << counts.first
              << " strings differ from HF\n";
  std::cout << "[parity] clip tokenizer: " << cases.at("cases").size() << " strings, " << ids << " ids\n";
  EXPECT_GE(cases.at("cases").size(), 300u);
}

}  // namespace
}  // namespace m4
