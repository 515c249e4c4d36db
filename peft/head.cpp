// Classifier and LM heads.
#include "peft/head.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "core/error.h"
#include "firmware/clip.h"
#include "firmware/llama.h"
#include "firmware/module_loader.h"
#include "firmware/projector.h"

namespace m4 {
ClassifierHeadImpl::ClassifierHeadImpl(const ClassifierHeadOptions& o) : options(o) {
  M4_CHECK(o.in_features() > 0 && o.classes() >= 2, ErrorCode::kInvalidArgument,
           "a classifier head needs a positive width and >= 2 classes, found ", o.in_features(), " -> ", o.classes());
  reset();
}

void ClassifierHeadImpl::reset() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed());
  const int64_t h = options.hidden() > 0 ? options.hidden() : options.classes();
  fc1 = register_module("fc1", seeded_linear(options.in_features(), h, gen));
  if (options.hidden() > 0) fc2 = register_module("fc2", seeded_linear(h, options.classes(), gen));
}

at::Tensor ClassifierHeadImpl::forward(const at::Tensor& x) {
  M4_CHECK(x.size(-1) == options.in_features(), ErrorCode::kInvalidArgument, "classifier head takes width ",
           options.in_features(), ", found ", x.size(-1));
  at::Tensor h = fc1->forward(x.to(at::kFloat));
  return fc2 ? fc2->forward(at::gelu(h)) : h;
}

LmHeadImpl::LmHeadImpl(at::Tensor initial_weight) : initial(std::move(initial_weight)) { reset(); }

void LmHeadImpl::reset() { weight = register_parameter("weight", initial.to(at::kFloat).clone()); }

}  // namespace m4

namespace m4 {
namespace {

// The firmware modules that are encoders (everything but the backbone).
std::vector<std::string> encoders(const AttachContext& ctx) {
  std::vector<std::string> out;
  for (const auto& [name, m] : *ctx.modules) {
    if (name != "backbone") out.push_back(name);
  }
  return out;
}

// The last parameter whose first dimension is the module's width (its final
// norm): the tensor a projector or head binds its width to.
NamedParameter width_tensor(const std::string& component, torch::nn::Module& m) {
  const int64_t w = firmware_module_width(m);
  NamedParameter found{"", at::Tensor()};
  for (const auto& p : m.named_parameters()) {
    if (p.value().dim() == 1 && p.value().size(0) == w) found = {component + "." + p.key(), p.value()};
  }
  M4_CHECK(found.tensor.defined(), ErrorCode::kInternal, component, " has no parameter of its width ", w);
  return found;
}

class ModuleAttachment : public Attachment {
 public:
  std::string component, detail;
  std::shared_ptr<torch::nn::Module> owned;
  std::vector<NamedParameter> depends;  // the firmware tensors whose widths it maps

  std::vector<NamedParameter> parameters() override {
    std::vector<NamedParameter> out;
    for (const auto& p : owned->named_parameters()) out.push_back({component + "." + p.key(), p.value()});
    return out;
  }
  std::vector<PlanRow> plan() override {
    int64_t n = 0;
    for (const auto& p : owned->parameters()) n += p.numel();
    return {{component, component, "full", detail, n}};
  }
  std::vector<TouchedTensor> touched() override {
    std::vector<TouchedTensor> out;
    for (const auto& d : depends) out.push_back({d.name, d.tensor.sizes().vec()});
    return out;
  }
  void train(bool on) override { owned->train(on); }
  torch::nn::Module* module() override { return owned.get(); }
  void detach() override {}
  void attach() override {}
};

}  // namespace

std::unique_ptr<Attachment> attach_full(const AttachContext& ctx) {
  const PeftConfig& cfg = *ctx.config;
  auto a = std::make_unique<ModuleAttachment>();
  a->component = ctx.component;
  const auto backbone = ctx.modules->find("backbone");
  const auto enc = encoders(ctx);
  auto gen_seed = cfg.seed ^ (ctx.component == "projector" ? 0x70726f6aull : 0x68656164ull);
  if (ctx.component == "projector") {
    // Path-1: one encoder into the backbone. Path-2 (no backbone, txt_enc
    // loaded): the input encoder's pooled output into the text embedding space.
    const auto txt = ctx.modules->find("txt_enc");
    const bool path2 = backbone == ctx.modules->end() && txt != ctx.modules->end();
    std::vector<std::string> inputs;
    for (const auto& e : enc) {
      if (!path2 || e != "txt_enc") inputs.push_back(e);
    }
    M4_CHECK(inputs.size() == 1 && (path2 || backbone != ctx.modules->end()), ErrorCode::kMismatch,
             "a projector maps one encoder into the backbone (Path-1) or into txt_enc's embedding space (Path-2); "
             "this task loads ", ctx.modules->size(), " modules", backbone == ctx.modules->end() ? " and no backbone" : "",
             path2 ? "" : " and no txt_enc");
    ProjectorOptions o;
    o.in_features = firmware_module_width(*ctx.modules->at(inputs[0]));
    NamedParameter target{"", at::Tensor()};
    if (path2) {
      auto clip = std::dynamic_pointer_cast<ClipTextImpl>(txt->second);
      M4_CHECK(clip && clip->text_projection, ErrorCode::kMismatch,
               "a Path-2 projector maps into txt_enc's embedding space, but txt_enc has no text_projection");
      target = {"txt_enc.text_projection.weight", clip->text_projection->weight};
      o.out_features = target.tensor.size(0);
    } else {
      target = width_tensor("backbone", *backbone->second);
      o.out_features = firmware_module_width(*backbone->second);
    }
    o.kind = cfg.projector.kind;
    o.hidden = cfg.projector.hidden;
    o.seed = gen_seed;
    a->owned = Projector(o).ptr();
    a->depends = {width_tensor(inputs[0], *ctx.modules->at(inputs[0])), target};
    a->detail = cfg.projector.kind + " [" + inputs[0] + " " + std::to_string(o.in_features) + " -> " +
                (path2 ? "txt_enc embedding " : "backbone ") + std::to_string(o.out_features) + "]";
    return a;
  }
  M4_CHECK(ctx.component == "head", ErrorCode::kInternal, "'full' applies to projector/head, not ", ctx.component);
  if (cfg.head.kind == "lm") {
    auto llama = backbone == ctx.modules->end() ? nullptr : std::dynamic_pointer_cast<LlamaImpl>(backbone->second);
    M4_CHECK(llama != nullptr, ErrorCode::kMismatch, "an LM head needs the backbone on the task's path");
    at::Tensor w = llama->lm_head ? llama->lm_head->weight : llama->embed_tokens->weight;
    a->owned = LmHead(w).ptr();
    a->depends = {{llama->lm_head ? "backbone.lm_head.weight" : "backbone.embed_tokens.weight", w}};
    a->detail = "lm [" + std::to_string(w.size(1)) + " -> " + std::to_string(w.size(0)) + "], from the backbone's";
    return a;
  }
  int64_t in = 0;
  if (backbone != ctx.modules->end()) {
    in = firmware_module_width(*backbone->second);
    a->depends = {width_tensor("backbone", *backbone->second)};
  } else {
    M4_CHECK(enc.size() == 1, ErrorCode::kMismatch, "a classifier head without a backbone needs exactly one encoder");
    in = firmware_module_width(*ctx.modules->at(enc[0]));
    a->depends = {width_tensor(enc[0], *ctx.modules->at(enc[0]))};
  }
  ClassifierHeadOptions o(in, cfg.head.classes);
  a->owned = ClassifierHead(o.hidden(cfg.head.hidden).seed(gen_seed)).ptr();
  a->detail = "classifier [" + std::to_string(in) + (cfg.head.hidden > 0 ? " -> " + std::to_string(cfg.head.hidden) : "") +
              " -> " + std::to_string(cfg.head.classes) + "]";
  return a;
}

}  // namespace m4
