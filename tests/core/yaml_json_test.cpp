// YAML -> json typing (YAML 1.2 core schema) and its error messages.
#include "core/yaml_json.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/support/test_util.h"

namespace m4 {
namespace {

TEST(YamlJson, CoreSchemaScalars) {
  const auto j = parse_yaml(
      "f: 1e-4\ng: 1.0e-3\ni: 42\nneg: -7\nh: 0x10\nq: '1'\ndq: \"true\"\nyes_is_text: yes\nn: ~\nb: false\n"
      "inf: .inf\nnan: .nan\ns: hello world\nl: [1, a, 2.5]\n",
      "t.yaml");
  EXPECT_TRUE(j["f"].is_number_float());
  EXPECT_DOUBLE_EQ(j["f"].get<double>(), 1e-4);
  EXPECT_DOUBLE_EQ(j["g"].get<double>(), 1e-3);
  EXPECT_TRUE(j["i"].is_number_integer());
  EXPECT_EQ(j["i"].get<int64_t>(), 42);
  EXPECT_EQ(j["neg"].get<int64_t>(), -7);
  EXPECT_EQ(j["h"].get<int64_t>(), 16);
  EXPECT_EQ(j["q"], "1");         // quoted: always a string
  EXPECT_EQ(j["dq"], "true");
  EXPECT_EQ(j["yes_is_text"], "yes");  // YAML 1.1 booleans are not booleans here
  EXPECT_TRUE(j["n"].is_null());
  EXPECT_EQ(j["b"], false);
  EXPECT_TRUE(std::isinf(j["inf"].get<double>()));
  EXPECT_TRUE(std::isnan(j["nan"].get<double>()));
  EXPECT_EQ(j["s"], "hello world");
  EXPECT_EQ(j["l"], nlohmann::json::parse(R"([1, "a", 2.5])"));
}

TEST(YamlJson, KeepsUtf8AndBraces) {
  const auto j = parse_yaml("t: \"[E] Ein Foto von {label} – café\"\n", "t.yaml");
  EXPECT_EQ(j["t"], "[E] Ein Foto von {label} – café");
}

TEST(YamlJson, DuplicateKeyIsAnError) {
  test::expect_error([] { parse_yaml("a: 1\nb: 2\na: 3\n", "dup.yaml"); }, {"dup.yaml:3:1", "duplicate key 'a'"});
}

TEST(YamlJson, SyntaxErrorNamesFileAndLine) {
  test::expect_error([] { parse_yaml("a: [1, 2\nb: 3\n", "bad.yaml"); }, {"bad.yaml:", "not valid YAML"});
}

TEST(YamlJson, ValueParsing) {
  EXPECT_EQ(parse_yaml_value("1e-4", "o"), 1e-4);
  EXPECT_EQ(parse_yaml_value("[a, b]", "o"), nlohmann::json::parse(R"(["a","b"])"));
  EXPECT_EQ(parse_yaml_value("", "o"), "");
  EXPECT_EQ(parse_yaml_value("lora", "o"), "lora");
}

// "Billion laughs": 12 nested 10x anchors are a 700-byte file and 10^12 nodes.
std::string laughs(int levels) {
  std::string y = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i < levels; ++i) {
    const std::string p = "*a" + std::to_string(i - 1);
    y += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + p;
    for (int k = 1; k < 10; ++k) y += ", " + p;
    y += "]\n";
  }
  return y;
}

TEST(YamlJson, AliasExpansionAndDepthAreBounded) {
  // Within the bound, aliases expand as YAML says (10 + 100 + 1000 strings).
  const nlohmann::json ok = parse_yaml(laughs(3), "ok.yaml");
  EXPECT_EQ(ok["a2"].size(), 10u);
  EXPECT_EQ(ok["a2"][9][9][9], "lol");
  test::expect_error([] { parse_yaml(laughs(12), "laughs.yaml"); },
                     {"laughs.yaml", "expands past 1000000 nodes", "aliases"});
  const std::string deep = std::string(300, '[') + std::string(300, ']');
  test::expect_error([&] { parse_yaml(deep, "deep.yaml"); }, {"deep.yaml"});
}

// Found by fuzz_yaml: a byte that is not UTF-8 parsed, then broke the json dump of run records.
TEST(YamlJson, InvalidUtf8IsRefusedWithItsPlace) {
  test::expect_error([] { parse_yaml("a: \"x\xff\"\n", "u.yaml"); }, {"u.yaml:1:4", "not valid UTF-8"});
  test::expect_error([] { parse_yaml("\xc0\xaf: 1\n", "k.yaml"); }, {"k.yaml", "key is not valid UTF-8"});  // overlong '/'
  test::expect_error([] { parse_yaml("a: \xed\xa0\x80\n", "s.yaml"); }, {"s.yaml", "not valid UTF-8"});  // a surrogate
  // The fuzzer's own input (a job file with one bad byte), kept as a regression input.
  const std::filesystem::path crash = test::repo_dir() / "tests" / "fixtures" / "fuzz" / "yaml-invalid-utf8.yaml";
  test::expect_error([&] { read_yaml_file(crash); }, {"yaml-invalid-utf8.yaml", "not valid UTF-8"});
  EXPECT_EQ(parse_yaml("a: \"gr\xc3\xbc\xc3\x9f \xf0\x9f\x99\x82\"\n", "ok.yaml")["a"], "gr\xc3\xbc\xc3\x9f \xf0\x9f\x99\x82");
}

TEST(YamlJson, MissingFileIsAnIoError) {
  test::TempDir dir;
  try {
    read_yaml_file(dir / "nope.yaml");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.yaml"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace m4
