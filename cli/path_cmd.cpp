// `m4forge path`: run one of M4's execution paths (§3.3) on the demo or any
// firmware, loading only the modules the path names, and report what was
// loaded and the memory it took.
#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <sstream>

#include "cli/cli_common.h"
#include "core/cpu_runtime.h"
#include "core/error.h"
#include "firmware/clip.h"
#include "firmware/clip_tokenizer.h"
#include "firmware/firmware.h"
#include "firmware/llama.h"
#include "firmware/module_forward.h"
#include "firmware/projector.h"
#include "firmware/tokenizer.h"
#include "firmware/weight_set.h"
#include "task/execution_path.h"

namespace m4::cli {
namespace {
namespace fs = std::filesystem;

std::vector<std::string> split_labels(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    const size_t a = item.find_first_not_of(' '), b = item.find_last_not_of(' ');
    if (a != std::string::npos) out.push_back(item.substr(a, b - a + 1));
  }
  return out;
}

void log_memory(const Firmware& fw, const std::vector<std::string>& modules) {
  std::string names;
  for (const auto& m : modules) names += (names.empty() ? "" : ", ") + m;
  const ProcessMemory mem = process_memory();
  spdlog::info("path loaded {} of the firmware's {} modules ({}); RSS {:.1f} MiB (anonymous {:.1f}, file-backed {:.1f}: shared libraries and mapped weights), "
               "peak {:.1f} MiB",
               modules.size(), fw.manifest().modules.size(), names, mem.rss_kib / 1024.0, mem.anon_kib / 1024.0,
               mem.file_kib / 1024.0, mem.peak_kib / 1024.0);
}

// Path-2: which templated label text is closest to each input.
void run_path2(const Firmware& fw, const std::string& encoder, const fs::path& input, const std::string& labels_arg,
               const std::string& templ) {
  const auto labels = split_labels(labels_arg);
  M4_CHECK(labels.size() >= 2, ErrorCode::kInvalidArgument, "--labels needs at least two comma-separated labels");
  std::vector<std::string> texts;
  for (const auto& l : labels) texts.push_back(render_label_template(templ, l));
  EncoderRun run = run_encoder(fw, encoder, module_inputs_of(input));
  M4_CHECK(run.out.embeds.defined(), ErrorCode::kMismatch, "module ", encoder,
           " has no projection to the shared embedding space, so Path-2 cannot compare it with text");
  const ClipTokenizer tok = fw.clip_tokenizer("txt_enc");
  auto txt = fw.load_module<ClipTextConfig, ClipTextImpl>("txt_enc");
  ClipBatch batch = tok.encode_batch(texts, txt->config().max_position_embeddings, false);
  at::Tensor label_embeds = txt->forward(batch.input_ids, batch.attention_mask).embeds;  // (L, P)
  at::Tensor probs = at::softmax(cosine_logits(run.out.embeds, label_embeds), -1);       // (B, L)
  log_memory(fw, path_modules(2, encoder));
  for (int64_t b = 0; b < probs.size(0); ++b) {
    const int64_t best = probs[b].argmax().item<int64_t>();
    std::cout << "input " << b << ": " << labels[best] << " (p=" << probs[b][best].item<double>() << ")";
    for (size_t l = 0; l < labels.size(); ++l) std::cout << (l ? ", " : "  [") << labels[l] << " " << probs[b][l].item<double>();
    std::cout << "]\n";
  }
}

// Path-1 / Path-3: generation from the backbone, with projected encoder tokens
// in front for Path-1.
void run_generate(const Firmware& fw, int path, const std::string& encoder, const fs::path& input,
                  const std::string& prompt, int64_t max_new, uint64_t seed) {
  at::Tensor prefix;
  EncoderRun run;
  if (path == 1) run = run_encoder(fw, encoder, module_inputs_of(input));
  auto backbone = fw.load_backbone({});
  if (path == 1) {
    // The projector belongs to the adapter; without one, a seeded random
    // projector shows the wiring (its output is meaningless until trained).
    ProjectorOptions po;
    po.in_features = run.out.last_hidden_state.size(-1);
    po.out_features = backbone->config().hidden_size;
    po.seed = seed;
    Projector proj(po);
    spdlog::warn("path 1: projector {} -> {} is randomly initialised (seed {}): train an adapter for real output",
                 po.in_features, po.out_features, seed);
    prefix = proj->forward(run.out.last_hidden_state);  // (B, N, hidden)
  }
  Tokenizer tok = fw.tokenizer();
  std::vector<int64_t> ids;
  if (tok.bos_id() >= 0) ids.push_back(tok.bos_id());
  for (auto id : tok.encode(prompt)) ids.push_back(id);
  const int64_t B = prefix.defined() ? prefix.size(0) : 1;
  at::Tensor input_ids = at::tensor(ids, at::kLong).unsqueeze(0).expand({B, static_cast<int64_t>(ids.size())}).contiguous();
  GenerateOptions g;
  g.max_new_tokens = max_new;
  g.stop_ids = backbone->config().eos_token_ids;
  g.pad_id = std::max<int64_t>(tok.pad_id(), 0);
  at::Tensor out = generate(*backbone, input_ids, {}, g, prefix);
  log_memory(fw, path_modules(path, encoder));
  for (int64_t b = 0; b < out.size(0); ++b) {
    std::vector<int64_t> row;
    for (int64_t i = 0; i < out.size(1); ++i) {
      const int64_t id = out[b][i].item<int64_t>();
      if (std::find(g.stop_ids.begin(), g.stop_ids.end(), id) != g.stop_ids.end()) break;
      row.push_back(id);
    }
    std::cout << "input " << b << ": " << tok.decode(row) << "\n";
  }
}

}  // namespace

int run_path(int argc, char** argv) {
  cxxopts::Options o("m4forge path",
                     "Run an execution path of M4 (paper §3.3), loading only its modules:\n"
                     "  --path 1  encoder -> projector -> backbone: generate from --input and --prompt\n"
                     "  --path 2  encoder vs txt_enc: classify --input among --labels via --template\n"
                     "  --path 3  backbone on text: generate from --prompt\n"
                     "--input is a file as `firmware forward --module ENCODER` takes (safetensors, or .png/.wav/.csv).");
  o.add_options()("firmware", "firmware directory", cxxopts::value<std::string>())(
      "path", "1, 2 or 3", cxxopts::value<int>())(
      "module", "input encoder for paths 1 and 2 (img_enc, aud_i_enc, aud_b_enc, imu_enc)",
      cxxopts::value<std::string>()->default_value("img_enc"))(
      "input", "encoder input safetensors (paths 1, 2)", cxxopts::value<std::string>())(
      "labels", "comma-separated labels (path 2)", cxxopts::value<std::string>())(
      "template", "label text template (path 2)",
      cxxopts::value<std::string>()->default_value("There is a photo of a {label}."))(
      "prompt", "text prompt (paths 1, 3)", cxxopts::value<std::string>()->default_value(""))(
      "max-new-tokens", "tokens to generate (paths 1, 3)", cxxopts::value<int64_t>()->default_value("8"))(
      "seed", "seed of the untrained projector (path 1)", cxxopts::value<uint64_t>()->default_value("0"));
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  M4_CHECK(r.count("path"), ErrorCode::kInvalidArgument, "missing required option --path (see --help)");
  const int path = r["path"].as<int>();
  const std::string encoder = r["module"].as<std::string>();
  const auto modules = path_modules(path, encoder);
  Firmware fw = Firmware::open(required(r, "firmware"));
  for (const auto& m : modules) fw.module(m);  // every module the path needs exists
  at::NoGradGuard no_grad;
  if (path == 2) {
    run_path2(fw, encoder, required(r, "input"), required(r, "labels"), r["template"].as<std::string>());
  } else {
    run_generate(fw, path, encoder, path == 1 ? fs::path(required(r, "input")) : fs::path(),
                 r["prompt"].as<std::string>(), r["max-new-tokens"].as<int64_t>(), r["seed"].as<uint64_t>());
  }
  return 0;
}

}  // namespace m4::cli
