// One firmware module run on the named tensors of an input safetensors file
// (see module_forward.h).
#include "firmware/module_forward.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <set>

#include "core/error.h"
#include "firmware/clip.h"
#include "firmware/encoder_input.h"
#include "firmware/llama.h"
#include "firmware/module_loader.h"

namespace m4 {
namespace fs = std::filesystem;
namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The named inputs of one module run, checked against what the module accepts.
class ForwardInputs {
 public:
  ForwardInputs(const ModuleInputs& inputs, const std::string& module, std::set<std::string> accepted) : in_(inputs) {
    std::string list;
    for (const auto& a : accepted) list += (list.empty() ? "" : ", ") + a;
    for (const auto& [name, t] : in_.tensors) {
      M4_CHECK(accepted.count(name), ErrorCode::kInvalidArgument, in_.where, ": unexpected input '", name, "' for module ",
               module, " (accepted: ", list, ")");
    }
  }
  at::Tensor get(const std::string& n) const {
    const auto it = in_.tensors.find(n);
    return it == in_.tensors.end() ? at::Tensor() : it->second;
  }
  bool has(const std::string& n) const { return in_.tensors.count(n) != 0; }

 private:
  const ModuleInputs& in_;
};

void add_encoder_outputs(const EncoderOutput& out, const std::string& embeds_name, NamedTensors* outs) {
  auto f32 = [](const at::Tensor& t) { return t.to(at::kFloat).contiguous(); };
  outs->emplace_back("last_hidden_state", f32(out.last_hidden_state));
  if (out.pooler_output.defined()) outs->emplace_back("pooler_output", f32(out.pooler_output));
  if (out.embeds.defined()) outs->emplace_back(embeds_name, f32(out.embeds));
  for (size_t k = 0; k < out.hidden_states.size(); ++k)
    outs->emplace_back("hidden_states." + std::to_string(k), f32(out.hidden_states[k]));
}

}  // namespace

ModuleInputs read_module_inputs(const fs::path& file) {
  const SafetensorsFile f = SafetensorsFile::open(file);  // the tensors keep the mapping alive
  ModuleInputs in;
  in.where = file.string();
  for (const auto& t : f.tensors()) in.tensors[t.name] = f.tensor(t);
  return in;
}

EncoderRun run_encoder(const Firmware& fw, const std::string& module, const ModuleInputs& inputs,
                       const ModuleHook& on_load) {
  const std::string& where = inputs.where;
  EncoderRun run;
  auto t0 = Clock::now();
  auto loaded = [&](std::shared_ptr<torch::nn::Module> m) {
    spdlog::info("loaded {} of {}@{} in {:.3f} s", module, fw.manifest().name, fw.manifest().version, seconds_since(t0));
    if (on_load) on_load(module, std::move(m));
  };
  M4_CHECK(fw.has(module), ErrorCode::kInvalidArgument, fw.dir().string(), ": no module '", module, "' in ", fw.label());
  auto model = load_firmware_module(fw, module);
  loaded(model);
  if (auto* txt = dynamic_cast<ClipTextImpl*>(model.get())) {
    ForwardInputs in(inputs, module, {"input_ids", "attention_mask"});
    M4_CHECK(in.has("input_ids"), ErrorCode::kInvalidArgument, where, ": missing input 'input_ids'");
    run.out = txt->forward(in.get("input_ids"), in.get("attention_mask"), true);
    run.embeds_name = "text_embeds";
    return run;
  }
  // Every input encoder: its own features, or (where it has a front-end here) the raw input.
  const EncoderInputSpec spec = encoder_input_spec(*model, module);
  std::set<std::string> accepted = {spec.features};
  if (!spec.raw.empty()) accepted.insert(spec.raw);
  if (spec.raw == "audio") accepted.insert("sample_rate");
  ForwardInputs in(inputs, module, accepted);
  const bool raw = !spec.raw.empty() && in.has(spec.raw);
  M4_CHECK(raw != in.has(spec.features), ErrorCode::kInvalidArgument, where, ": give exactly one of '",
           spec.features, "'", spec.raw.empty() ? "" : " or '" + spec.raw + "'", " (see --help)");
  if (in.has("sample_rate")) {
    const at::Tensor sr = in.get("sample_rate");
    M4_CHECK(sr.numel() == 1 && !at::isFloatingType(sr.scalar_type()), ErrorCode::kInvalidArgument, where,
             ": 'sample_rate' must be one integer (Hz)");
    const int64_t rate = sr.item<int64_t>();
    M4_CHECK(rate == 16000, ErrorCode::kInvalidArgument, where, ": audio is at ", rate, " Hz but ", module,
             "'s front-end takes 16000 Hz (hint: resample the audio first)");
  }
  at::Tensor features = raw ? encoder_features(*model, in.get(spec.raw)) : in.get(spec.features);
  if (raw) run.derived.emplace_back(spec.features, features);
  run.out = encode_features(*model, features, true);
  run.embeds_name = spec.embeds_name;
  return run;
}

NamedTensors forward_module(const Firmware& fw, const std::string& module, const ModuleInputs& inputs,
                            const ModuleHook& on_load) {
  const std::string& where = inputs.where;
  NamedTensors outs;
  if (fw.module(module).arch == "llama") {
    ForwardInputs in(inputs, module, {"input_ids", "attention_mask", "position_ids"});
    M4_CHECK(in.has("input_ids"), ErrorCode::kInvalidArgument, where, ": missing input 'input_ids'");
    auto model = fw.load_backbone({});
    if (on_load) on_load(module, model);
    LlamaForwardOptions fo;
    fo.hidden_states = true;
    LlamaOutput out = model->forward(in.get("input_ids"), in.get("attention_mask"), in.get("position_ids"), nullptr, fo);
    outs.emplace_back("logits", out.logits);
    for (size_t k = 0; k < out.hidden_states.size(); ++k)
      outs.emplace_back("hidden_states." + std::to_string(k), out.hidden_states[k].to(at::kFloat));
    return outs;
  }
  EncoderRun run = run_encoder(fw, module, inputs, on_load);
  outs = run.derived;
  add_encoder_outputs(run.out, run.embeds_name, &outs);
  return outs;
}

}  // namespace m4
