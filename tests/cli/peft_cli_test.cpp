// End-to-end tests of `m4forge peft ...` and `firmware forward --adapter`: the
// real binary on the demo firmware and on the HF fixture imported as a firmware.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "tests/support/cli_test.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;
using test::CliRun;

class PeftCli : public test::CliTest {
 protected:
  // The HF llama fixture as a firmware (what the PEFT fixtures were made on).
  std::string fixture_firmware() {
    const fs::path fw = tmp_ / "fixture-fw";
    CliRun r = m4({"firmware", "import-hf", "--backbone", (test::fixtures() / "llama").string(), "--name", "fixture",
                   "--version", "1.0.0", "--out", fw.string(), "--log-level", "warn"});
    EXPECT_EQ(r.code, 0) << r.err;
    return fw.string();
  }
};

TEST_F(PeftCli, EveryVerbHasHelp) {
  for (const char* verb : {"plan", "import-hf", "export-hf"}) {
    CliRun r = m4({"peft", verb, "--help"});
    EXPECT_EQ(r.code, 0) << verb;
    EXPECT_NE(r.out.find("m4forge peft " + std::string(verb)), std::string::npos) << r.out;
  }
  expect_one_line_error(m4({"peft", "frobnicate"}), {"unknown peft command 'frobnicate'"});
}

TEST_F(PeftCli, PlanListsEveryAdaptedModuleWithCounts) {
  const std::string fw = demo("fw");
  const std::string cfg = (test::repo_dir() / "configs" / "tasks" / "text_classification.yaml").string();
  CliRun r = m4({"peft", "plan", cfg, "--firmware", fw, "--log-level", "warn"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("backbone.layers.0.self_attn.q_proj"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("backbone.layers.1.self_attn.v_proj"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("k_proj"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("trainable params: "), std::string::npos) << r.out;
  CliRun j = m4({"peft", "plan", cfg, "--firmware", fw, "--json", "--log-level", "warn"});
  ASSERT_EQ(j.code, 0) << j.err;
  auto plan = nlohmann::json::parse(j.out);
  int64_t sum = 0;
  for (const auto& m : plan["modules"]) sum += m["parameters"].get<int64_t>();
  EXPECT_EQ(sum, plan["trainable_parameters"].get<int64_t>());
  EXPECT_GT(plan["total_parameters"].get<int64_t>(), sum);

  // A target that matches nothing is an error with the nearest names, never a no-op.
  CliRun bad = m4({"peft", "plan", cfg, "--firmware", fw, "peft.lora.targets=[backbone.layers.*.self_attn.q_prj]"});
  expect_one_line_error(bad, {"matches no Linear of backbone", "nearest: backbone.layers.*.self_attn.q_proj"});

  // A config that is a "billion laughs" (12 nested 10x aliases) is refused at once, not expanded.
  std::string laughs = "lol0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 12; ++i) {
    const std::string p = "*l" + std::to_string(i - 1);
    laughs += "lol" + std::to_string(i) + ": &l" + std::to_string(i) + " [" + p + ", " + p + ", " + p + ", " + p + ", " +
              p + ", " + p + ", " + p + ", " + p + ", " + p + ", " + p + "]\n";
  }
  const fs::path bomb = tmp_ / "bomb.yaml";
  std::ofstream(bomb) << laughs;
  CliRun b = m4({"peft", "plan", bomb.string(), "--firmware", fw});
  expect_one_line_error(b, {"bomb.yaml", "expands past 1000000 nodes"});
  EXPECT_EQ(b.code, 3);
}

TEST_F(PeftCli, ImportForwardExportRoundTripOnTheFixture) {
  const std::string fw = fixture_firmware();
  const fs::path hf = test::fixtures() / "lora" / "adapter";
  const std::string adapter = (tmp_ / "lora.safetensors").string();
  CliRun r = m4({"peft", "import-hf", "--adapter", hf.string(), "--firmware", fw, "--out", adapter, "--log-level", "warn"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("lora adapter"), std::string::npos) << r.out;

  // forward --adapter reproduces peft's logits after training.
  SafetensorsFile data = SafetensorsFile::open(test::fixtures() / "lora" / "train_data.safetensors");
  write_safetensors(tmp_ / "in.safetensors", {{"input_ids", data.tensor("input_ids")}});
  CliRun f = m4({"firmware", "forward", "--firmware", fw, "--module", "backbone", "--input", (tmp_ / "in.safetensors").string(),
                 "--out", (tmp_ / "out.safetensors").string(), "--adapter", adapter, "--log-level", "warn"});
  ASSERT_EQ(f.code, 0) << f.err;
  const double d = test::max_abs_diff(SafetensorsFile::open(tmp_ / "out.safetensors").tensor("logits"), data.tensor("logits_after"));
  std::cout << "[parity] CLI forward --adapter vs peft logits_after max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);

  // export-hf writes the same tensors back under peft's names.
  CliRun e = m4({"peft", "export-hf", "--adapter", adapter, "--firmware", fw, "--out", (tmp_ / "hf").string(), "--log-level", "warn"});
  ASSERT_EQ(e.code, 0) << e.err;
  SafetensorsFile orig = SafetensorsFile::open(hf / "adapter_model.safetensors");
  SafetensorsFile back = SafetensorsFile::open(tmp_ / "hf" / "adapter_model.safetensors");
  ASSERT_EQ(orig.tensors().size(), back.tensors().size());
  for (const auto& info : orig.tensors()) EXPECT_TRUE(at::equal(orig.tensor(info), back.tensor(info.name))) << info.name;
}

TEST_F(PeftCli, AdaptersForOtherShapesOrModulesAreRefused) {
  const std::string demo_fw = demo("fw");
  // The fixture adapter (hidden 64) on the demo backbone: shapes differ, named in one line.
  CliRun r = m4({"peft", "import-hf", "--adapter", (test::fixtures() / "lora" / "adapter").string(), "--firmware", demo_fw,
                 "--out", (tmp_ / "x.safetensors").string()});
  expect_one_line_error(r, {"adapter tensor 'backbone.layers.0.self_attn.q_proj.lora_a' has shape [8, 64] but firmware m4-demo@",
                            "hint: the adapter was built for another firmware"});
  EXPECT_FALSE(fs::exists(tmp_ / "x.safetensors"));
  // A backbone adapter applied to an encoder trains nothing there: an error, not a silent no-op.
  const std::string fw = fixture_firmware();
  const std::string adapter = (tmp_ / "lora.safetensors").string();
  ASSERT_EQ(m4({"peft", "import-hf", "--adapter", (test::fixtures() / "lora" / "adapter").string(), "--firmware", fw, "--out", adapter}).code, 0);
  write_safetensors(tmp_ / "in.safetensors", {{"input_ids", at::zeros({1, 4}, at::kLong)}});
  CliRun n = m4({"firmware", "forward", "--firmware", demo_fw, "--module", "txt_enc", "--input", (tmp_ / "in.safetensors").string(),
                 "--out", (tmp_ / "out.safetensors").string(), "--adapter", adapter});
  expect_one_line_error(n, {adapter, "the adapter trains nothing on txt_enc (it trains backbone: lora)"});
  // Not an m4forge adapter at all.
  CliRun h = m4({"firmware", "forward", "--firmware", fw, "--input", (tmp_ / "in.safetensors").string(), "--out",
                 (tmp_ / "out.safetensors").string(), "--adapter", (test::fixtures() / "lora" / "adapter" / "adapter_model.safetensors").string()});
  expect_one_line_error(h, {"adapter_model.safetensors: not an m4forge adapter", "peft import-hf"});
}

// Hostile or mistaken HF adapter configs: one line naming adapter_config.json,
// never a raw regex or json exception, never an adapter that targets nothing.
TEST_F(PeftCli, ImportHfRefusesBadConfigsNamingTheFile) {
  const std::string fw = fixture_firmware();
  const fs::path src = test::fixtures() / "lora" / "adapter";
  const nlohmann::json good = nlohmann::json::parse(test::slurp(src / "adapter_config.json"));
  int i = 0;
  auto import_with = [&](const std::function<void(nlohmann::json&)>& edit) {
    const fs::path dir = tmp_ / ("bad" + std::to_string(i++));
    fs::create_directories(dir);
    fs::copy_file(src / "adapter_model.safetensors", dir / "adapter_model.safetensors");
    nlohmann::json cfg = good;
    edit(cfg);
    std::ofstream(dir / "adapter_config.json") << cfg.dump(1);
    CliRun r = m4({"peft", "import-hf", "--adapter", dir.string(), "--firmware", fw, "--out", (dir / "a.safetensors").string()});
    EXPECT_EQ(fs::exists(dir / "a.safetensors"), r.code == 0) << "written only when imported";
    return r;
  };
  const std::string file = "adapter_config.json";
  expect_one_line_error(import_with([](auto& c) { c["target_modules"] = "(("; }), {file, "'((' is not a valid regex"});
  expect_one_line_error(import_with([](auto& c) { c["target_modules"] = ".*\\.nothing_proj"; }),
                        {file, "matches no Linear of the backbone"});
  expect_one_line_error(import_with([](auto& c) { c["rank_pattern"] = {{"q_proj", "eight"}}; }),
                        {file, "rank_pattern['q_proj'] must be an integer >= 1", "\"eight\""});
  expect_one_line_error(import_with([](auto& c) { c["r"] = -4; }), {file, "r must be an integer >= 1 (got -4)"});
  expect_one_line_error(import_with([](auto& c) { c["lora_alpha"] = "sixteen"; }), {file, "lora_alpha must be a number"});
  // The regex form that does match imports (PEFT full-matches it against module keys).
  CliRun ok = import_with([](auto& c) { c["target_modules"] = ".*\\.(q_proj|v_proj)"; });
  EXPECT_EQ(ok.code, 0) << ok.err;
}

}  // namespace
}  // namespace m4
