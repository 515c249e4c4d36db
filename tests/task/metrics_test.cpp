// Metrics against hand-computed values and published sacreBLEU output; the
// arithmetic is written out next to each expectation.
#include "task/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/support/test_util.h"

namespace m4 {
namespace {

TEST(MetricNames, ParseAndPrint) {
  MetricSpec s;
  ASSERT_TRUE(parse_metric("recall@5", &s));
  EXPECT_EQ(s.kind, MetricKind::kRecallAtK);
  EXPECT_EQ(s.k, 5);
  EXPECT_EQ(s.name(), "recall@5");
  for (const char* n : {"accuracy", "macro_f1", "bleu", "wer", "token_f1", "mae"}) {
    ASSERT_TRUE(parse_metric(n, &s)) << n;
    EXPECT_EQ(s.name(), n);
  }
  EXPECT_FALSE(MetricSpec{MetricKind::kWer}.higher_is_better());
  EXPECT_TRUE(MetricSpec{MetricKind::kBleu}.higher_is_better());
  for (const char* bad : {"acc", "recall@", "recall@0", "recall@x", "recall@+5", "recall@5x", "Accuracy", ""}) {
    EXPECT_FALSE(parse_metric(bad, &s)) << bad;
  }
}

TEST(Accuracy, Values) {
  EXPECT_DOUBLE_EQ(accuracy({0, 1, 2, 2}, {0, 1, 1, 2}), 0.75);
  EXPECT_DOUBLE_EQ(accuracy({-1}, {0}), 0.0);
  test::expect_error([] { accuracy({0, 1}, {0}); }, {"accuracy: 2 predictions but 1 references"});
  test::expect_error([] { accuracy({}, {}); }, {"accuracy: no examples"});
}

TEST(MacroF1, MatchesSklearnByHand) {
  // refs  = [0, 0, 1, 1, 2], preds = [0, 1, 1, 1, 0]
  // label 0: tp 1, fp 1 (i=4), fn 1 (i=1) -> P 1/2, R 1/2, F1 0.5
  // label 1: tp 2, fp 1 (i=1), fn 0       -> P 2/3, R 1,   F1 0.8
  // label 2: tp 0, fp 0, fn 1 (i=4)       -> P 0 (zero_division=0), R 0, F1 0
  // macro = (0.5 + 0.8 + 0) / 3 = 0.4333...
  EXPECT_NEAR(macro_f1({0, 1, 1, 1, 0}, {0, 0, 1, 1, 2}), 1.3 / 3.0, 1e-12);
  // A predicted label absent from refs is still a class (sklearn labels=None):
  // label 0: tp 1, fn 1 -> 2/3; label 3: fp 1 -> 0; macro = 1/3.
  EXPECT_NEAR(macro_f1({0, 3}, {0, 0}), 1.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(macro_f1({1, 2, 3}, {1, 2, 3}), 1.0);
  test::expect_error([] { macro_f1({0}, {0, 1}); }, {"macro_f1"});
}

TEST(Tokenize13a, FollowsSacrebleuRules) {
  // Expected strings were also produced by Python's `re` running sacrebleu's four
  // TokenizerRegexp patterns verbatim (re.sub is left-to-right, non-overlapping).
  EXPECT_EQ(tokenize_13a("Hello, world!"), "Hello , world !");
  // apostrophe is not split; '.' between digits is kept; '-' after a digit is split.
  EXPECT_EQ(tokenize_13a("It's 3.5-4 km."), "It's 3.5 - 4 km .");
  EXPECT_EQ(tokenize_13a("1,000.5 and x,1 a.b"), "1,000.5 and x , 1 a . b");
  EXPECT_EQ(tokenize_13a("&quot;hi&quot; &amp; (bye)"), "\" hi \" & ( bye )");
  EXPECT_EQ(tokenize_13a("a<skipped>b  \t c"), "ab c");
  EXPECT_EQ(tokenize_13a("well-\nknown\nline"), "wellknown line");
  EXPECT_EQ(tokenize_13a("e-mail $5 @home"), "e-mail $ 5 @ home");
  EXPECT_EQ(tokenize_13a("Grüße, Welt."), "Grüße , Welt .");
  EXPECT_EQ(tokenize_13a("a.., b,.,c 1.,2 3-4-5 x--y"), "a . . , b , . , c 1 . , 2 3 - 4 - 5 x--y");
  EXPECT_EQ(tokenize_13a(""), "");
}

TEST(Bleu, SacrebleuReadmeExample) {
  // sacreBLEU README (v2.x), two reference streams:
  //   BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)
  // By hand (13a tokens): hyp lengths 6 + 4 ("It wasn't surprising .") + 7 = 17;
  // closest refs 6 + 5 + 7 = 18. Matches: 1-grams 6+2+6 = 14/17, 2-grams 5+0+2 = 7/14,
  // 3-grams 4+0+1 = 5/11, 4-grams 3+0+0 = 3/8. BP = exp(1 - 18/17).
  const std::vector<std::vector<std::string>> refs = {
      {"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
      {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."}};
  const std::vector<std::string> sys = {"The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."};
  const BleuStats st = corpus_bleu_stats(sys, refs);
  EXPECT_EQ(st.sys_len, 17);
  EXPECT_EQ(st.ref_len, 18);
  EXPECT_EQ(st.correct, (std::vector<int64_t>{14, 7, 5, 3}));
  EXPECT_EQ(st.total, (std::vector<int64_t>{17, 14, 11, 8}));
  const double expect = 100.0 * std::exp(1.0 - 18.0 / 17.0) * std::pow(14.0 / 17 * 7.0 / 14 * 5.0 / 11 * 3.0 / 8, 0.25);
  EXPECT_NEAR(st.score, expect, 1e-9);
  EXPECT_NEAR(st.score, 48.53, 0.005);  // the published, rounded number
  EXPECT_NEAR(st.bp, 0.943, 0.0005);
  EXPECT_NEAR(st.precisions[0], 82.4, 0.05);
  EXPECT_NEAR(st.precisions[2], 45.5, 0.05);
}

TEST(Bleu, ExpSmoothingForAnOrderWithoutMatches) {
  // hyp "a b c d e" vs ref "a b c x d e":
  // 1-grams 5/5, 2-grams {ab, bc, de} 3/4, 3-grams {abc} 1/3, 4-grams 0/2 ->
  // 'exp' smoothing: 100 / (2 * 2) = 25. Geometric mean of 100, 75, 33.33, 25 =
  // (6,250,000)^(1/4) = 50. BP = exp(1 - 6/5). BLEU = 50 * exp(-0.2) = 40.9365...
  const BleuStats st = corpus_bleu_stats({"a b c d e"}, {{"a b c x d e"}});
  EXPECT_NEAR(st.precisions[3], 25.0, 1e-12);
  EXPECT_NEAR(st.score, 50.0 * std::exp(-0.2), 1e-9);
  // A second zero order doubles the divisor again: "a b x d e" vs "a b c d e":
  // 1-grams 4/5, 2-grams {ab, de} 2/4, 3-grams 0/3 -> 100/(2*3), 4-grams 0/2 -> 100/(4*2).
  const BleuStats st2 = corpus_bleu_stats({"a b x d e"}, {{"a b c d e"}});
  EXPECT_NEAR(st2.precisions[2], 100.0 / 6.0, 1e-12);
  EXPECT_NEAR(st2.precisions[3], 100.0 / 8.0, 1e-12);
  EXPECT_NEAR(st2.score, std::pow(80.0 * 50.0 * (100.0 / 6.0) * 12.5, 0.25), 1e-9);
}

TEST(Bleu, EdgeCases) {
  EXPECT_NEAR(corpus_bleu({"the cat sat on the mat"}, {"the cat sat on the mat"}), 100.0, 1e-9);
  // 13a tokenization makes punctuation spacing irrelevant.
  EXPECT_NEAR(corpus_bleu({"Hello, world! How are you?"}, {"Hello , world ! How are you ?"}), 100.0, 1e-9);
  // Case-sensitive by default.
  EXPECT_LT(corpus_bleu({"The Cat sat on the mat"}, {"the cat sat on the mat"}), 100.0);
  // No 4-grams in the hypothesis: sacreBLEU gives 0 (log of a zero precision).
  EXPECT_EQ(corpus_bleu({"the cat"}, {"the cat sat"}), 0.0);
  // Nothing matches at all: 0, early exit.
  EXPECT_EQ(corpus_bleu({"x y z w"}, {"a b c d"}), 0.0);
  EXPECT_EQ(corpus_bleu({""}, {"a b c d"}), 0.0);
  // Closest reference length, shorter on ties: hyp 5 words, refs 4 and 6 -> 4.
  EXPECT_EQ(corpus_bleu_stats({"a b c d e"}, {{"a b c d"}, {"a b c d e f"}}).ref_len, 4);
  test::expect_error([] { corpus_bleu_stats({"a"}, {{"a", "b"}}); }, {"reference stream 0 has 2 sentences"});
}

TEST(Wer, CorpusLevel) {
  // "the cat sit on mat" vs "the cat sat on the mat": 1 substitution + 1 deletion = 2;
  // second pair exact. 2 edits / (6 + 2) ref words = 0.25.
  EXPECT_DOUBLE_EQ(wer({"the cat sit on mat", "hello world"}, {"the cat sat on the mat", "hello world"}), 0.25);
  EXPECT_DOUBLE_EQ(wer({"a b c"}, {"a b"}), 0.5);   // one insertion / 2
  EXPECT_DOUBLE_EQ(wer({""}, {"a b c"}), 1.0);      // all deleted
  EXPECT_DOUBLE_EQ(wer({"x y z w"}, {"a b"}), 2.0); // WER can exceed 1
  // Corpus-level, not the mean of sentence WERs: (1 + 0) / (1 + 3) = 0.25, not 0.5.
  EXPECT_DOUBLE_EQ(wer({"x", "a b c"}, {"a", "a b c"}), 0.25);
  EXPECT_EQ(word_edit_distance({"kitten"}, {"sitting"}), 1);
  test::expect_error([] { wer({""}, {""}); }, {"wer: the references have no words"});
}

TEST(RecallAtK, RanksWithPessimisticTies) {
  // q0 scores [0.9, 0.1, 0.5], right item 0 -> rank 1.
  // q1 scores [0.8, 0.3, 0.8], right item 2 -> item 0 ties it -> rank 2.
  const std::vector<float> s = {0.9f, 0.1f, 0.5f, 0.8f, 0.3f, 0.8f};
  EXPECT_DOUBLE_EQ(recall_at_k(s, 2, 3, {0, 2}, 1), 0.5);
  EXPECT_DOUBLE_EQ(recall_at_k(s, 2, 3, {0, 2}, 2), 1.0);
  // Right item 1 in both rows: 0.1 and 0.3 are the lowest scores -> rank 3 -> miss at k = 2.
  EXPECT_DOUBLE_EQ(recall_at_k(s, 2, 3, {1, 1}, 2), 0.0);
  // A constant scorer ranks every right item last.
  EXPECT_DOUBLE_EQ(recall_at_k(std::vector<float>(9, 1.f), 3, 3, {0, 1, 2}, 2), 0.0);
  EXPECT_DOUBLE_EQ(recall_at_k(std::vector<float>(9, 1.f), 3, 3, {0, 1, 2}, 3), 1.0);
  test::expect_error([] { recall_at_k({1, 2, 3}, 2, 3, {0, 0}, 1); }, {"3 scores for a 2 x 3 matrix"});
  test::expect_error([] { recall_at_k({1, 2}, 1, 2, {2}, 1); }, {"correct item 2 outside [0, 2)"});
  test::expect_error([] { recall_at_k({1, NAN}, 1, 2, {0}, 1); }, {"NaN score"});
  test::expect_error([] { recall_at_k({1, 2}, 1, 2, {0}, 0); }, {"k must be >= 1"});
}

TEST(TokenF1, SquadRules) {
  // "The cat sat" -> [cat, sat]; "a cat sat down." -> [cat, sat, down]:
  // common 2, P = 1, R = 2/3, F1 = 0.8. Both empty -> 1, one empty -> 0.
  EXPECT_NEAR(token_f1({"The cat sat"}, {"a cat sat down."}), 0.8, 1e-12);
  EXPECT_DOUBLE_EQ(token_f1({""}, {"the"}), 1.0);  // both normalise to nothing
  EXPECT_DOUBLE_EQ(token_f1({"cat"}, {""}), 0.0);
  EXPECT_NEAR(token_f1({"The cat sat", "x"}, {"a cat sat down.", "x"}), 0.9, 1e-12);
  EXPECT_DOUBLE_EQ(token_f1({"cat cat"}, {"cat"}), 2 * 0.5 * 1.0 / 1.5);  // multiset overlap 1
}

TEST(Mae, Values) {
  EXPECT_DOUBLE_EQ(mae({1, 5}, {2, 2}), 2.0);
  test::expect_error([] { mae({}, {}); }, {"mae: no examples"});
}

}  // namespace
}  // namespace m4
