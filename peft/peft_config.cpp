// Parsing and validation of the trainable/peft sections.
#include "peft/peft_config.h"

#include <algorithm>

#include "core/json_file.h"
#include "firmware/module_arch.h"
#include "peft/pattern.h"

namespace m4 {
namespace {

using nlohmann::json;

// Reads object members with type checks, collecting problems; flags unknown keys.
class Fields {
 public:
  Fields(const json& j, std::string where, std::vector<std::string>& problems)
      : j_(j), where_(std::move(where)), problems_(problems) {
    if (!j_.is_object() && !j_.is_null()) problems_.push_back(where_ + " must be a mapping");
  }
  template <typename T>
  void get(const std::string& key, T& out) {
    seen_.push_back(key);
    if (!j_.is_object() || !j_.contains(key) || j_[key].is_null()) return;
    const json& v = j_[key];
    bool ok;
    if constexpr (std::is_same_v<T, bool>) ok = v.is_boolean();
    else if constexpr (std::is_integral_v<T>) ok = v.is_number_integer();
    else if constexpr (std::is_floating_point_v<T>) ok = v.is_number();
    else ok = v.is_string();
    if (!ok) {
      problems_.push_back(where_ + "." + key + " has the wrong type (" + v.dump() + ")");
      return;
    }
    out = v.get<T>();
  }
  // A nested mapping (marked as known); null when absent.
  const json& section(const std::string& key) {
    seen_.push_back(key);
    static const json null;
    return j_.is_object() && j_.contains(key) ? j_[key] : null;
  }
  void done() {
    if (!j_.is_object()) return;
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (std::find(seen_.begin(), seen_.end(), it.key()) == seen_.end()) {
        problems_.push_back(where_ + ": unknown key '" + it.key() + "'");
      }
    }
  }

 private:
  const json& j_;
  std::string where_;
  std::vector<std::string>& problems_;
  std::vector<std::string> seen_;
};

bool is_slot(const std::string& c) {
  for (const auto& a : module_archs()) {
    if (a.slot == c) return true;
  }
  return false;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

const std::vector<std::string>& peft_method_names() {
  static const std::vector<std::string> k = {"frozen", "full", "lora", "prefix", "prompt"};
  return k;
}

bool is_adapter_component(const std::string& c) { return c == "projector" || c == "head"; }

PeftConfig PeftConfig::from_json(const json& config, const std::string& where) {
  PeftConfig c;
  std::vector<std::string> problems;
  const json empty = json::object();
  const json& tr = config.contains("trainable") ? config["trainable"] : empty;
  if (!tr.is_object()) {
    problems.push_back("trainable must be a mapping of component -> method");
  } else {
    for (auto it = tr.begin(); it != tr.end(); ++it) {
      const std::string comp = it.key();
      if (!is_slot(comp) && !is_adapter_component(comp)) {
        std::vector<std::string> known;
        for (const auto& a : module_archs()) known.push_back(a.slot);
        known.push_back("projector");
        known.push_back("head");
        problems.push_back("trainable." + comp + ": unknown component (known: " + join(known) + ")");
        continue;
      }
      if (!it.value().is_string()) {
        problems.push_back("trainable." + comp + " must be a method name");
        continue;
      }
      const std::string m = it.value().get<std::string>();
      const auto& names = peft_method_names();
      if (std::find(names.begin(), names.end(), m) == names.end()) {
        problems.push_back("trainable." + comp + ": unknown method '" + m + "' (known: " + join(names) + ")");
        continue;
      }
      if (is_adapter_component(comp) && m != "full" && m != "frozen") {
        problems.push_back("trainable." + comp + ": " + comp + " is an adapter part, trained 'full' (or 'frozen'), not '" + m + "'");
      }
      if (!is_adapter_component(comp) && m == "full") {
        problems.push_back("trainable." + comp + ": 'full' would copy a firmware module into the adapter; use lora, prefix or prompt");
      }
      if (m == "prompt" && comp != "backbone") {
        problems.push_back("trainable." + comp + ": prompt tuning prepends soft tokens to the backbone's input; use lora or prefix for " + comp);
      }
      c.trainable[comp] = m;
    }
  }

  const json& p = config.contains("peft") && !config["peft"].is_null() ? config["peft"] : empty;
  Fields top(p, "peft", problems);
  top.get("init_from", c.init_from);
  top.get("seed", c.seed);

  Fields lora(top.section("lora"), "peft.lora", problems);
  lora.get("r", c.lora.r);
  lora.get("alpha", c.lora.alpha);
  lora.get("dropout", c.lora.dropout);
  lora.get("rslora", c.lora.rslora);
  const json& targets = lora.section("targets");
  if (!targets.is_null() && !(targets.is_array() || targets.is_object())) {
    problems.push_back("peft.lora.targets must be a list of patterns");
  }
  if (targets.is_array()) {
    for (size_t i = 0; i < targets.size(); ++i) {
      const std::string w = "peft.lora.targets[" + std::to_string(i) + "]";
      LoraRule rule;
      if (targets[i].is_string()) {
        rule.pattern = targets[i].get<std::string>();
      } else {
        Fields f(targets[i], w, problems);
        f.get("pattern", rule.pattern);
        int64_t r = 0;
        double alpha = 0;
        f.get("r", r);
        f.get("alpha", alpha);
        if (r != 0) rule.r = r;
        if (alpha != 0) rule.alpha = alpha;
        if (rule.r && *rule.r < 1) problems.push_back(w + ".r must be >= 1");
        f.done();
      }
      try {
        check_pattern(rule.pattern);
      } catch (const Error& e) {
        problems.push_back(w + ": " + e.what());
        continue;
      }
      const std::string comp = rule.pattern.substr(0, rule.pattern.find('.'));
      const auto t = c.trainable.find(comp);
      if (t == c.trainable.end() || t->second != "lora") {
        problems.push_back(w + " '" + rule.pattern + "' targets " + comp + ", which trainable does not set to lora");
      }
      c.lora.targets.push_back(rule);
    }
  }
  lora.done();
  if (c.lora.r < 1) problems.push_back("peft.lora.r must be >= 1 (got " + std::to_string(c.lora.r) + ")");
  if (!(c.lora.alpha > 0)) problems.push_back("peft.lora.alpha must be > 0");
  if (!(c.lora.dropout >= 0 && c.lora.dropout < 1)) problems.push_back("peft.lora.dropout must be in [0, 1)");

  Fields prefix(top.section("prefix"), "peft.prefix", problems);
  prefix.get("num_virtual_tokens", c.prefix.num_virtual_tokens);
  prefix.get("projection_hidden", c.prefix.projection_hidden);
  prefix.done();
  if (c.prefix.num_virtual_tokens < 1) problems.push_back("peft.prefix.num_virtual_tokens must be >= 1");
  if (c.prefix.projection_hidden < 0) problems.push_back("peft.prefix.projection_hidden must be >= 0");

  Fields prompt(top.section("prompt"), "peft.prompt", problems);
  prompt.get("num_virtual_tokens", c.prompt.num_virtual_tokens);
  prompt.get("init_text", c.prompt.init_text);
  prompt.done();
  if (c.prompt.num_virtual_tokens < 1) problems.push_back("peft.prompt.num_virtual_tokens must be >= 1");

  Fields proj(top.section("projector"), "peft.projector", problems);
  proj.get("kind", c.projector.kind);
  proj.get("hidden", c.projector.hidden);
  proj.done();
  if (c.projector.kind != "linear" && c.projector.kind != "mlp") {
    problems.push_back("peft.projector.kind must be linear or mlp (got '" + c.projector.kind + "')");
  }

  Fields head(top.section("head"), "peft.head", problems);
  head.get("kind", c.head.kind);
  head.get("classes", c.head.classes);
  head.get("hidden", c.head.hidden);
  head.done();
  if (c.head.kind != "classifier" && c.head.kind != "lm") {
    problems.push_back("peft.head.kind must be classifier or lm (got '" + c.head.kind + "')");
  }
  const auto h = c.trainable.find("head");
  if (h != c.trainable.end() && h->second == "full" && c.head.kind == "classifier" && c.head.classes < 2) {
    problems.push_back("peft.head.classes must be >= 2 for a classifier head");
  }
  top.done();
  check_problems(problems, where);
  return c;
}

nlohmann::json PeftConfig::to_json() const {
  json rules = json::array();
  for (const auto& r : lora.targets) {
    if (!r.r && !r.alpha) {
      rules.push_back(r.pattern);
    } else {
      json o = {{"pattern", r.pattern}};
      if (r.r) o["r"] = *r.r;
      if (r.alpha) o["alpha"] = *r.alpha;
      rules.push_back(o);
    }
  }
  return {{"trainable", trainable},
          {"peft",
           {{"lora", {{"r", lora.r}, {"alpha", lora.alpha}, {"dropout", lora.dropout}, {"rslora", lora.rslora}, {"targets", rules}}},
            {"prefix", {{"num_virtual_tokens", prefix.num_virtual_tokens}, {"projection_hidden", prefix.projection_hidden}}},
            {"prompt", {{"num_virtual_tokens", prompt.num_virtual_tokens}, {"init_text", prompt.init_text}}},
            {"projector", {{"kind", projector.kind}, {"hidden", projector.hidden}}},
            {"head", {{"kind", head.kind}, {"classes", head.classes}, {"hidden", head.hidden}}},
            {"init_from", init_from},
            {"seed", seed}}}};
}

std::vector<std::string> PeftConfig::components_with(const std::string& method) const {
  std::vector<std::string> out;
  for (const auto& [comp, m] : trainable) {
    if (m == method) out.push_back(comp);
  }
  return out;
}

}  // namespace m4
