// Attaching a task's PEFT methods, and the adapter file's fail-closed binding.
#include "peft/adapter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "core/json_file.h"
#include "core/safetensors.h"
#include "firmware/linear.h"
#include "firmware/llama.h"
#include "firmware/transformer_encoder.h"
#include "peft/pattern.h"

namespace m4 {
namespace {

const PeftMethod& method_named(const std::string& name) {
  for (const auto& m : peft_methods()) {
    if (name == m.name) return m;
  }
  M4_FAIL(ErrorCode::kInternal, "PEFT method '", name, "' is not registered");
}

std::string shape_of(const at::Tensor& t) { return shape_str(t.sizes()); }

// The first submodule of `module` that still carries a PEFT hook (another
// adapter is attached, e.g. a task that shares resident modules), or "".
std::string hooked_submodule(const std::string& component, torch::nn::Module& module) {
  for (const auto& item : module.named_modules(component, true)) {
    torch::nn::Module* m = item.value().get();
    if (auto* l = dynamic_cast<LinearImpl*>(m); l && (l->adapter || l->merged_weight.defined())) return item.key();
    if (auto* a = dynamic_cast<LlamaAttentionImpl*>(m); a && a->prefix) return item.key();
    if (auto* a = dynamic_cast<EncoderAttentionImpl*>(m); a && a->prefix) return item.key();
    if (auto* l = dynamic_cast<LlamaImpl*>(m); l && (l->input_prompt || l->prefix_tokens != 0)) return item.key();
  }
  return "";
}

}  // namespace

Adapter::Adapter(Modules modules, const PeftConfig& config, std::string target, std::vector<int64_t> prompt_init_ids)
    : modules_(std::move(modules)), config_(config), target_(std::move(target)) {
  std::vector<std::string> problems;
  for (const auto& [comp, method] : config_.trainable) {
    if (method == "frozen") continue;
    if (!is_adapter_component(comp) && !modules_.count(comp)) {
      std::string loaded;
      for (const auto& [n, m] : modules_) loaded += (loaded.empty() ? "" : ", ") + n;
      problems.push_back("trainable." + comp + " is " + method + ", but " + comp + " is not loaded (loaded: " + loaded + ")");
    }
  }
  for (const auto& [comp, module] : modules_) {
    const std::string hooked = module ? hooked_submodule(comp, *module) : "";
    if (!hooked.empty()) problems.push_back(hooked + " already carries another adapter (one adapter per loaded module at a time)");
  }
  check_problems(problems, target_, ErrorCode::kMismatch);
  M4_CHECK(config_.prompt.init_text.empty() || !prompt_init_ids.empty() || !config_.trainable.count("backbone") ||
               config_.trainable.at("backbone") != "prompt",
           ErrorCode::kInvalidArgument, "peft.prompt.init_text needs the backbone's tokenizer to initialise from");
  try {
    for (const auto& [comp, method] : config_.trainable) {
      if (method == "frozen") continue;
      AttachContext ctx;
      ctx.component = comp;
      ctx.module = is_adapter_component(comp) ? nullptr : modules_.at(comp);
      ctx.modules = &modules_;
      ctx.config = &config_;
      ctx.prompt_init_ids = prompt_init_ids;
      parts_.emplace_back(comp, method_named(method).attach(ctx));
    }
  } catch (...) {
    detach();
    throw;
  }
}

Adapter::~Adapter() { detach(); }

std::vector<NamedParameter> Adapter::parameters() const {
  std::vector<NamedParameter> out;
  for (const auto& [c, a] : parts_) {
    for (auto& p : a->parameters()) out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::vector<at::Tensor> Adapter::trainable_tensors() const {
  std::vector<at::Tensor> out;
  for (auto& p : parameters()) out.push_back(p.tensor);
  return out;
}

std::vector<NamedParameter> Adapter::export_tensors() const {
  std::vector<NamedParameter> out;
  for (const auto& [c, a] : parts_) {
    for (auto& p : a->export_tensors()) out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::vector<PlanRow> Adapter::plan() const {
  std::vector<PlanRow> rows;
  for (const auto& [c, a] : parts_) {
    for (auto& r : a->plan()) rows.push_back(std::move(r));
  }
  return rows;
}

std::vector<TouchedTensor> Adapter::touched() const {
  std::map<std::string, std::vector<int64_t>> by_name;
  for (const auto& [c, a] : parts_) {
    for (auto& t : a->touched()) by_name[t.name] = t.shape;
  }
  std::vector<TouchedTensor> out;
  for (auto& [n, s] : by_name) out.push_back({n, s});
  return out;
}

int64_t Adapter::trainable_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.tensor.numel();
  return n;
}

int64_t Adapter::total_count() const {
  int64_t n = trainable_count();
  for (const auto& [name, m] : modules_) {
    for (const auto& p : m->parameters()) n += p.numel();
    // A quantized weight is a buffer, not a parameter; it counts at the shape it dequantizes to.
    for (const auto& sub : m->modules(/*include_self=*/false)) {
      if (const auto* lin = dynamic_cast<const LinearImpl*>(sub.get()); lin && lin->quantized)
        n += lin->out_features() * lin->in_features();
    }
  }
  return n;
}

void Adapter::train(bool on) {
  for (auto& [c, a] : parts_) a->train(on);
}
void Adapter::to(c10::Device device) {
  at::NoGradGuard ng;
  for (auto& [c, a] : parts_) {
    if (auto* m = a->module()) m->to(device);
    // In place (set_data): the attachment's own handles, and the hooks that
    // read them, see the moved tensors.
    for (auto& p : a->parameters()) {
      if (p.tensor.device() != device) p.tensor.set_data(p.tensor.to(device));
    }
  }
}
void Adapter::merge() {
  for (auto& [c, a] : parts_) a->merge();
}
void Adapter::unmerge() {
  for (auto& [c, a] : parts_) a->unmerge();
}
void Adapter::attach() {
  if (!detached_) return;
  std::vector<std::string> problems;
  for (const auto& [comp, module] : modules_) {
    const std::string hooked = module ? hooked_submodule(comp, *module) : "";
    if (!hooked.empty()) problems.push_back(hooked + " already carries another adapter (one adapter per loaded module at a time)");
  }
  check_problems(problems, target_, ErrorCode::kMismatch);
  for (auto& [c, a] : parts_) a->attach();
  detached_ = false;
}

void Adapter::detach() {
  if (detached_) return;
  for (auto& [c, a] : parts_) a->detach();
  detached_ = true;
}

torch::nn::Module* Adapter::part(const std::string& component) const {
  for (const auto& [c, a] : parts_) {
    if (c == component) return a->module();
  }
  return nullptr;
}

void Adapter::save(const std::filesystem::path& path, bool exported) const {
  NamedTensors tensors;
  for (auto& p : exported ? export_tensors() : parameters()) tensors.emplace_back(p.name, p.tensor.detach().cpu());
  write_safetensors(path, tensors,
                    {{"format", kAdapterFormat}, {"peft_config", config_.to_json().dump()}, {"firmware", target_}});
}

void Adapter::load(const std::filesystem::path& path) {
  SafetensorsFile f = SafetensorsFile::open(path);
  std::map<std::string, at::Tensor> tensors;
  for (const auto& info : f.tensors()) tensors[info.name] = f.tensor(info);
  load_tensors(tensors, path.string());
}

void Adapter::load_tensors(const std::map<std::string, at::Tensor>& tensors, const std::string& where) {
  // A NaN or infinity loads fine and turns every output into NaN: refuse it here.
  for (const auto& [name, t] : tensors) {
    if (!at::isFloatingType(t.scalar_type()) || t.numel() == 0 || at::isfinite(t).all().item<bool>()) continue;
    M4_FAIL(ErrorCode::kBadInput, where, ": adapter tensor '", name, "' holds NaN or infinite values (",
            at::isnan(t).sum().item<int64_t>(), " NaN, ", at::isinf(t).sum().item<int64_t>(), " infinite of ", t.numel(), ")");
  }
  std::vector<std::string> problems;
  std::set<std::string> bound;
  std::vector<std::string> expected_names;
  std::vector<std::pair<Attachment*, std::map<std::string, at::Tensor>>> plan;
  for (auto& [comp, a] : parts_) {
    auto layouts = a->accepted_layouts();
    // The first layout whose every name is in the file; else the first, to report what is missing.
    size_t pick = 0;
    for (size_t i = 0; i < layouts.size(); ++i) {
      bool all = true;
      for (const auto& p : layouts[i]) all = all && tensors.count(p.name);
      if (all) {
        pick = i;
        break;
      }
    }
    std::map<std::string, at::Tensor> mine;
    for (const auto& p : layouts[pick]) {
      expected_names.push_back(p.name);
      const auto it = tensors.find(p.name);
      if (it == tensors.end()) {
        problems.push_back("tensor '" + p.name + "' " + shape_of(p.tensor) + " is missing");
        continue;
      }
      bound.insert(p.name);
      if (!it->second.sizes().equals(p.tensor.sizes())) {
        problems.push_back("adapter tensor '" + p.name + "' has shape " + shape_of(it->second) + " but " + target_ +
                           " expects " + shape_of(p.tensor) + " (hint: the adapter was built for another firmware or config)");
        continue;
      }
      if (!at::isFloatingType(it->second.scalar_type())) {
        problems.push_back("adapter tensor '" + p.name + "' has dtype " + std::string(c10::toString(it->second.scalar_type())) +
                           ", expected a float type");
        continue;
      }
      mine[p.name] = it->second;
    }
    plan.emplace_back(a.get(), std::move(mine));
  }
  for (const auto& [name, t] : tensors) {
    if (bound.count(name)) continue;
    std::string near;
    for (const auto& n : nearest_names(name, expected_names, 3)) near += (near.empty() ? "" : ", ") + n;
    problems.push_back("tensor '" + name + "' " + shape_of(t) + " binds to no module of this adapter" +
                       (near.empty() ? "" : " (nearest: " + near + ")"));
  }
  check_problems(problems, where, ErrorCode::kMismatch);
  for (auto& [a, mine] : plan) a->load(mine);
}

std::unique_ptr<Adapter> Adapter::open_file(const std::filesystem::path& path, Modules modules, const std::string& target,
                                            bool loaded_only) {
  SafetensorsFile f = SafetensorsFile::open(path);
  const auto& meta = f.metadata();
  M4_CHECK(meta.count("format") && meta.at("format") == kAdapterFormat && meta.count("peft_config"), ErrorCode::kBadInput,
           path.string(), ": not an m4forge adapter (no '", kAdapterFormat, "' metadata; HF PEFT directories go through `m4forge peft import-hf`)");
  nlohmann::json cfg_json;
  try {
    cfg_json = nlohmann::json::parse(meta.at("peft_config"));
  } catch (const nlohmann::json::exception& e) {
    M4_FAIL(ErrorCode::kBadInput, path.string(), ": metadata peft_config is not JSON (", e.what(), ")");
  }
  PeftConfig config = PeftConfig::from_json(cfg_json, path.string() + " (peft_config)");
  config.prompt.init_text.clear();  // the soft prompt comes from the file
  std::map<std::string, at::Tensor> tensors;
  for (const auto& info : f.tensors()) tensors[info.name] = f.tensor(info);
  if (loaded_only) {
    std::map<std::string, std::string> kept;
    std::string trained;
    for (const auto& [comp, m] : config.trainable) {
      if (m == "frozen") continue;
      trained += (trained.empty() ? "" : ", ") + comp + ": " + m;
      if (modules.count(comp)) kept[comp] = m;
    }
    std::string loaded;
    for (const auto& [n, m] : modules) loaded += (loaded.empty() ? "" : ", ") + n;
    M4_CHECK(!kept.empty(), ErrorCode::kMismatch, path.string(), ": the adapter trains nothing on ", loaded,
             " (it trains ", trained, ")");
    config.trainable = kept;
    std::vector<LoraRule> rules;
    for (const auto& r : config.lora.targets) {
      if (kept.count(r.pattern.substr(0, r.pattern.find('.')))) rules.push_back(r);
    }
    config.lora.targets = rules;
    for (auto it = tensors.begin(); it != tensors.end();) {
      it = kept.count(it->first.substr(0, it->first.find('.'))) ? std::next(it) : tensors.erase(it);
    }
  }
  auto adapter = std::make_unique<Adapter>(std::move(modules), config, target);
  adapter->load_tensors(tensors, path.string());
  return adapter;
}

void Adapter::check_frozen() const {
  for (const auto& [name, m] : modules_) {
    for (const auto& p : m->named_parameters()) {
      M4_CHECK(!p.value().requires_grad() && !p.value().grad().defined(), ErrorCode::kInternal, "firmware parameter ",
               name, ".", p.key(), " requires grad or holds a gradient: the firmware must stay frozen");
    }
  }
}

}  // namespace m4
