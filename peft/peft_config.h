// The PEFT part of a task config: which component is trained how
// (`trainable: {backbone: lora, img_enc: frozen, projector: full}`) and each
// method's settings (`peft: {lora: {...}, prefix: {...}, prompt: {...}, ...}`).
// Parsed from JSON (the task registry turns YAML into JSON); every problem is
// reported at once.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace m4 {

// One LoRA rule: a target pattern with optional per-rule rank/alpha. The first
// rule that matches a Linear's full name decides its settings.
struct LoraRule {
  std::string pattern;
  std::optional<int64_t> r;
  std::optional<double> alpha;
};

struct LoraConfig {
  int64_t r = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  bool rslora = false;
  std::vector<LoraRule> targets;  // empty: each lora component's default targets
};

struct PrefixConfig {
  int64_t num_virtual_tokens = 8;
  int64_t projection_hidden = 0;  // > 0: reparameterisation MLP (folded at export)
};

struct PromptConfig {
  int64_t num_virtual_tokens = 8;
  std::string init_text;  // empty: random N(0, 1)
};

struct ProjectorConfig {
  std::string kind = "linear";  // linear | mlp
  int64_t hidden = 0;            // mlp width; 0: the output width
};

struct HeadConfig {
  std::string kind = "classifier";  // classifier | lm
  int64_t classes = 0;
  int64_t hidden = 0;
};

struct PeftConfig {
  // component -> method: frozen | full | lora | prefix | prompt. Components are
  // firmware module slots plus "projector" and "head".
  std::map<std::string, std::string> trainable;
  LoraConfig lora;
  PrefixConfig prefix;
  PromptConfig prompt;
  ProjectorConfig projector;
  HeadConfig head;
  std::string init_from;  // adapter safetensors to start from (optional)
  uint64_t seed = 0;

  // `config` holds `trainable` and optionally `peft`; `where` names the file.
  static PeftConfig from_json(const nlohmann::json& config, const std::string& where);
  nlohmann::json to_json() const;
  // Components trained with `method`, in name order.
  std::vector<std::string> components_with(const std::string& method) const;
};

// The method names a component may be given, and the components that are not
// firmware modules.
const std::vector<std::string>& peft_method_names();
bool is_adapter_component(const std::string& component);  // projector, head

}  // namespace m4
