// LoRA branch: initialisation, forward delta, merge.
#include "peft/lora.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "core/error.h"
#include "peft/pattern.h"

namespace m4 {

double LoraLinearOptions::scaling() const {
  return rslora_ ? alpha_ / std::sqrt(static_cast<double>(r_)) : alpha_ / static_cast<double>(r_);
}

LoraLinearImpl::LoraLinearImpl(const LoraLinearOptions& o) : options(o) {
  M4_CHECK(o.r() >= 1, ErrorCode::kInvalidArgument, "LoRA rank r must be >= 1, found ", o.r());
  M4_CHECK(o.dropout() >= 0 && o.dropout() < 1, ErrorCode::kInvalidArgument, "LoRA dropout must be in [0, 1), found ",
           o.dropout());
  reset();
}

void LoraLinearImpl::reset() {
  // kaiming_uniform_(a=sqrt(5)) on (r, in): bound = sqrt(6 / ((1 + a^2) fan_in)) = 1/sqrt(in).
  auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed());
  const double bound = 1.0 / std::sqrt(static_cast<double>(options.in_features()));
  at::Tensor a = at::empty({options.r(), options.in_features()}, at::kFloat);
  a.uniform_(-bound, bound, gen);
  lora_a = register_parameter("lora_a", a);
  lora_b = register_parameter("lora_b", at::zeros({options.out_features(), options.r()}, at::kFloat));
}

at::Tensor LoraLinearImpl::delta(const at::Tensor& x) {
  at::Tensor h = options.dropout() > 0 ? at::dropout(x, options.dropout(), is_training()) : x;
  h = at::linear(h.to(lora_a.scalar_type()), lora_a);  // (..., r)
  return (at::linear(h, lora_b) * options.scaling()).to(x.scalar_type());
}

at::Tensor LoraLinearImpl::merged(const LinearImpl& base) const {
  at::NoGradGuard ng;
  M4_CHECK(base.out_features() == lora_b.size(0) && base.in_features() == lora_a.size(1), ErrorCode::kMismatch, "LoRA (",
           lora_b.size(0), "x", lora_a.size(1), ") does not fit a Linear of weight [", base.out_features(), ", ",
           base.in_features(), "]");
  // Over a quantized weight the merged weight is f32: its dequantized W plus B A.
  const at::ScalarType dtype = base.quantized ? at::kFloat : base.weight.scalar_type();
  return (base.dense_weight() + at::matmul(lora_b, lora_a) * options.scaling()).to(dtype);
}

}  // namespace m4

namespace m4 {
namespace {

// The Linear modules of a component, by full dotted name, in module order.
std::vector<std::pair<std::string, std::shared_ptr<LinearImpl>>> linears(const AttachContext& ctx) {
  std::vector<std::pair<std::string, std::shared_ptr<LinearImpl>>> out;
  for (const auto& item : ctx.module->named_modules("", /*include_self=*/false)) {
    if (auto l = std::dynamic_pointer_cast<LinearImpl>(item.value())) out.emplace_back(ctx.component + "." + item.key(), l);
  }
  return out;
}

class LoraAttachment : public Attachment {
 public:
  struct Site {
    std::string name;
    std::shared_ptr<LinearImpl> base;
    LoraLinear lora{nullptr};
  };
  std::vector<Site> sites;

  std::vector<NamedParameter> parameters() override {
    std::vector<NamedParameter> out;
    for (auto& s : sites) {
      out.push_back({s.name + ".lora_a", s.lora->lora_a});
      out.push_back({s.name + ".lora_b", s.lora->lora_b});
    }
    return out;
  }
  std::vector<PlanRow> plan() override {
    std::vector<PlanRow> rows;
    for (auto& s : sites) {
      const auto& o = s.lora->options;
      rows.push_back({s.name.substr(0, s.name.find('.')), s.name, "lora",
                      "r=" + std::to_string(o.r()) + " alpha=" + detail::concat(o.alpha()) + (o.rslora() ? " rslora" : "") +
                          " [" + std::to_string(o.in_features()) + " -> " + std::to_string(o.out_features()) + "]",
                      o.r() * (o.in_features() + o.out_features())});
    }
    return rows;
  }
  std::vector<TouchedTensor> touched() override {
    std::vector<TouchedTensor> out;
    for (auto& s : sites) out.push_back({s.name + ".weight", s.base->weight_shape()});
    return out;
  }
  void train(bool on) override {
    for (auto& s : sites) s.lora->train(on);
  }
  void merge() override {
    for (auto& s : sites) s.base->merged_weight = s.lora->merged(*s.base);
  }
  void unmerge() override {
    for (auto& s : sites) s.base->merged_weight = at::Tensor();
  }
  void detach() override {
    for (auto& s : sites) {
      s.base->adapter.reset();
      s.base->merged_weight = at::Tensor();
    }
  }
  void attach() override {
    for (auto& s : sites) s.base->adapter = s.lora.ptr();
  }
};

// FNV-1a: a per-site seed that does not depend on the standard library.
uint64_t name_seed(uint64_t seed, const std::string& name) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

std::unique_ptr<Attachment> attach_lora(const AttachContext& ctx) {
  const LoraConfig& cfg = ctx.config->lora;
  std::vector<LoraRule> rules;
  for (const auto& r : cfg.targets) {
    if (r.pattern.rfind(ctx.component + ".", 0) == 0) rules.push_back(r);
  }
  if (rules.empty()) rules.push_back({ctx.component + ".layers.*.self_attn.{q,v}_proj", {}, {}});

  auto all = linears(ctx);
  auto a = std::make_unique<LoraAttachment>();
  std::vector<bool> used(rules.size(), false);
  for (auto& [name, base] : all) {
    for (size_t i = 0; i < rules.size(); ++i) {
      if (!match_pattern(rules[i].pattern, name)) continue;
      used[i] = true;
      LoraLinearOptions o(base->in_features(), base->out_features());
      o.r(rules[i].r.value_or(cfg.r)).alpha(rules[i].alpha.value_or(cfg.alpha)).dropout(cfg.dropout).rslora(cfg.rslora);
      o.seed(name_seed(ctx.config->seed, name));
      a->sites.push_back({name, base, LoraLinear(o)});
      break;  // first matching rule wins
    }
  }
  for (size_t i = 0; i < rules.size(); ++i) {
    if (used[i]) continue;
    bool matched_later = false;  // matched, but an earlier rule took every match
    for (auto& [name, base] : all) matched_later = matched_later || match_pattern(rules[i].pattern, name);
    if (matched_later) continue;
    a->detach();
    std::vector<std::string> names;
    for (auto& [name, base] : all) names.push_back(name);
    std::string near;
    for (const auto& n : nearest_names(rules[i].pattern, names)) near += (near.empty() ? "" : ", ") + n;
    M4_FAIL(ErrorCode::kMismatch, "LoRA target '", rules[i].pattern, "' matches no Linear of ", ctx.component,
            " (nearest: ", near, ")");
  }
  a->attach();
  return a;
}

}  // namespace m4
