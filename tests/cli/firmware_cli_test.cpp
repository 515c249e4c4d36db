// End-to-end tests of `m4forge firmware ...`: the real binary, real files.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "core/safetensors.h"
#include "data/png_image.h"
#include "data/wav.h"
#include "tests/support/cli_test.h"
#include "tests/support/image_files.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;
using test::CliRun;
using test::slurp;

class FirmwareCli : public test::CliTest {
 protected:
  static std::string id_line(const std::string& out) {
    std::smatch m;
    static const std::regex re("firmware_id: (sha256:[0-9a-f]{64})");
    return std::regex_search(out, m, re) ? m[1].str() : "";
  }
};

TEST_F(FirmwareCli, EveryVerbHasHelp) {
  for (const char* verb : {"init-demo", "import-hf", "inspect", "forward", "tokenize", "generate"}) {
    CliRun r = m4({"firmware", verb, "--help"});
    EXPECT_EQ(r.code, 0) << verb;
    EXPECT_NE(r.out.find("m4forge firmware " + std::string(verb)), std::string::npos) << r.out;
  }
  EXPECT_EQ(m4({"--help"}).code, 0);
}

TEST_F(FirmwareCli, UnknownCommandsAndOptionsAreOneLineErrors) {
  expect_one_line_error(m4({"firmware", "frobnicate"}), {"unknown command 'firmware frobnicate'"});
  CliRun r = m4({"firmware", "inspect", "--bogus"});
  expect_one_line_error(r, {"bogus"});
  EXPECT_EQ(r.code, 2);
  expect_one_line_error(m4({"firmware", "import-hf", "--out", (tmp_ / "x").string()}), {"--name"});
}

TEST_F(FirmwareCli, InitDemoIsDeterministicAndRefusesToOverwrite) {
  const std::string a = demo("a"), b = demo("b"), c = demo("c", "7");
  CliRun ia = m4({"firmware", "inspect", a}), ib = m4({"firmware", "inspect", b}), ic = m4({"firmware", "inspect", c});
  ASSERT_EQ(ia.code, 0) << ia.err;
  EXPECT_FALSE(id_line(ia.out).empty()) << ia.out;
  EXPECT_EQ(id_line(ia.out), id_line(ib.out));
  EXPECT_NE(id_line(ia.out), id_line(ic.out));
  // An existing firmware is never overwritten.
  const std::string before = slurp(fs::path(a) / "firmware.json");
  expect_one_line_error(m4({"firmware", "init-demo", "--out", a}), {a, "already exists"});
  EXPECT_EQ(slurp(fs::path(a) / "firmware.json"), before);
}

TEST_F(FirmwareCli, InspectPrintsIdModulesAndJson) {
  const std::string fw = demo("fw");
  CliRun r = m4({"firmware", "inspect", fw});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* s : {"name: m4-demo", "version: 1.0.0", "backbone: arch llama", "parameters", "F32", "tokenizer"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  CliRun j = m4({"firmware", "inspect", fw, "--json"});
  ASSERT_EQ(j.code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["firmware_id"], id_line(r.out));
  EXPECT_GT(doc["modules"]["backbone"]["stats"]["parameters"].get<int64_t>(), 100000);
}

TEST_F(FirmwareCli, InspectVerifyCatchesAFlippedWeightByte) {
  const std::string fw = demo("fw");
  CliRun ok = m4({"firmware", "inspect", fw, "--verify"});
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_NE(ok.out.find("verify: ok"), std::string::npos);
  const fs::path w = fs::path(fw) / "backbone/model.safetensors";
  test::flip_byte_near_end(w);
  CliRun bad = m4({"firmware", "inspect", fw, "--verify"});
  expect_one_line_error(bad, {"module 'backbone' content changed"});
  // Without --verify the size check still passes: inspect itself works.
  EXPECT_EQ(m4({"firmware", "inspect", fw}).code, 0);
  // A truncated weight file is caught by the cheap size check, without --verify.
  fs::resize_file(w, fs::file_size(w) - 1);
  expect_one_line_error(m4({"firmware", "inspect", fw}), {"model.safetensors", "changed after import"});
}

// A checkpoint whose weights hold a NaN imports (its bytes are what they are)
// but `inspect --verify` reports it, naming the module and the tensor.
TEST_F(FirmwareCli, InspectVerifyReportsNaNWeights) {
  const fs::path src = tmp_ / "llama-nan";
  fs::create_directories(src);
  for (const char* f : {"config.json", "generation_config.json"}) fs::copy_file(test::fixtures() / "llama" / f, src / f);
  SafetensorsFile orig = SafetensorsFile::open(test::fixtures() / "llama" / "model.safetensors");
  NamedTensors tensors;
  for (const auto& info : orig.tensors()) tensors.emplace_back(info.name, orig.tensor(info).clone());
  for (auto& [name, t] : tensors) {
    if (name == "model.layers.1.mlp.down_proj.weight") t.view({-1})[3] = std::numeric_limits<float>::quiet_NaN();
  }
  write_safetensors(src / "model.safetensors", tensors, orig.metadata());
  const fs::path fw = tmp_ / "fw-nan";
  ASSERT_EQ(m4({"firmware", "import-hf", "--backbone", src.string(), "--name", "nan", "--version", "0.1.0", "--out",
                fw.string(), "--log-level", "warn"})
                .code,
            0);
  CliRun v = m4({"firmware", "inspect", fw.string(), "--verify"});
  expect_one_line_error(v, {"module 'backbone' tensor 'model.layers.1.mlp.down_proj.weight'", "1 NaN"});
  EXPECT_EQ(v.code, 3);
}

TEST_F(FirmwareCli, ImportHfAndForwardMatchTheHfReference) {
  const fs::path fw = tmp_ / "imported";
  CliRun imp = m4({"firmware", "import-hf", "--backbone", (test::fixtures() / "llama").string(), "--name", "tiny",
                "--version", "0.1.0", "--out", fw.string()});
  ASSERT_EQ(imp.code, 0) << imp.err;
  EXPECT_FALSE(id_line(imp.out).empty());
  // Inputs: the reference's input_ids (and separately its left-padding mask).
  SafetensorsFile ref = SafetensorsFile::open(test::fixtures() / "llama/reference.safetensors");
  write_safetensors(tmp_ / "in.safetensors", {{"input_ids", ref.tensor("input_ids")}});
  CliRun fwd = m4({"firmware", "forward", "--firmware", fw.string(), "--module", "backbone", "--input",
                (tmp_ / "in.safetensors").string(), "--out", (tmp_ / "out.safetensors").string()});
  ASSERT_EQ(fwd.code, 0) << fwd.err;
  SafetensorsFile out = SafetensorsFile::open(tmp_ / "out.safetensors");
  double d = test::max_abs_diff(out.tensor("logits"), ref.tensor("logits"));
  std::cout << "[parity] CLI forward logits max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);
  for (int k = 0; k < 3; ++k) {
    const std::string n = "hidden_states." + std::to_string(k);
    EXPECT_LT(test::max_abs_diff(out.tensor(n), ref.tensor(n)), 1e-4) << n;
  }
  EXPECT_EQ(out.metadata().at("firmware_id"), id_line(imp.out));
}

TEST_F(FirmwareCli, ForwardRejectsBadInputsInOneLine) {
  const std::string fw = demo("fw");
  const fs::path in = tmp_ / "in.safetensors", out = tmp_ / "out.safetensors";
  // Malformed safetensors: header length past EOF.
  {
    std::ofstream f(in, std::ios::binary);
    const uint64_t n = 1000;
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << "{}";
  }
  expect_one_line_error(m4({"firmware", "forward", "--firmware", fw, "--input", in.string(), "--out", out.string()}),
                        {in.string(), "past the end of the file"});
  // An unknown input name.
  write_safetensors(in, {{"pixel_values", at::zeros({1, 3, 4, 4})}});
  expect_one_line_error(m4({"firmware", "forward", "--firmware", fw, "--input", in.string(), "--out", out.string()}),
                        {"unexpected input 'pixel_values'"});
  // A token id outside the vocabulary.
  write_safetensors(in, {{"input_ids", at::full({1, 4}, 5000, at::kLong)}});
  expect_one_line_error(m4({"firmware", "forward", "--firmware", fw, "--input", in.string(), "--out", out.string()}),
                        {in.string(), "token id 5000", "vocabulary"});
  // A module the firmware lacks.
  write_safetensors(in, {{"input_ids", at::ones({1, 4}, at::kLong)}});
  expect_one_line_error(m4({"firmware", "forward", "--firmware", fw, "--module", "img_enc", "--input", in.string(),
                            "--out", out.string()}),
                        {"img_enc"});
  EXPECT_FALSE(fs::exists(out));
  // Not a firmware at all.
  expect_one_line_error(m4({"firmware", "forward", "--firmware", (tmp_ / "nope").string(), "--input", in.string(),
                            "--out", out.string()}),
                        {"nope"});
}

TEST_F(FirmwareCli, TokenizeThenForwardAndGenerateAreDeterministic) {
  const std::string fw = demo("fw");
  const fs::path in = tmp_ / "in.safetensors";
  CliRun t = m4({"firmware", "tokenize", "--firmware", fw, "--text", "free software", "--text", "This License applies",
              "--padding", "left", "--out", in.string()});
  ASSERT_EQ(t.code, 0) << t.err;
  SafetensorsFile ids = SafetensorsFile::open(in);
  at::Tensor mask = ids.tensor("attention_mask");
  EXPECT_EQ(ids.tensor("input_ids").size(0), 2);
  EXPECT_EQ(mask[0][0].item<int64_t>(), 0) << "left padding: the shorter row starts with pads";
  EXPECT_EQ(mask[0][-1].item<int64_t>(), 1);
  CliRun f = m4({"firmware", "forward", "--firmware", fw, "--input", in.string(), "--out", (tmp_ / "o.safetensors").string()});
  ASSERT_EQ(f.code, 0) << f.err;
  CliRun g1 = m4({"firmware", "generate", "--firmware", fw, "--prompt", "The GNU", "--max-new-tokens", "6"});
  CliRun g2 = m4({"firmware", "generate", "--firmware", fw, "--prompt", "The GNU", "--max-new-tokens", "6"});
  ASSERT_EQ(g1.code, 0) << g1.err;
  EXPECT_NE(g1.out.find("completion:"), std::string::npos);
  EXPECT_EQ(g1.out, g2.out);
  EXPECT_NE(g1.err.find("BLAS"), std::string::npos) << "m4forge logs the BLAS it runs with";
  expect_one_line_error(m4({"firmware", "generate", "--firmware", fw, "--prompt", "x", "--top-p", "0"}), {"top_p"});
}

// Every encoder fixture imported in one firmware; `firmware forward` on each
// module reproduces the Hugging Face reference outputs.
TEST_F(FirmwareCli, ImportEveryEncoderAndForwardMatchesTheHfReferences) {
  const fs::path fw = tmp_ / "encoders";
  const fs::path fx = test::fixtures();
  CliRun imp = m4({"firmware", "import-hf", "--backbone", (fx / "llama").string(), "--img-enc",
                   (fx / "clip_vision").string(), "--txt-enc", (fx / "clip_text").string(), "--aud-i-enc",
                   (fx / "whisper").string(), "--aud-b-enc", (fx / "ast").string(), "--name", "tiny-all",
                   "--version", "1.0.0", "--out", fw.string()});
  ASSERT_EQ(imp.code, 0) << imp.err;
  // Whisper's decoder is not part of the encoder module: the import keeps the encoder only.
  SafetensorsFile enc = SafetensorsFile::open(fw / "aud_i_enc/model.safetensors");
  for (const auto& t : enc.tensors()) EXPECT_EQ(t.name.rfind("model.encoder.", 0), 0u) << t.name;
  EXPECT_EQ(m4({"firmware", "inspect", fw.string(), "--verify"}).code, 0);

  struct Case {
    const char* module;
    const char* dir;
    const char* ref_file;
    std::vector<std::string> inputs, outputs;
  };
  const std::vector<Case> cases = {
      {"img_enc", "clip_vision", "reference.safetensors", {"pixel_values"},
       {"last_hidden_state", "pooler_output", "hidden_states.0", "hidden_states.2"}},
      {"txt_enc", "clip_text", "reference.safetensors", {"input_ids", "attention_mask"},
       {"last_hidden_state", "text_embeds", "hidden_states.1"}},
      {"aud_i_enc", "whisper", "encoder_reference.safetensors", {"input_features"},
       {"last_hidden_state", "hidden_states.0", "hidden_states.2"}},
      {"aud_b_enc", "ast", "reference.safetensors", {"input_values"},
       {"last_hidden_state", "pooler_output", "hidden_states.1"}},
  };
  for (const auto& c : cases) {
    SafetensorsFile ref = SafetensorsFile::open(fx / c.dir / c.ref_file);
    NamedTensors in;
    for (const auto& n : c.inputs) in.emplace_back(n, ref.tensor(n));
    const fs::path ip = tmp_ / (std::string(c.module) + ".in.safetensors");
    const fs::path op = tmp_ / (std::string(c.module) + ".out.safetensors");
    write_safetensors(ip, in);
    CliRun r = m4({"firmware", "forward", "--firmware", fw.string(), "--module", c.module, "--input", ip.string(),
                   "--out", op.string()});
    ASSERT_EQ(r.code, 0) << c.module << ": " << r.err;
    SafetensorsFile out = SafetensorsFile::open(op);
    for (const auto& n : c.outputs) {
      ASSERT_TRUE(out.contains(n)) << c.module << " " << n;
      const double d = test::max_abs_diff(out.tensor(n), ref.tensor(n));
      std::cout << "[parity] CLI forward " << c.module << " " << n << " max |diff| = " << d << "\n";
      EXPECT_LT(d, 1e-4) << c.module << " " << n;
    }
  }
}

// The demo firmware has every module; each runs from raw inputs through the CLI.
TEST_F(FirmwareCli, DemoRunsEveryModuleFromRawInputs) {
  const std::string fw = demo("fw");
  auto run = [&](const std::string& module, const NamedTensors& inputs) {
    const fs::path ip = tmp_ / (module + ".in.safetensors"), op = tmp_ / (module + ".out.safetensors");
    write_safetensors(ip, inputs);
    CliRun r = m4({"firmware", "forward", "--firmware", fw, "--module", module, "--input", ip.string(), "--out",
                   op.string()});
    EXPECT_EQ(r.code, 0) << module << ": " << r.err;
    return SafetensorsFile::open(op);
  };
  // uint8 pixels of another size: CLIP preprocessing resizes and crops to 32.
  auto img = run("img_enc", {{"pixels", at::randint(0, 256, {2, 3, 40, 48}, at::kByte)}});
  EXPECT_EQ(img.tensor("pixel_values").sizes(), at::IntArrayRef({2, 3, 32, 32}));
  EXPECT_EQ(img.tensor("image_embeds").sizes(), at::IntArrayRef({2, 64}));
  // One second of a 440 Hz tone at 16 kHz: the log-mel frontend pads to the
  // encoder's 200 frames.
  at::Tensor t = at::arange(16000, at::kFloat) / 16000.0;
  auto aud = run("aud_i_enc", {{"audio", at::sin(t * 2 * M_PI * 440).unsqueeze(0)}});
  EXPECT_EQ(aud.tensor("input_features").sizes(), at::IntArrayRef({1, 80, 200}));
  EXPECT_EQ(aud.tensor("last_hidden_state").sizes(), at::IntArrayRef({1, 100, 64}));
  auto ast = run("aud_b_enc", {{"input_values", at::randn({1, 64, 32})}});
  EXPECT_EQ(ast.tensor("pooler_output").sizes(), at::IntArrayRef({1, 64}));
  // The same second of audio through AST's Kaldi fbank: 98 frames, cut to the encoder's 64.
  auto ast_raw = run("aud_b_enc", {{"audio", at::sin(t * 2 * M_PI * 440).unsqueeze(0)}});
  EXPECT_EQ(ast_raw.tensor("input_values").sizes(), at::IntArrayRef({1, 64, 32}));
  EXPECT_EQ(ast_raw.tensor("pooler_output").sizes(), at::IntArrayRef({1, 64}));
  auto imu = run("imu_enc", {{"imu", at::randn({3, 128, 6})}});
  EXPECT_EQ(imu.tensor("imu_embeds").sizes(), at::IntArrayRef({3, 64}));
  EXPECT_EQ(imu.tensor("last_hidden_state").sizes(), at::IntArrayRef({3, 17, 64}));
  // Text through the CLIP BPE tokenizer the demo ships.
  const fs::path ids = tmp_ / "ids.safetensors";
  CliRun tok = m4({"firmware", "tokenize", "--firmware", fw, "--module", "txt_enc", "--text",
                   "There is a photo of a cat.", "--text", "free software", "--out", ids.string()});
  ASSERT_EQ(tok.code, 0) << tok.err;
  SafetensorsFile ids_file = SafetensorsFile::open(ids);
  auto txt = run("txt_enc", {{"input_ids", ids_file.tensor("input_ids")},
                             {"attention_mask", ids_file.tensor("attention_mask")}});
  EXPECT_EQ(txt.tensor("text_embeds").sizes(), at::IntArrayRef({2, 64}));

  // Wrong inputs: one line each, naming the input file and the problem.
  const fs::path bad = tmp_ / "bad.safetensors", out = tmp_ / "o.safetensors";
  auto bad_run = [&](const std::string& module, const NamedTensors& inputs, std::initializer_list<std::string> needles) {
    write_safetensors(bad, inputs);
    expect_one_line_error(
        m4({"firmware", "forward", "--firmware", fw, "--module", module, "--input", bad.string(), "--out", out.string()}),
        needles);
  };
  bad_run("img_enc", {{"pixels", at::zeros({1, 4, 32, 32}, at::kByte)}}, {bad.string(), "channel"});
  bad_run("img_enc", {{"pixel_values", at::zeros({3, 32, 32})}}, {bad.string()});
  bad_run("imu_enc", {{"imu", at::zeros({1, 100, 6})}}, {bad.string(), "100", "128"});
  bad_run("imu_enc", {{"imu", at::zeros({1, 128, 3})}}, {bad.string(), "(batch, time, 6)"});
  bad_run("aud_i_enc", {{"audio", at::zeros({1, 2, 16000})}}, {bad.string()});
  bad_run("aud_i_enc", {{"input_features", at::zeros({1, 80, 100})}}, {bad.string(), "200"});
  bad_run("aud_i_enc", {{"audio", at::zeros({1, 16000})}, {"sample_rate", at::tensor(44100L)}},
          {bad.string(), "44100 Hz", "16000"});
  bad_run("txt_enc", {{"input_ids", at::ones({1, 40}, at::kLong)}}, {bad.string(), "40", "32"});
  bad_run("aud_b_enc", {{"pixels", at::zeros({1}, at::kByte)}}, {"unexpected input 'pixels'", "aud_b_enc"});
  bad_run("aud_b_enc", {{"audio", at::zeros({1, 300})}}, {bad.string(), "300 samples are fewer than one 25 ms frame"});
  bad_run("aud_b_enc", {{"audio", at::zeros({1, 16000})}, {"sample_rate", at::tensor(8000L)}},
          {bad.string(), "8000 Hz", "aud_b_enc's front-end takes 16000"});
  EXPECT_FALSE(fs::exists(out));
}

// --input may be one raw file, decoded as `run` decodes it (data/input_file.h):
// the outputs equal those of the same tensors given as safetensors.
TEST_F(FirmwareCli, ForwardTakesRawPngWavAndImuCsvFiles) {
  const std::string fw = demo("fw");
  auto forward = [&](const std::string& module, const fs::path& in) {
    const fs::path out = tmp_ / (in.filename().string() + ".out.safetensors");
    CliRun r = m4({"firmware", "forward", "--firmware", fw, "--module", module, "--input", in.string(), "--out",
                   out.string(), "--log-level", "warn"});
    EXPECT_EQ(r.code, 0) << module << ": " << r.err;
    return SafetensorsFile::open(out);
  };
  auto same = [](const SafetensorsFile& a, const SafetensorsFile& b, const std::string& name) {
    ASSERT_TRUE(a.contains(name) && b.contains(name)) << name;
    EXPECT_TRUE(at::equal(a.tensor(name), b.tensor(name))) << name;
  };
  // PNG: 3 x 40 x 48 RGB.
  data::Image img;
  img.channels = 3;
  img.height = 40;
  img.width = 48;
  const at::Tensor px = at::randint(0, 256, {1, 3, 40, 48}, at::kByte);
  img.pixels.assign(px.data_ptr<uint8_t>(), px.data_ptr<uint8_t>() + px.numel());
  data::write_png(tmp_ / "x.png", img);
  write_safetensors(tmp_ / "x.safetensors", {{"pixels", px}});
  same(forward("img_enc", tmp_ / "x.png"), forward("img_enc", tmp_ / "x.safetensors"), "image_embeds");
  // WAV at 16 kHz: the decoded samples, as the file holds them.
  std::vector<float> tone(16000);
  for (size_t i = 0; i < tone.size(); ++i) tone[i] = 0.5f * std::sin(2 * M_PI * 440 * static_cast<double>(i) / 16000.0);
  data::write_wav(tmp_ / "x.wav", tone, 16000, 1);
  const data::MonoAudio a = data::read_audio_mono(tmp_ / "x.wav");
  write_safetensors(tmp_ / "a.safetensors",
                    {{"audio", at::from_blob(const_cast<float*>(a.samples.data()), {1, 16000}, at::kFloat).clone()}});
  same(forward("aud_i_enc", tmp_ / "x.wav"), forward("aud_i_enc", tmp_ / "a.safetensors"), "last_hidden_state");
  same(forward("aud_b_enc", tmp_ / "x.wav"), forward("aud_b_enc", tmp_ / "a.safetensors"), "pooler_output");
  // IMU CSV: a header, then 128 rows of 6 values (exact in f32).
  const at::Tensor imu = at::randint(-64, 64, {1, 128, 6}, at::kLong).to(at::kFloat) / 8.0;
  {
    std::ofstream csv(tmp_ / "x.csv");
    csv << "ax,ay,az,gx,gy,gz\n";
    for (int64_t t = 0; t < 128; ++t) {
      for (int64_t k = 0; k < 6; ++k) csv << (k ? "," : "") << imu[0][t][k].item<float>();
      csv << "\n";
    }
  }
  write_safetensors(tmp_ / "i.safetensors", {{"imu", imu}});
  same(forward("imu_enc", tmp_ / "x.csv"), forward("imu_enc", tmp_ / "i.safetensors"), "imu_embeds");
  // A text file is not a module input; an unknown kind names itself.
  std::ofstream(tmp_ / "x.txt") << "hello";
  expect_one_line_error(m4({"firmware", "forward", "--firmware", fw, "--module", "txt_enc", "--input",
                            (tmp_ / "x.txt").string(), "--out", (tmp_ / "t.safetensors").string()}),
                        {"x.txt", "firmware tokenize"});
  std::ofstream(tmp_ / "x.bmp") << "BM";
  expect_one_line_error(m4({"firmware", "forward", "--firmware", fw, "--module", "img_enc", "--input",
                            (tmp_ / "x.bmp").string(), "--out", (tmp_ / "t.safetensors").string()}),
                        {"x.bmp", "unknown input kind '.bmp'"});
}

// Raw images whose size or shape would multiply memory are refused in one line
// naming the file, before the decode or the resize allocates for them.
TEST_F(FirmwareCli, RawImagesAreBoundedBeforeAllocation) {
  const std::string fw = demo("fw");
  auto forward = [&](const fs::path& in) {
    return m4({"firmware", "forward", "--firmware", fw, "--module", "img_enc", "--input", in.string(), "--out",
               (tmp_ / "o.safetensors").string()});
  };
  test::write_flat_png(tmp_ / "tall.png", 1, 1, 100000);
  ASSERT_LT(fs::file_size(tmp_ / "tall.png"), 4096u);
  CliRun t = forward(tmp_ / "tall.png");
  expect_one_line_error(t, {"tall.png", "aspect ratio over 32:1"});
  test::write_flat_png(tmp_ / "big.png", 1, 9000, 9000, 0);
  expect_one_line_error(forward(tmp_ / "big.png"), {"big.png", "9000 x 9000 image is over the limit of 67108864 pixels"});
  EXPECT_FALSE(fs::exists(tmp_ / "o.safetensors"));
}

// `m4forge path`: each of the three paths runs on the demo firmware, loads only
// its modules, and says so.
TEST_F(FirmwareCli, PathsRunOnTheDemoLoadingOnlyTheirModules) {
  const std::string fw = demo("fw");
  const fs::path px = tmp_ / "px.safetensors";
  write_safetensors(px, {{"pixels", at::randint(0, 256, {2, 3, 40, 48}, at::kByte)}});
  CliRun p2 = m4({"path", "--firmware", fw, "--path", "2", "--module", "img_enc", "--input", px.string(), "--labels",
                  "cat, dog, shirt"});
  ASSERT_EQ(p2.code, 0) << p2.err;
  EXPECT_NE(p2.out.find("input 0: "), std::string::npos) << p2.out;
  EXPECT_NE(p2.out.find("input 1: "), std::string::npos) << p2.out;
  EXPECT_NE(p2.err.find("loaded 2 of the firmware's 6 modules (img_enc, txt_enc)"), std::string::npos) << p2.err;
  const fs::path imu = tmp_ / "imu.safetensors";
  write_safetensors(imu, {{"imu", at::randn({1, 128, 6})}});
  CliRun p2i = m4({"path", "--firmware", fw, "--path", "2", "--module", "imu_enc", "--input", imu.string(), "--labels",
                   "walking,sitting", "--template", "The human is {label}."});
  ASSERT_EQ(p2i.code, 0) << p2i.err;
  EXPECT_NE(p2i.err.find("(imu_enc, txt_enc)"), std::string::npos) << p2i.err;
  CliRun p1 = m4({"path", "--firmware", fw, "--path", "1", "--module", "img_enc", "--input", px.string(), "--prompt",
                  "Describe", "--max-new-tokens", "4"});
  ASSERT_EQ(p1.code, 0) << p1.err;
  EXPECT_NE(p1.err.find("(img_enc, backbone)"), std::string::npos) << p1.err;
  EXPECT_NE(p1.err.find("randomly initialised"), std::string::npos) << "the untrained projector is flagged";
  CliRun p3 = m4({"path", "--firmware", fw, "--path", "3", "--prompt", "The GNU", "--max-new-tokens", "4"});
  ASSERT_EQ(p3.code, 0) << p3.err;
  EXPECT_NE(p3.err.find("loaded 1 of the firmware's 6 modules (backbone)"), std::string::npos) << p3.err;
  // Errors, one line each.
  expect_one_line_error(m4({"path", "--firmware", fw, "--path", "4"}), {"path 4"});
  expect_one_line_error(m4({"path", "--firmware", fw, "--path", "2", "--input", px.string(), "--labels", "cat"}),
                        {"at least two"});
  expect_one_line_error(m4({"path", "--firmware", fw, "--path", "2", "--input", px.string(), "--labels", "a,b",
                            "--template", "no placeholder"}),
                        {"no {label}"});
  expect_one_line_error(m4({"path", "--firmware", fw, "--path", "2", "--module", "imu_enc", "--input", px.string(),
                            "--labels", "a,b"}),
                        {px.string(), "unexpected input 'pixels'"});
}

TEST_F(FirmwareCli, F32GemmsRunWhereTheEnvironmentSaysAndABadValueIsOneLine) {
  auto run = [&](const std::string& value, const std::string& name) {
    const std::filesystem::path e = tmp_ / (name + ".err");
    const std::string cmd = "M4FORGE_F32_GEMM=" + value + " " + test::quote(test::cli_path()) +
                            " firmware init-demo --threads 2 --out " + test::quote((tmp_ / name).string()) +
                            " >/dev/null 2>" + test::quote(e.string());
    const int rc = std::system(cmd.c_str());
    return std::make_pair(rc, slurp(e));
  };
  const auto [bad_rc, bad] = run("mkl", "bad");
  EXPECT_NE(bad_rc, 0);
  EXPECT_NE(bad.find("M4FORGE_F32_GEMM=mkl: expected \"onednn\" or \"blas\""), std::string::npos) << bad;
  EXPECT_EQ(std::count(bad.begin(), bad.end(), '\n'), 1) << bad;
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "bad" / "firmware.json"));
  // The BLAS on request: the f32 split gives OpenBLAS the threads, and the log says where GEMMs run.
  const auto [blas_rc, blas] = run("blas", "blas");
  ASSERT_EQ(blas_rc, 0) << blas;
  EXPECT_NE(blas.find("f32 GEMMs in BLAS (M4FORGE_F32_GEMM=blas)"), std::string::npos) << blas;
  if (blas.find("(openblas") != std::string::npos && blas.find(", pthreads)") != std::string::npos) {
    EXPECT_NE(blas.find("1 ATen threads, 2 OpenBLAS threads"), std::string::npos) << blas;
  }
}

}  // namespace
}  // namespace m4

namespace m4 {
namespace {

// OpenBLAS's kernel set is logged; a user's OPENBLAS_CORETYPE is kept as given;
// where this machine's OpenBLAS misdetects the CPU (restart note in the log),
// the restarted process runs better kernels than the ones it fell back to.
TEST_F(FirmwareCli, LogsTheBlasKernelsAndKeepsAUsersCoreType) {
  auto run = [&](const std::string& env, const std::string& dir) {
    const std::filesystem::path e = tmp_ / (dir + ".err");
    const std::string cmd = env + " " + test::quote(test::cli_path()) + " firmware init-demo --out " +
                            test::quote((tmp_ / dir).string()) + " >/dev/null 2>" + test::quote(e.string());
    EXPECT_EQ(std::system(cmd.c_str()), 0) << slurp(e);
    return slurp(e);
  };
  const std::string forced = run("OPENBLAS_CORETYPE=Prescott", "forced");
  if (forced.find("(openblas") == std::string::npos) GTEST_SKIP() << "BLAS is not OpenBLAS: " << forced;
  EXPECT_NE(forced.find("Prescott kernels"), std::string::npos) << forced;
  EXPECT_EQ(forced.find("restarted with"), std::string::npos) << forced;
  const std::string plain = run("env -u OPENBLAS_CORETYPE M4FORGE_BLAS_RESTART=on", "plain");
  EXPECT_NE(plain.find(" kernels, pthreads)"), std::string::npos) << plain;
  if (plain.find("restarted with OPENBLAS_CORETYPE=") != std::string::npos) {
    std::cout << "[check] this machine's OpenBLAS misdetects the CPU: " << plain.substr(plain.find("OpenBLAS took"));
    EXPECT_EQ(plain.find("Prescott kernels"), std::string::npos) << plain;
  }
}

// With an OpenBLAS built on OpenMP (Debian's libopenblas0-openmp, which the set-up
// installs without selecting it), the GEMMs run on ATen's OpenMP threads: giving ATen
// one thread for f32, as the pthreads build wants, would leave the GEMMs one thread.
TEST_F(FirmwareCli, AnOpenMpOpenBlasGetsEveryThread) {
  const std::filesystem::path lib = "/usr/lib/x86_64-linux-gnu/openblas-openmp";
  if (!std::filesystem::exists(lib / "libblas.so.3")) GTEST_SKIP() << "no " << lib.string() << " (libopenblas0-openmp)";
  const std::filesystem::path e = tmp_ / "omp.err";
  const std::string cmd = "LD_LIBRARY_PATH=" + lib.string() + " " + test::quote(test::cli_path()) +
                          " firmware init-demo --threads 2 --out " + test::quote((tmp_ / "omp").string()) +
                          " >/dev/null 2>" + test::quote(e.string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(e);
  const std::string log = slurp(e);
  EXPECT_NE(log.find("openblas-openmp/libblas.so.3 (openblas"), std::string::npos) << log;
  EXPECT_NE(log.find(", openmp), 2 ATen threads, 2 OpenBLAS threads"), std::string::npos) << log;
}

}  // namespace
}  // namespace m4
