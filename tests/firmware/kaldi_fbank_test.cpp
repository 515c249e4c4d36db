// AST's front-end against HF transformers' ASTFeatureExtractor (torchaudio's Kaldi fbank)
// on real recordings and edge cases (tests/fixtures/hf-frontends/ast_fbank, written by
// its make_fixtures.py), under two checkpoints' settings; and end to end through
// import-hf: a checkpoint's preprocessor_config.json read into the firmware (and its
// id), raw audio -> features -> the tiny ASTModel's outputs as HF computes them.
#include "firmware/kaldi_fbank.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/json_file.h"
#include "core/safetensors.h"
#include "firmware/ast.h"
#include "firmware/encoder_input.h"
#include "firmware/firmware.h"
#include "firmware/module_loader.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::expect_error;
using test::max_abs_diff;
using test::TempDir;

fs::path fbank_dir() { return test::frontend_fixtures() / "ast_fbank"; }

// The fixture's recordings are 16 kHz int16; HF was given i16 / 32768.
at::Tensor clip(const SafetensorsFile& audio, const std::string& name) {
  return audio.tensor(name).to(at::kFloat).div(32768.0);
}

// An AST config of `bins` x `frames` with a preprocessor_config.json read into it.
AstConfig config_with(const fs::path& preprocessor, int64_t bins, int64_t frames) {
  json c = {{"hidden_size", 64}, {"num_hidden_layers", 1}, {"num_attention_heads", 4}, {"intermediate_size", 64},
            {"num_mel_bins", bins}, {"max_length", frames}};
  return AstConfig::from_json(c, "config").with_preprocessor(read_json_file(preprocessor), preprocessor.string());
}

void expect_matches_hf(const std::string& setting, int64_t frames, const std::vector<std::string>& names) {
  const SafetensorsFile audio = SafetensorsFile::open(fbank_dir() / "audio.safetensors");
  const SafetensorsFile ref = SafetensorsFile::open(fbank_dir() / setting / "input_values.safetensors");
  const AstConfig c = config_with(fbank_dir() / setting / "preprocessor_config.json", 128, frames);
  double worst = 0;
  for (const auto& name : names) {
    SCOPED_TRACE(setting + "/" + name);
    const at::Tensor ours = ast_fbank_features(clip(audio, name), c.feature_options())[0];  // (frames, 128)
    ASSERT_EQ(ours.sizes(), (std::vector<int64_t>{frames, 128}));
    const int64_t real = ref.tensor(name + ".real_frames").item<int64_t>();
    double d = 0;
    if (real > 0) d = max_abs_diff(ours.narrow(0, 0, real), ref.tensor(name + ".values").narrow(0, 0, real));
    if (real < frames) {
      // HF's padded rows, all one value: (0 - mean) / (2 std).
      const float pad = ref.tensor(name + ".pad_value").item<float>();
      d = std::max(d, max_abs_diff(ours.narrow(0, real, frames - real), at::full({frames - real, 128}, pad)));
    }
    std::cout << "[parity] ast fbank " << setting << " " << name << " (" << real << " frames of " << frames
              << "): max |diff| = " << d << "\n";
    EXPECT_LT(d, 1e-4);
    worst = std::max(worst, d);
  }
  std::cout << "[parity] ast fbank " << setting << ": worst max |diff| = " << worst << " over " << names.size()
            << " clips\n";
}

TEST(AstFbank, MatchesHfOnRealRecordingsWithAudioSetSettings) {
  // Speech (asterisk-core-sounds-en-wav), music (sonic-pi-samples), silence, a clipped tone, one frame.
  expect_matches_hf("audioset", 1024,
                    {"tt_weasels", "conf_onlyperson", "ambi_choir", "loop_amen", "silence", "clipped", "one_frame"});
}

TEST(AstFbank, MatchesHfWithSpeechCommandsSettingsAndTruncates) {
  // 128 frames, another mean and std: every clip but the synthetic 1 s ones is cut.
  expect_matches_hf("speech_commands", 128,
                    {"tt_weasels", "conf_onlyperson", "ambi_choir", "loop_amen", "loop_tabla", "silence", "clipped",
                     "one_frame"});
}

TEST(AstFbank, BatchRowsAreTheirOwnClips) {
  const SafetensorsFile audio = SafetensorsFile::open(fbank_dir() / "audio.safetensors");
  AstFeatureOptions o;
  o.max_length = 100;
  const at::Tensor a = clip(audio, "tt_weasels").narrow(0, 0, 16000), b = clip(audio, "ambi_choir").narrow(0, 0, 16000);
  const at::Tensor both = ast_fbank_features(at::stack({a, b}), o);
  EXPECT_TRUE(both[0].equal(ast_fbank_features(a, o)[0]));
  EXPECT_TRUE(both[1].equal(ast_fbank_features(b, o)[0]));
  EXPECT_FALSE(both[0].equal(both[1]));
}

TEST(AstFbank, NormalisationCanBeOff) {
  AstFeatureOptions o;
  o.max_length = 10;
  o.do_normalize = false;
  const at::Tensor silence = ast_fbank_features(at::zeros({8000}), o);
  // DC-free silence has no energy: every filter is floored at f32 epsilon.
  EXPECT_TRUE(silence.narrow(1, 0, 10).allclose(at::full({1, 10, 128}, std::log(1.1920928955078125e-07f))));
}

TEST(KaldiFbank, MelFiltersAreTrianglesOnKaldisMelScale) {
  const at::Tensor banks = kaldi_mel_banks(23, 512, 16000, 20, 0);  // Kaldi's defaults
  ASSERT_EQ(banks.sizes(), (std::vector<int64_t>{23, 257}));
  EXPECT_EQ(banks.select(1, 256).abs().sum().item<float>(), 0.0f);  // the Nyquist bin carries no weight
  EXPECT_GE(banks.min().item<float>(), 0.0f);
  EXPECT_LE(banks.max().item<float>(), 1.0f);
  // Filter k peaks at the FFT bin nearest its centre: 700 (e^(m_k / 1127) - 1) Hz with m_k
  // equally spaced from mel(20 Hz) to mel(8 kHz) in 24 steps.
  const double lo = 1127 * std::log(1 + 20 / 700.0), hi = 1127 * std::log(1 + 8000 / 700.0);
  for (int k = 0; k < 23; ++k) {
    const double hz = 700 * (std::exp((lo + (k + 1) * (hi - lo) / 24) / 1127) - 1);
    const int64_t peak = banks[k].argmax().item<int64_t>();
    EXPECT_NEAR(static_cast<double>(peak), hz / (16000.0 / 512), 1.0) << "filter " << k;
  }
}

TEST(KaldiFbank, BadInputsGiveOneLineErrors) {
  KaldiFbankOptions o;
  expect_error([&] { kaldi_fbank(at::zeros({300}), o); }, {"300 samples are fewer than one 25 ms frame", "400 samples"});
  expect_error([&] { kaldi_fbank(at::zeros({1, 2, 800}), o); }, {"(samples) or (batch, samples)", "[1, 2, 800]"});
  expect_error([&] { kaldi_fbank(at::zeros({800}, at::kInt), o); }, {"must be F32"});
  expect_error([&] { kaldi_mel_banks(3, 512, 16000, 20, 0); }, {"at least 4 mel bins"});
  expect_error([&] { kaldi_mel_banks(23, 512, 16000, 20, 9000); }, {"mel range 20..9000 Hz"});
  AstFeatureOptions a;
  expect_error([&] { ast_fbank_features(at::zeros({1, 2, 800}), a); }, {"(batch, samples) or (samples)"});
  expect_error([&] { ast_fbank_features(at::zeros({1, 399}), a); }, {"399 samples are fewer than one 25 ms frame"});
}

// A checkpoint directory: the tiny ASTModel of ../hf-reference/ast with `preprocessor`
// (a preprocessor_config.json) beside it, or none.
fs::path tiny_checkpoint(const TempDir& tmp, const std::string& name, const json* preprocessor) {
  const fs::path d = tmp / name;
  fs::create_directories(d);
  fs::copy_file(test::fixtures() / "ast" / "config.json", d / "config.json");
  fs::copy_file(test::fixtures() / "ast" / "model.safetensors", d / "model.safetensors");
  if (preprocessor != nullptr) write_file_atomic(d / "preprocessor_config.json", preprocessor->dump());
  return d;
}

FirmwareManifest import_ast(const TempDir& tmp, const std::string& name, const fs::path& src) {
  ImportHfOptions o;
  o.out = tmp / name;
  o.name = "ast-" + name;
  o.version = "1.0.0";
  o.aud_b_enc = src;
  return import_hf(o);
}

TEST(AstFrontEnd, ImportReadsThePreprocessorConfigAndMatchesHfEndToEnd) {
  at::NoGradGuard ng;
  TempDir tmp;
  const json pre = read_json_file(fbank_dir() / "tiny_model" / "preprocessor_config.json");
  const FirmwareManifest m = import_ast(tmp, "fw", tiny_checkpoint(tmp, "src", &pre));
  const json& fe = m.modules.at("aud_b_enc").config.at("feature_extractor");
  EXPECT_EQ(fe.at("mean").get<double>(), -5.5);
  EXPECT_EQ(fe.at("std").get<double>(), 3.25);
  EXPECT_TRUE(fs::exists(tmp / "fw" / "aud_b_enc" / "preprocessor_config.json"));
  EXPECT_NE(m.provenance.at("aud_b_enc").at("front_end").get<std::string>().find("preprocessor_config.json of"),
            std::string::npos);

  Firmware fw = Firmware::open(tmp / "fw");
  auto model = load_firmware_module(fw, "aud_b_enc");
  ASSERT_EQ(encoder_input_spec(*model, "aud_b_enc").raw, "audio");
  const SafetensorsFile audio = SafetensorsFile::open(fbank_dir() / "audio.safetensors");
  const SafetensorsFile ref = SafetensorsFile::open(fbank_dir() / "tiny_model" / "reference.safetensors");
  for (const std::string name : {"tt_weasels", "ambi_choir", "silence"}) {
    const at::Tensor features = encoder_features(*model, clip(audio, name).unsqueeze(0));
    const double df = max_abs_diff(features[0], ref.tensor(name + ".input_values"));
    const EncoderOutput out = encode_features(*model, features);
    const double dp = max_abs_diff(out.pooler_output[0], ref.tensor(name + ".pooler_output"));
    const double dh = max_abs_diff(out.last_hidden_state[0], ref.tensor(name + ".last_hidden_state"));
    std::cout << "[parity] ast raw audio -> HF ASTModel, " << name << ": input_values " << df << ", pooler_output "
              << dp << ", last_hidden_state " << dh << "\n";
    EXPECT_LT(df, 1e-4) << name;
    EXPECT_LT(dp, 1e-4) << name;
    EXPECT_LT(dh, 1e-4) << name;
  }
}

TEST(AstFrontEnd, TheFirmwareIdCoversTheFrontEnd) {
  TempDir tmp;
  json pre = read_json_file(fbank_dir() / "tiny_model" / "preprocessor_config.json");
  const FirmwareManifest a = import_ast(tmp, "a", tiny_checkpoint(tmp, "src_a", &pre));
  pre["std"] = 3.5;
  const FirmwareManifest b = import_ast(tmp, "b", tiny_checkpoint(tmp, "src_b", &pre));
  EXPECT_NE(a.firmware_id, b.firmware_id);
  // Without a preprocessor_config.json: HF's defaults, said so in the provenance.
  const FirmwareManifest c = import_ast(tmp, "c", tiny_checkpoint(tmp, "src_c", nullptr));
  EXPECT_EQ(c.modules.at("aud_b_enc").config.at("feature_extractor").at("mean").get<double>(), -4.2677393);
  EXPECT_NE(c.provenance.at("aud_b_enc").at("front_end").get<std::string>().find("HF's defaults"), std::string::npos);
  EXPECT_NE(c.firmware_id, a.firmware_id);
  // Editing the stored front-end after import is caught: its module no longer hashes to its digest.
  json fwj = read_json_file(tmp / "a" / "firmware.json");
  fwj["modules"]["aud_b_enc"]["config"]["feature_extractor"]["mean"] = 0.0;
  write_file_atomic(tmp / "a" / "firmware.json", fwj.dump(1));
  expect_error([&] { Firmware::open(tmp / "a").verify(); }, {"aud_b_enc"});
}

TEST(AstFrontEnd, AMismatchedPreprocessorIsRefusedNamingTheFile) {
  TempDir tmp;
  json pre = read_json_file(fbank_dir() / "audioset" / "preprocessor_config.json");  // 128 bins, 1024 frames
  const fs::path src = tiny_checkpoint(tmp, "src", &pre);
  expect_error([&] { import_ast(tmp, "fw", src); },
               {"preprocessor_config.json", "num_mel_bins 128 but the model's config.json has 32",
                "max_length 1024 frames but the model's config.json has 64"});
  EXPECT_FALSE(fs::exists(tmp / "fw"));
  json bad = read_json_file(fbank_dir() / "tiny_model" / "preprocessor_config.json");
  bad["sampling_rate"] = 22050;
  bad["std"] = -1;
  bad["feature_extractor_type"] = "WhisperFeatureExtractor";
  expect_error([&] { import_ast(tmp, "fw2", tiny_checkpoint(tmp, "src2", &bad)); },
               {"sampling_rate 22050 Hz", "'std' must be a finite number > 0", "not \"ASTFeatureExtractor\""});
  expect_error([&] { AstConfig::from_json({{"hidden_size", 64}, {"num_hidden_layers", 1}, {"num_attention_heads", 4},
                                            {"intermediate_size", 64}, {"num_mel_bins", 32}, {"max_length", 64},
                                            {"feature_extractor", {{"mean", "x"}, {"dither", 1.0}}}},
                                           "cfg"); },
               {"unknown field 'dither'", "'mean' must be a finite number"});
}

}  // namespace
}  // namespace m4
