// `m4forge firmware ...`: init-demo, import-hf, inspect, quantize, forward, tokenize, generate.
#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <set>

#include "cli/cli_common.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "firmware/clip.h"
#include "firmware/clip_tokenizer.h"
#include "firmware/demo.h"
#include "firmware/firmware.h"
#include "firmware/llama.h"
#include "firmware/module_arch.h"
#include "firmware/module_forward.h"
#include "firmware/quantize.h"
#include "firmware/quantized_weight.h"
#include "firmware/tokenizer.h"
#include "firmware/weight_set.h"
#include "peft/adapter.h"

namespace m4::cli {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", b / double(1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", b / double(1ull << 20));
  else std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  return buf;
}

int init_demo_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge firmware init-demo",
                     "Write the small deterministic demo firmware (random weights, NOT trained).");
  o.add_options()("out", "firmware directory to create", cxxopts::value<std::string>())(
      "seed", "seed (same seed -> same firmware_id)", cxxopts::value<uint64_t>()->default_value("0"))(
      "name", "firmware name", cxxopts::value<std::string>()->default_value("m4-demo"))(
      "version", "firmware version", cxxopts::value<std::string>()->default_value("1.0.0"))(
      "width", "multiply every module's widths (for benchmarks; 1: the demo)", cxxopts::value<int64_t>()->default_value("1"));
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  DemoOptions d;
  d.width = r["width"].as<int64_t>();
  d.out = required(r, "out");
  d.seed = r["seed"].as<uint64_t>();
  d.name = r["name"].as<std::string>();
  d.version = r["version"].as<std::string>();
  auto t0 = Clock::now();
  FirmwareManifest m = init_demo(d);
  spdlog::info("wrote demo firmware {}@{} to {} in {:.2f} s", m.name, m.version, d.out.string(), seconds_since(t0));
  std::cout << "firmware_id: " << m.firmware_id << "\n";
  return 0;
}

int import_hf_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge firmware import-hf", "Import Hugging Face checkpoint directories as a firmware.");
  o.add_options()("backbone", "HF LlamaForCausalLM directory (config.json + safetensors [+ tokenizer.model])",
                  cxxopts::value<std::string>())(
      "img-enc", "HF CLIPVisionModel[WithProjection] or CLIPModel directory", cxxopts::value<std::string>())(
      "txt-enc", "HF CLIPTextModel[WithProjection] or CLIPModel directory with vocab.json + merges.txt",
      cxxopts::value<std::string>())(
      "aud-i-enc", "HF WhisperModel/WhisperForConditionalGeneration directory (encoder kept)",
      cxxopts::value<std::string>())("aud-b-enc", "HF ASTModel directory", cxxopts::value<std::string>())(
      "imu-enc", "IMU encoder directory (config.json + model.safetensors, docs/firmware-format.md)",
      cxxopts::value<std::string>())("name", "firmware name", cxxopts::value<std::string>())(
      "version", "firmware semver version X.Y.Z", cxxopts::value<std::string>())(
      "out", "firmware directory to create", cxxopts::value<std::string>());
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  ImportHfOptions io;
  io.out = required(r, "out");
  io.name = required(r, "name");
  io.version = required(r, "version");
  if (r.count("backbone")) io.backbone = r["backbone"].as<std::string>();
  if (r.count("img-enc")) io.img_enc = r["img-enc"].as<std::string>();
  if (r.count("txt-enc")) io.txt_enc = r["txt-enc"].as<std::string>();
  if (r.count("aud-i-enc")) io.aud_i_enc = r["aud-i-enc"].as<std::string>();
  if (r.count("aud-b-enc")) io.aud_b_enc = r["aud-b-enc"].as<std::string>();
  if (r.count("imu-enc")) io.imu_enc = r["imu-enc"].as<std::string>();
  auto t0 = Clock::now();
  FirmwareManifest m = import_hf(io);
  spdlog::info("imported {}@{} into {} in {:.2f} s", m.name, m.version, io.out.string(), seconds_since(t0));
  std::cout << "firmware_id: " << m.firmware_id << "\n";
  return 0;
}

struct ModuleStats {
  uint64_t params = 0, bytes = 0, tensors = 0;
  std::set<std::string> dtypes;
};

ModuleStats stats_of(const WeightSet& ws) {
  ModuleStats s;
  for (const auto& n : ws.names()) {
    const TensorInfo& t = ws.info(n);
    // Parameters as the model sees them: a quantized weight counts once, at the shape it dequantizes to.
    uint64_t count = quantized_weight_of_scale(ws, n).empty() ? 1 : 0;
    for (auto d : is_quantized_weight(ws, n) ? quantized_logical_shape(t) : t.shape) count *= static_cast<uint64_t>(d);
    s.params += count;
    s.bytes += t.nbytes();
    s.tensors += 1;
    s.dtypes.insert(dtype_name(t.dtype));
  }
  return s;
}

int inspect_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge firmware inspect", "Show a firmware: name, version, firmware_id, modules.");
  o.add_options()("firmware", "firmware directory", cxxopts::value<std::string>())(
      "json", "print JSON instead of text")("verify", "recompute every digest and the firmware_id");
  o.parse_positional({"firmware"});
  o.positional_help("FW");
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  Firmware fw = Firmware::open(required(r, "firmware"));
  const auto& m = fw.manifest();
  json j = m.to_json();
  std::ostringstream text;
  text << "name: " << m.name << "\nversion: " << m.version << "\nfirmware_id: " << m.firmware_id
       << "\ncreated_by: " << m.created_by << "\n";
  if (!m.derived_from.is_null())
    text << "derived_from: " << describe_derivation(m.derived_from) << " (" << m.derived_from["firmware_id"].get<std::string>()
         << ")\n";
  text << "modules:\n";
  for (const auto& [name, mod] : m.modules) {
    ModuleStats s = stats_of(fw.weights(name));
    std::string dts;
    for (const auto& d : s.dtypes) dts += (dts.empty() ? "" : ",") + d;
    j["modules"][name]["stats"] = {{"parameters", s.params}, {"bytes", s.bytes}, {"tensors", s.tensors},
                                   {"dtypes", s.dtypes}};
    text << "  " << name << ": arch " << mod.arch << ", " << s.params << " parameters, " << s.tensors
         << " tensors, dtypes " << dts << ", " << human_bytes(s.bytes)
         << "\n    " << module_arch(mod.arch).summary(mod.config) << "\n";
    for (const auto& [role, rel] : mod.assets) text << "    " << role << ": " << rel << "\n";
    text << "    digest: " << mod.digest << "\n";
  }
  if (r.count("verify")) {
    auto t0 = Clock::now();
    fw.verify(r["threads"].as<int>());
    text << "verify: ok (all digests and the firmware_id recomputed from the files in " << std::fixed
         << std::setprecision(2) << seconds_since(t0) << " s)\n";
    j["verified"] = true;
  }
  std::cout << (r.count("json") ? j.dump(1) + "\n" : text.str());
  return 0;
}

int quantize_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge firmware quantize",
                     "Write a firmware whose layer projections are stored quantized (weight-only, symmetric,\n"
                     "round-to-nearest): its own firmware_id, and a derived_from record naming FW.");
  o.add_options()("firmware", "source firmware directory", cxxopts::value<std::string>())(
      "out", "firmware directory to create", cxxopts::value<std::string>())(
      "bits", "8 (INT8) or 4 (two per byte)", cxxopts::value<int>()->default_value("8"))(
      "group-size", "input columns per scale; 0: one per output channel (default: 0 for 8 bits, 64 for 4)",
      cxxopts::value<int64_t>())("modules", "modules to quantize (comma-separated)",
                                 cxxopts::value<std::vector<std::string>>()->default_value("backbone"))(
      "name", "name of the new firmware (default: FW's name + -int8/-int4)", cxxopts::value<std::string>())(
      "version", "version of the new firmware (default: FW's)", cxxopts::value<std::string>());
  o.parse_positional({"firmware"});
  o.positional_help("FW");
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  QuantizeOptions q;
  q.source = required(r, "firmware");
  q.out = required(r, "out");
  q.bits = r["bits"].as<int>();
  if (r.count("group-size")) {
    q.group_size = r["group-size"].as<int64_t>();
    M4_CHECK(q.group_size >= 0, ErrorCode::kInvalidArgument, "--group-size must be 0 (per channel) or >= 2, found ",
             q.group_size);
  }
  q.modules = r["modules"].as<std::vector<std::string>>();
  if (r.count("name")) q.name = r["name"].as<std::string>();
  if (r.count("version")) q.version = r["version"].as<std::string>();
  auto t0 = Clock::now();
  const FirmwareManifest m = quantize_firmware(q);
  spdlog::info("wrote {}@{} to {} in {:.2f} s: {}", m.name, m.version, q.out.string(), seconds_since(t0),
               describe_derivation(m.derived_from));
  std::cout << "firmware_id: " << m.firmware_id << "\n";
  return 0;
}

int forward_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge firmware forward",
                     "Run one module on named input tensors; write its outputs (the parity surface).\n"
                     "  backbone:  input_ids (B,T) [attention_mask, position_ids] -> logits, hidden_states.K\n"
                     "  img_enc:   pixel_values (B,3,H,W) f32 or pixels (B,C,H,W) uint8 (CLIP preprocessing)\n"
                     "             -> last_hidden_state, pooler_output, image_embeds, hidden_states.K\n"
                     "  txt_enc:   input_ids (B,T) [attention_mask] -> last_hidden_state, pooler_output, text_embeds\n"
                     "  aud_i_enc: input_features (B,mel,frames) or audio (B,samples) f32 16 kHz [sample_rate I64]\n"
                     "             -> last_hidden_state, hidden_states.K (+ input_features from audio)\n"
                     "  aud_b_enc: input_values (B,time,mel) or audio (B,samples) f32 16 kHz (Kaldi fbank)\n"
                     "             -> last_hidden_state, pooler_output, hidden_states.K (+ input_values from audio)\n"
                     "  imu_enc:   imu (B,T,6) -> last_hidden_state, pooler_output, imu_embeds, hidden_states.K");
  o.add_options()("firmware", "firmware directory", cxxopts::value<std::string>())(
      "module", "module to run", cxxopts::value<std::string>()->default_value("backbone"))(
      "input", "input safetensors (named tensors), or one raw input: .png image, .wav/.flac/.ogg audio, .csv IMU",
      cxxopts::value<std::string>())(
      "out", "output safetensors", cxxopts::value<std::string>())(
      "adapter", "m4forge adapter safetensors: its methods on this module are applied", cxxopts::value<std::string>());
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  const std::string module = r["module"].as<std::string>();
  const fs::path in_path = required(r, "input"), out_path = required(r, "out");
  Firmware fw = Firmware::open(required(r, "firmware"));
  at::NoGradGuard no_grad;
  NamedTensors outs;
  try {
    auto t0 = Clock::now();
    std::unique_ptr<Adapter> adapter;
    ModuleHook hook;
    if (r.count("adapter")) {
      hook = [&](const std::string& name, std::shared_ptr<torch::nn::Module> m) {
        adapter = Adapter::open_file(r["adapter"].as<std::string>(), {{name, std::move(m)}}, fw.label(),
                                     /*loaded_only=*/true);
        spdlog::info("adapter {}: {} trainable parameters on {}", r["adapter"].as<std::string>(), adapter->trainable_count(), name);
      };
    }
    outs = forward_module(fw, module, module_inputs_of(in_path), hook);
    spdlog::info("forward of {} in {:.3f} s", module, seconds_since(t0));
  } catch (const Error& e) {
    rethrow_naming_input(e, in_path);
  }
  write_safetensors(out_path, outs, {{"firmware_id", fw.id()}, {"module", module}});
  std::cout << "wrote " << out_path.string() << ":";
  for (const auto& [n, t] : outs) std::cout << " " << n << " " << t.sizes();
  std::cout << "\n";
  return 0;
}

// Encodes texts as a (B, T) batch with the tokenizer's BOS, padded on `side`.
std::pair<at::Tensor, at::Tensor> encode_batch(const Tokenizer& tok, const std::vector<std::string>& texts,
                                               bool left, int64_t pad) {
  std::vector<std::vector<int64_t>> rows;
  size_t T = 0;
  for (const auto& t : texts) {
    std::vector<int64_t> ids;
    if (tok.bos_id() >= 0) ids.push_back(tok.bos_id());
    auto body = tok.encode(t);
    ids.insert(ids.end(), body.begin(), body.end());
    T = std::max(T, ids.size());
    rows.push_back(std::move(ids));
  }
  const int64_t B = static_cast<int64_t>(rows.size());
  at::Tensor ids = at::full({B, static_cast<int64_t>(T)}, pad, at::kLong);
  at::Tensor mask = at::zeros({B, static_cast<int64_t>(T)}, at::kLong);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = static_cast<int64_t>(rows[b].size()), off = left ? static_cast<int64_t>(T) - n : 0;
    for (int64_t i = 0; i < n; ++i) {
      ids[b][off + i] = rows[b][i];
      mask[b][off + i] = 1;
    }
  }
  return {ids, mask};
}

int tokenize_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge firmware tokenize",
                     "Encode texts with a module's tokenizer into input_ids + attention_mask:\n"
                     "backbone (SentencePiece, bos + text) or txt_enc (CLIP BPE, bos + text + eos).");
  o.add_options()("firmware", "firmware directory", cxxopts::value<std::string>())(
      "module", "backbone or txt_enc", cxxopts::value<std::string>()->default_value("backbone"))(
      "text", "a text (repeat for a batch)", cxxopts::value<std::vector<std::string>>())(
      "padding", "left or right (backbone)", cxxopts::value<std::string>()->default_value("right"))(
      "out", "output safetensors", cxxopts::value<std::string>());
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  Firmware fw = Firmware::open(required(r, "firmware"));
  M4_CHECK(r.count("text"), ErrorCode::kInvalidArgument, "missing required option --text (see --help)");
  const std::string side = r["padding"].as<std::string>(), module = r["module"].as<std::string>();
  M4_CHECK(side == "left" || side == "right", ErrorCode::kInvalidArgument, "--padding must be left or right");
  const auto texts = r["text"].as<std::vector<std::string>>();
  at::Tensor ids, mask;
  if (fw.module(module).arch == "clip_text") {
    const FirmwareModule& m = fw.module(module);
    const ClipTokenizer tok = fw.clip_tokenizer(module);
    const int64_t max_len = ClipTextConfig::from_json(m.config, module).max_position_embeddings;
    ClipBatch batch = tok.encode_batch(texts, max_len, /*pad_to_max_length=*/false);
    ids = batch.input_ids;
    mask = batch.attention_mask;
  } else {
    Tokenizer tok = fw.tokenizer(module);
    std::tie(ids, mask) = encode_batch(tok, texts, side == "left", std::max<int64_t>(tok.pad_id(), 0));
  }
  const fs::path out = required(r, "out");
  write_safetensors(out, {{"input_ids", ids}, {"attention_mask", mask}});
  std::cout << "wrote " << out.string() << ": input_ids " << ids.sizes() << "\n";
  return 0;
}

int generate_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge firmware generate", "Generate text with the firmware's backbone (KV cache).");
  o.add_options()("firmware", "firmware directory", cxxopts::value<std::string>())(
      "prompt", "a prompt (repeat for a batch; left-padded)", cxxopts::value<std::vector<std::string>>())(
      "max-new-tokens", "tokens to generate", cxxopts::value<int64_t>()->default_value("16"))(
      "temperature", "0 = greedy", cxxopts::value<double>()->default_value("0"))(
      "top-p", "nucleus sampling mass", cxxopts::value<double>()->default_value("1"))(
      "seed", "sampling seed", cxxopts::value<uint64_t>()->default_value("0"));
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  Firmware fw = Firmware::open(required(r, "firmware"));
  M4_CHECK(r.count("prompt"), ErrorCode::kInvalidArgument, "missing required option --prompt (see --help)");
  const auto prompts = r["prompt"].as<std::vector<std::string>>();
  Tokenizer tok = fw.tokenizer();
  at::NoGradGuard no_grad;
  auto model = fw.load_backbone({});
  GenerateOptions g;
  g.max_new_tokens = r["max-new-tokens"].as<int64_t>();
  g.temperature = r["temperature"].as<double>();
  g.top_p = r["top-p"].as<double>();
  g.seed = r["seed"].as<uint64_t>();
  g.stop_ids = model->config().eos_token_ids;
  if (tok.eos_id() >= 0) g.stop_ids.push_back(tok.eos_id());
  g.pad_id = std::max<int64_t>(tok.pad_id(), 0);
  auto [ids, mask] = encode_batch(tok, prompts, /*left=*/true, g.pad_id);
  auto t0 = Clock::now();
  at::Tensor out = generate(*model, ids, mask, g);
  const double secs = seconds_since(t0);
  spdlog::info("generated {} x {} tokens in {:.3f} s ({:.1f} tokens/s)", out.size(0), out.size(1), secs,
               out.numel() / std::max(secs, 1e-9));
  for (int64_t b = 0; b < out.size(0); ++b) {
    std::vector<int64_t> row;
    for (int64_t i = 0; i < out.size(1); ++i) {
      int64_t id = out[b][i].item<int64_t>();
      if (std::find(g.stop_ids.begin(), g.stop_ids.end(), id) != g.stop_ids.end()) break;
      row.push_back(id);
    }
    std::cout << "prompt: " << prompts[b] << "\ncompletion: " << tok.decode(row) << "\ntokens:";
    for (auto id : row) std::cout << " " << id;
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

int run_firmware(int argc, char** argv) {
  static const std::map<std::string, int (*)(int, char**)> kVerbs = {
      {"init-demo", init_demo_cmd}, {"import-hf", import_hf_cmd}, {"inspect", inspect_cmd}, {"quantize", quantize_cmd},
      {"forward", forward_cmd},     {"tokenize", tokenize_cmd},   {"generate", generate_cmd}};
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::cout << "usage: m4forge firmware <init-demo|import-hf|inspect|quantize|forward|tokenize|generate> [options]\n";
    return argc < 2 ? 2 : 0;
  }
  auto it = kVerbs.find(argv[1]);
  M4_CHECK(it != kVerbs.end(), ErrorCode::kInvalidArgument, "unknown command 'firmware ", argv[1],
           "' (known: init-demo, import-hf, inspect, quantize, forward, tokenize, generate)");
  return it->second(argc - 1, argv + 1);
}

}  // namespace m4::cli
