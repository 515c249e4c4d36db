// Prompt templates: the renderer's edge cases, template validation (every
// problem class, all at once), verbalizers, answer mapping, manifest round trip.
#include "prompts/prompt_template.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/yaml_json.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

using nlohmann::json;

PromptTemplate from_yaml(const std::string& yaml, const std::string& id = "t") {
  return parse_prompt_template(parse_yaml(yaml, id + ".yaml"), id, id + ".yaml");
}

TEST(RenderText, ReplacesPlaceholders) {
  EXPECT_EQ(render_text("There is a photo of a {label}.", {{"label", "cat"}}, "w"), "There is a photo of a cat.");
  EXPECT_EQ(render_text("{a}{b} {a}", {{"a", "x"}, {"b", "y"}}, "w"), "xy x");
  EXPECT_EQ(render_text("no placeholders", {}, "w"), "no placeholders");
  EXPECT_EQ(render_text("", {}, "w"), "");
}

TEST(RenderText, EscapedBracesAreLiteral) {
  EXPECT_EQ(render_text("{{literal}} {x} }}", {{"x", "v"}}, "w"), "{literal} v }");
  EXPECT_EQ(render_text("{{{x}}}", {{"x", "v"}}, "w"), "{v}");
  EXPECT_EQ(render_text("json: {{\"k\": {x}}}", {{"x", "1"}}, "w"), "json: {\"k\": 1}");
}

TEST(RenderText, ValuesAreNotReexpanded) {
  // A value that looks like a placeholder stays as it is: one pass, no recursion.
  EXPECT_EQ(render_text("{a}", {{"a", "{b}"}, {"b", "no"}}, "w"), "{b}");
  EXPECT_EQ(render_text("{a}", {{"a", "}} {{"}}, "w"), "}} {{");
}

TEST(RenderText, Utf8PassesThrough) {
  EXPECT_EQ(render_text("Übersetze: {text} →", {{"text", "Grüße, 世界"}}, "w"), "Übersetze: Grüße, 世界 →");
}

TEST(RenderText, SyntaxErrorsNameTheProblem) {
  test::expect_error([] { render_text("a {label", {{"label", "x"}}, "tpl"); },
                     {"tpl", "unterminated '{' at offset 2", "'{{'"});
  test::expect_error([] { render_text("a } b", {}, "tpl"); }, {"tpl", "single '}' at offset 2", "'}}'"});
  test::expect_error([] { render_text("a {} b", {}, "tpl"); }, {"bad placeholder '{}'"});
  test::expect_error([] { render_text("a {1x} b", {}, "tpl"); }, {"bad placeholder '{1x}'"});
  test::expect_error([] { render_text("a {x y} b", {}, "tpl"); }, {"bad placeholder '{x y}'"});
}

TEST(RenderText, MissingAndUndeclaredVariablesAreNamed) {
  const std::vector<std::string> declared = {"src", "text"};
  test::expect_error([&] { render_text("{src}: {text}", {{"src", "de"}}, "tpl", &declared); },
                     {"tpl", "no value for variable 'text'"});
  test::expect_error([&] { render_text("{src}", {{"src", "de"}, {"tgt", "en"}}, "tpl", &declared); },
                     {"value given for undeclared variable 'tgt'", "declared: src, text"});
  test::expect_error([&] { render_text("{lang}", {}, "tpl", &declared); },
                     {"template uses undeclared variable 'lang'"});
}

TEST(Placeholders, InOrderOfFirstUse) {
  EXPECT_EQ(placeholders("{b} {a} {b} {{c}}", "w"), (std::vector<std::string>{"b", "a"}));
}

TEST(PromptTemplate, TaggedSegmentsAndRendering) {
  const auto t = from_yaml(
      "template: \"[E] There is a photo of a {label}. [B] Translate the following sentences from {src} to {tgt}. "
      "{text}\"\n"
      "variables: [label, src, tgt, text]\nfixed: {src: German, tgt: English}\nlabels: [cat, dog]\n"
      "answer: free_text\n");
  ASSERT_EQ(t.segments.size(), 2u);
  EXPECT_EQ(t.segments[0].module, PromptModule::kTextEncoder);
  EXPECT_EQ(t.segments[0].text, "There is a photo of a {label}.");
  EXPECT_EQ(t.segments[1].module, PromptModule::kBackbone);
  EXPECT_EQ(t.render(PromptModule::kBackbone, {{"text", "Guten Morgen."}}),
            "Translate the following sentences from German to English. Guten Morgen.");
  // A given value overrides a fixed one.
  EXPECT_EQ(t.render(PromptModule::kBackbone, {{"text", "Bonjour."}, {"src", "French"}}),
            "Translate the following sentences from French to English. Bonjour.");
  EXPECT_EQ(t.label_texts(), (std::vector<std::string>{"There is a photo of a cat.", "There is a photo of a dog."}));
  test::expect_error([&] { t.render(PromptModule::kBackbone, {}); }, {"[B]", "no value for variable 'text'"});
  test::expect_error([&] { t.render(PromptModule::kBackbone, {{"text", "x"}, {"lang", "y"}}); },
                     {"undeclared variable 'lang'"});
}

TEST(PromptTemplate, ListFormJoinsSegmentsOfOneModule) {
  const auto t = from_yaml("template: [\"[B] Passage: {context}\", \"[B] Question: {question}\"]\n"
                           "variables: [context, question]\nanswer: free_text\n");
  EXPECT_EQ(t.render(PromptModule::kBackbone, {{"context", "C."}, {"question", "Q?"}}), "Passage: C. Question: Q?");
  test::expect_error([&] { t.render(PromptModule::kTextEncoder, {}); }, {"has no [E] segment"});
}

TEST(PromptTemplate, RenderingIsDeterministic) {
  const auto t = from_yaml("template: \"[B] {z} {a} {m}\"\nvariables: [z, a, m]\n");
  const PromptVars v1 = {{"a", "1"}, {"m", "2"}, {"z", "3"}};
  PromptVars v2;
  v2["z"] = "3";
  v2["m"] = "2";
  v2["a"] = "1";
  EXPECT_EQ(t.render(PromptModule::kBackbone, v1), "3 1 2");
  EXPECT_EQ(t.render(PromptModule::kBackbone, v1), t.render(PromptModule::kBackbone, v2));
}

TEST(PromptTemplate, VerbalizerForms) {
  const auto by_map = from_yaml("template: \"[E] a {label}\"\nvariables: [label]\nlabels: {1: dog, 0: cat}\n");
  EXPECT_EQ(by_map.labels, (std::vector<std::string>{"cat", "dog"}));
  const auto from_ds = from_yaml("template: \"[E] a {label}\"\nvariables: [label]\nlabels: {from_dataset: true}\n");
  EXPECT_TRUE(from_ds.labels_from_dataset);
  EXPECT_EQ(from_ds.label_texts({}, {"Sneaker", "Bag"}), (std::vector<std::string>{"a Sneaker", "a Bag"}));
  test::expect_error([&] { from_ds.label_texts(); }, {"no labels", "label_names"});
  test::expect_error([&] { from_ds.label_texts({{"label", "x"}}, {"a"}); }, {"filled from the verbalizer"});
}

TEST(PromptTemplate, ExplicitVerbalizerMustMatchTheDataset) {
  const auto t = from_yaml("template: \"[E] a {label}\"\nvariables: [label]\nlabels: [cat, dog]\n");
  EXPECT_EQ(t.labels_for({}), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(t.labels_for({"Cat", "Dog"}), (std::vector<std::string>{"cat", "dog"}));  // the verbalizer wins
  test::expect_error([&] { t.label_texts({}, {"a", "b", "c"}); }, {"has 2 labels but the dataset has 3 label_names", "hint:"});
  try {
    t.labels_for({"a"});
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kMismatch);
  }
}

TEST(PromptTemplate, EveryProblemIsReportedAtOnce) {
  const std::string msg = test::expect_error(
      [] {
        from_yaml("template: \"There is {thing} {label}\"\nvariables: [label, unused, 2bad]\nlabels: {0: a, 2: b}\n"
                  "answer: closest\ncolour: red\n",
                  "bad");
      },
      {"bad.yaml: ", "unknown key 'colour'", "must start with a module tag [E] (txt_enc) or [B] (backbone)",
       "'2bad' is not a name", "ids must be 0..1 without gaps (missing 1)", "answer: unknown rule \"closest\""});
  EXPECT_NE(msg.find("; "), std::string::npos);
}

TEST(PromptTemplate, ProblemClasses) {
  struct Case {
    std::string yaml;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"variables: []\n", "missing required key 'template'"},
      {"template: 3\n", "template: expected a string or a non-empty list"},
      {"template: \"[B]\"\n", "empty [B] segment"},
      {"template: \"[X] hi\"\n", "must start with a module tag"},
      {"template: \"[B] {text}\"\n", "template uses undeclared variable 'text' (declared: )"},
      {"template: \"[B] hi\"\nvariables: [text]\n", "'text' is declared but not used"},
      {"template: \"[B] {a} {a}\"\nvariables: [a, a]\n", "'a' declared twice"},
      {"template: \"[B] a {b\"\nvariables: [b]\n", "unterminated '{'"},
      {"template: \"[E] {label}\"\nvariables: [label]\n", "template uses {label} but `labels` is missing"},
      {"template: \"[E] {label}\"\nvariables: [label]\nlabels: [\"T-shirt\", \"t shirt\"]\n",
       "normalise to the same text"},
      {"template: \"[E] {label}\"\nvariables: [label]\nlabels: [cat, \"\"]\n", "non-empty string"},
      {"template: \"[E] {label}\"\nvariables: [label]\nlabels: {from_dataset: false}\n", "from_dataset: true"},
      {"template: \"[E] {label}\"\nvariables: [label]\nlabels: {x: cat}\n", "key 'x' is not a label id"},
      {"template: \"[B] hi\"\nanswer: exact\n", "'exact' needs `labels`"},
      {"template: \"[E] {label}\"\nvariables: [label]\nlabels: [a]\nanswer: exact\n", "need a [B] segment"},
      {"template: \"[B] {a}\"\nvariables: [a]\nfixed: {b: x}\n", "fixed: 'b' is not a declared variable"},
      {"template: \"[B] {a}\"\nvariables: [a]\nfixed: {a: 3}\n", "fixed.a: expected a string"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.yaml);
    test::expect_error([&] { from_yaml(c.yaml); }, {c.needle});
  }
}

TEST(PromptTemplate, ToJsonRoundTrip) {
  const auto t = from_yaml(
      "description: d\ntemplate: [\"[E] a {label}\", \"[B] say {text} in {tgt}\"]\nvariables: [label, text, tgt]\n"
      "fixed: {tgt: English}\nlabels: [\"x{{y\", z]\nanswer: first_matching_label\n");
  const auto back = parse_prompt_template(t.to_json(), "t", "manifest");
  EXPECT_EQ(back.to_json(), t.to_json());
  EXPECT_EQ(back.render(PromptModule::kBackbone, {{"text", "hi"}}), "say hi in English");
  EXPECT_EQ(back.labels, t.labels);
  EXPECT_EQ(back.answer, AnswerRule::kFirstMatchingLabel);
}

TEST(Answer, Normalisation) {
  EXPECT_EQ(normalize_answer("  T-Shirt/Top!! "), "t shirt top");
  EXPECT_EQ(normalize_answer("Ankle\tBOOT."), "ankle boot");
  EXPECT_EQ(normalize_answer("café"), "café");  // non-ASCII bytes kept, never locale-folded
  EXPECT_EQ(normalize_answer("..."), "");
}

TEST(Answer, FirstMatchingLabel) {
  const auto t = from_yaml("template: \"[B] {x}\"\nvariables: [x]\nlabels: [boot, ankle boot, sea, sea lion, cat]\n"
                           "answer: first_matching_label\n");
  EXPECT_EQ(t.parse_answer("I think it's an Ankle-Boot, not a boot").label, 1);  // earliest match wins
  EXPECT_EQ(t.parse_answer("SEA LION!").label, 3);   // same start: the longer label wins
  EXPECT_EQ(t.parse_answer("the sea").label, 2);
  EXPECT_EQ(t.parse_answer("concatenate").label, -1);  // whole words only: no "cat" inside
  EXPECT_EQ(t.parse_answer("").label, -1);
  EXPECT_EQ(t.parse_answer("  a cat \n").text, "a cat");
}

TEST(Answer, ExactNumberFreeText) {
  const auto exact = from_yaml("template: \"[B] {q}\"\nvariables: [q]\nlabels: {from_dataset: true}\nanswer: exact\n");
  EXPECT_EQ(exact.parse_answer("Two.", {"one", "two"}).label, 1);
  EXPECT_EQ(exact.parse_answer("two dogs", {"one", "two"}).label, -1);
  test::expect_error([&] { exact.parse_answer("two"); }, {"no labels", "label_names"});

  const auto num = from_yaml("template: \"[B] how many?\"\nanswer: number\n");
  EXPECT_DOUBLE_EQ(*num.parse_answer("About 42.5 people.").number, 42.5);
  EXPECT_DOUBLE_EQ(*num.parse_answer("-3 or 4").number, -3.0);
  EXPECT_DOUBLE_EQ(*num.parse_answer("+.5").number, 0.5);
  EXPECT_FALSE(num.parse_answer("many").number.has_value());

  const auto free = from_yaml("template: \"[B] {t}\"\nvariables: [t]\nanswer: free_text\n");
  EXPECT_EQ(free.parse_answer("  Guten Morgen.\n").text, "Guten Morgen.");

  const auto none = from_yaml("template: \"[E] {label}\"\nvariables: [label]\nlabels: [a]\n");
  test::expect_error([&] { none.parse_answer("a"); }, {"has no answer rule"});
}

TEST(PromptTemplate, LoadByIdFromRepoRoot) {
  test::TempDir repo;
  std::filesystem::create_directories(repo / "prompts/templates");
  std::ofstream(repo / "prompts/templates/pets.yaml") << "template: \"[E] a photo of a {label}.\"\n"
                                                         "variables: [label]\nlabels: [cat, dog]\n";
  std::ofstream(repo / "prompts/templates/README.md") << "not a template\n";
  const auto t = load_prompt_template(repo.path(), "pets");
  EXPECT_EQ(t.id, "pets");
  EXPECT_EQ(t.label_texts()[1], "a photo of a dog.");
  EXPECT_EQ(list_prompt_templates(repo.path()), (std::vector<std::string>{"pets"}));
  test::expect_error([&] { load_prompt_template(repo.path(), "birds"); },
                     {"prompt template 'birds' not found", "prompts/templates/birds.yaml"});
  test::expect_error([&] { load_prompt_template(repo.path(), "../etc"); }, {"not a name"});
}

}  // namespace
}  // namespace m4
