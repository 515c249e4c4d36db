// HF PEFT adapter import/export (peft's save_pretrained layout, CAUSAL_LM).
#include "peft/hf_peft.h"

#include <regex>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_file.h"
#include "core/safetensors.h"
#include "firmware/llama.h"
#include "firmware/transformer_encoder.h"
#include "peft/adapter.h"
#include "peft/pattern.h"

namespace m4 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kConfigFile = "adapter_config.json";
constexpr const char* kWeightsFile = "adapter_model.safetensors";
constexpr const char* kPeftPrefix = "base_model.model.";

// The backbone's Linear names (internal, without "backbone.").
std::vector<std::string> linear_names(LlamaImpl& backbone) {
  std::vector<std::string> out;
  for (const auto& item : backbone.named_modules("", false)) {
    if (std::dynamic_pointer_cast<LinearImpl>(item.value())) out.push_back(item.key());
  }
  return out;
}

// PEFT matches a target name against a module key by suffix: key == t or key ends with "." + t.
bool suffix_match(const std::string& key, const std::string& t) {
  return key == t || (key.size() > t.size() && key.compare(key.size() - t.size() - 1, std::string::npos, "." + t) == 0);
}

void check(bool ok, const fs::path& file, const std::string& what) {
  M4_CHECK(ok, ErrorCode::kBadInput, file.string(), ": ", what);
}

// (P, L*2*KV*D) -> per layer (KV, P, D) key and value.
void split_prefix(const at::Tensor& table, const fs::path& file, LlamaImpl& backbone, int64_t P, HfPeftAdapter& out) {
  const auto& c = backbone.config();
  const int64_t L = c.num_hidden_layers, KV = c.num_key_value_heads, D = c.head_dim;
  check(table.dim() == 2 && table.size(0) == P && table.size(1) == L * 2 * KV * D, file,
        "prompt_embeddings has shape " + shape_str(table.sizes()) + ", but prefixes for this backbone are [" +
            std::to_string(P) + ", " + std::to_string(L * 2 * KV * D) + "] (" + std::to_string(L) + " layers x 2 x " +
            std::to_string(KV) + " kv heads x " + std::to_string(D) + ")" +
            (KV != c.num_attention_heads ? " (hint: this backbone uses grouped-query attention; peft 0.5 sized prefixes for all heads)" : ""));
  at::Tensor v = table.to(at::kFloat).view({P, L * 2, KV, D}).permute({1, 2, 0, 3});  // (L*2, KV, P, D)
  for (int64_t i = 0; i < L; ++i) {
    const std::string n = "backbone.layers." + std::to_string(i) + ".self_attn.prefix_";
    out.tensors[n + "key"] = v[2 * i].contiguous();
    out.tensors[n + "value"] = v[2 * i + 1].contiguous();
  }
}

}  // namespace

std::string lora_name_from_hf(const std::string& hf_name) {
  if (hf_name.rfind(kPeftPrefix, 0) != 0) return "";
  std::string n = hf_name.substr(std::string(kPeftPrefix).size());
  for (const std::string ss : {".lora_A.weight", ".lora_B.weight", ".lora_A.default.weight", ".lora_B.default.weight"}) {
    if (n.size() > ss.size() && n.compare(n.size() - ss.size(), std::string::npos, ss) == 0) {
      const std::string internal = LlamaImpl::internal_name(n.substr(0, n.size() - ss.size()) + ".weight");
      return "backbone." + internal.substr(0, internal.size() - 7) + (ss.find("lora_A") != std::string::npos ? ".lora_a" : ".lora_b");
    }
  }
  return "";
}

HfPeftAdapter read_hf_peft(const fs::path& dir, LlamaImpl& backbone) {
  const fs::path cfg_file = dir / kConfigFile, w_file = dir / kWeightsFile;
  M4_CHECK(fs::exists(cfg_file), ErrorCode::kIo, dir.string(), ": no ", kConfigFile, " (not a PEFT adapter directory)");
  M4_CHECK(fs::exists(w_file), ErrorCode::kIo, dir.string(), ": no ", kWeightsFile,
           fs::exists(dir / "adapter_model.bin") ? " (only adapter_model.bin, a pickle, which m4forge never loads; re-save with safe_serialization=True)" : "");
  const json j = read_json_file(cfg_file);
  check(j.is_object(), cfg_file, "must hold a JSON object");
  const std::string type = j.value("peft_type", "");
  const std::string task = j.value("task_type", "CAUSAL_LM");
  check(task == "CAUSAL_LM", cfg_file, "task_type '" + task + "' is not supported (CAUSAL_LM adapters for the backbone only)");
  SafetensorsFile f = SafetensorsFile::open(w_file);
  HfPeftAdapter out;
  out.config.trainable["backbone"] = "";
  auto null_or_empty = [&](const char* k) { return !j.contains(k) || j[k].is_null() || j[k].empty(); };

  if (type == "LORA") {
    out.config.trainable["backbone"] = "lora";
    check(j.contains("r") && j["r"].is_number_integer() && j["r"].get<int64_t>() >= 1, cfg_file,
          "r must be an integer >= 1 (got " + (j.contains("r") ? j["r"].dump() : std::string("none")) + ")");
    out.config.lora.r = j["r"].get<int64_t>();
    // Typed reads: a value of the wrong type is this file's error, not a json exception.
    auto number = [&](const char* k, double dflt) {
      if (!j.contains(k) || j[k].is_null()) return dflt;
      check(j[k].is_number(), cfg_file, std::string(k) + " must be a number (got " + j[k].dump() + ")");
      return j[k].get<double>();
    };
    out.config.lora.alpha = number("lora_alpha", 8.0);
    out.config.lora.dropout = number("lora_dropout", 0.0);
    check(!j.contains("use_rslora") || j["use_rslora"].is_boolean(), cfg_file, "use_rslora must be true or false");
    out.config.lora.rslora = j.value("use_rslora", false);
    check(j.value("bias", std::string("none")) == "none", cfg_file, "bias '" + j.value("bias", std::string()) + "' is not supported (only 'none')");
    check(!j.value("fan_in_fan_out", false), cfg_file, "fan_in_fan_out is for Conv1D models, not LLaMA");
    check(null_or_empty("modules_to_save"), cfg_file, "modules_to_save is not supported");
    check(null_or_empty("layers_to_transform"), cfg_file, "layers_to_transform is not supported");
    check(!j.contains("use_dora") || !j["use_dora"].is_boolean() || !j["use_dora"].get<bool>(), cfg_file, "DoRA is not supported");
    const auto names = linear_names(backbone);
    std::vector<std::string> hits;
    const json& tm = j.contains("target_modules") ? j["target_modules"] : json();
    if (tm.is_string()) {
      // A string is a regex PEFT full-matches against module keys (HF spelling).
      std::regex re;
      try {
        re = std::regex(tm.get<std::string>());
      } catch (const std::regex_error& e) {
        check(false, cfg_file, "target_modules '" + tm.get<std::string>() + "' is not a valid regex (" + e.what() + ")");
      }
      for (const auto& n : names) {
        if (std::regex_match(LlamaImpl::stored_name(n + ".weight").substr(0, LlamaImpl::stored_name(n + ".weight").size() - 7), re)) hits.push_back(n);
      }
      // As with the list form: an adapter that targets nothing would load and do nothing.
      check(!hits.empty(), cfg_file, "target_modules regex '" + tm.get<std::string>() + "' matches no Linear of the backbone");
    } else {
      check(tm.is_array() && !tm.empty(), cfg_file, "target_modules must be a list of module names or a regex");
      for (const auto& t : tm) {
        check(t.is_string(), cfg_file, "target_modules entries must be strings");
        bool any = false;
        for (const auto& n : names) {
          if (suffix_match(n, t.get<std::string>())) {
            hits.push_back(n);
            any = true;
          }
        }
        check(any, cfg_file, "target module '" + t.get<std::string>() + "' matches no Linear of the backbone");
      }
    }
    // rank_pattern / alpha_pattern (peft >= 0.6): key k applies to modules matching ".*\.k$".
    std::map<std::string, json> rank_p, alpha_p;
    if (j.contains("rank_pattern") && j["rank_pattern"].is_object()) rank_p = j["rank_pattern"].get<std::map<std::string, json>>();
    if (j.contains("alpha_pattern") && j["alpha_pattern"].is_object()) alpha_p = j["alpha_pattern"].get<std::map<std::string, json>>();
    std::set<std::string> uniq(hits.begin(), hits.end());
    for (const auto& [k, v] : rank_p) {
      check(v.is_number_integer() && v.get<int64_t>() >= 1, cfg_file,
            "rank_pattern['" + k + "'] must be an integer >= 1 (got " + v.dump() + ")");
    }
    for (const auto& [k, v] : alpha_p) {
      check(v.is_number(), cfg_file, "alpha_pattern['" + k + "'] must be a number (got " + v.dump() + ")");
    }
    auto key_matches = [&](const std::string& key, const std::string& k, const char* field) {
      try {
        return std::regex_match(key, std::regex(".*\\." + k + "$")) || key == k;
      } catch (const std::regex_error& e) {
        check(false, cfg_file, std::string(field) + " key '" + k + "' is not a valid regex (" + e.what() + ")");
        return false;
      }
    };
    for (const auto& n : uniq) {
      LoraRule rule{"backbone." + n, {}, {}};
      const std::string key = "model." + n;
      for (const auto& [k, v] : rank_p) {
        if (key_matches(key, k, "rank_pattern")) rule.r = v.get<int64_t>();
      }
      for (const auto& [k, v] : alpha_p) {
        if (key_matches(key, k, "alpha_pattern")) rule.alpha = v.get<double>();
      }
      out.config.lora.targets.push_back(rule);
    }
    for (const auto& info : f.tensors()) {
      const std::string n = lora_name_from_hf(info.name);
      check(!n.empty(), w_file, "tensor '" + info.name + "' is not a LoRA A/B weight under " + kPeftPrefix);
      out.tensors[n] = f.tensor(info).to(at::kFloat);
    }
  } else if (type == "PROMPT_TUNING" || type == "PREFIX_TUNING") {
    check(j.contains("num_virtual_tokens") && j["num_virtual_tokens"].is_number_integer(), cfg_file,
          "num_virtual_tokens must be an integer");
    const int64_t P = j["num_virtual_tokens"].get<int64_t>();
    check(j.value("num_transformer_submodules", 1) == 1, cfg_file, "num_transformer_submodules must be 1 (decoder-only)");
    check(f.contains("prompt_embeddings"), w_file, "no tensor 'prompt_embeddings'");
    at::Tensor t = f.tensor("prompt_embeddings");
    if (type == "PROMPT_TUNING") {
      out.config.trainable["backbone"] = "prompt";
      out.config.prompt.num_virtual_tokens = P;
      const int64_t H = backbone.config().hidden_size;
      check(t.dim() == 2 && t.size(0) == P && t.size(1) == H, w_file,
            "prompt_embeddings has shape " + shape_str(t.sizes()) + ", the backbone expects [" + std::to_string(P) + ", " +
                std::to_string(H) + "]");
      out.tensors["backbone.prompt.embedding"] = t.to(at::kFloat);
    } else {
      out.config.trainable["backbone"] = "prefix";
      out.config.prefix.num_virtual_tokens = P;
      split_prefix(t, w_file, backbone, P, out);
    }
  } else {
    check(false, cfg_file, "peft_type '" + type + "' is not supported (LORA, PROMPT_TUNING, PREFIX_TUNING)");
  }
  return out;
}

void write_hf_peft(const fs::path& dir, const Adapter& adapter, LlamaImpl& backbone) {
  const PeftConfig& c = adapter.config();
  std::string method;
  for (const auto& [comp, m] : c.trainable) {
    if (m == "frozen") continue;
    M4_CHECK(comp == "backbone", ErrorCode::kMismatch, "HF PEFT's format holds backbone adapters only; this adapter also trains ", comp);
    method = m;
  }
  M4_CHECK(!method.empty(), ErrorCode::kMismatch, "the adapter trains nothing on the backbone");
  json cfg = {{"base_model_name_or_path", ""}, {"inference_mode", true}, {"revision", nullptr},
              {"task_type", "CAUSAL_LM"}, {"auto_mapping", nullptr}};
  NamedTensors tensors;
  const auto& bc = backbone.config();
  const auto exported = adapter.export_tensors();
  if (method == "lora") {
    std::vector<std::string> sites;
    std::map<std::string, int64_t> ranks;
    for (const auto& p : exported) {
      const std::string n = p.name.substr(std::string("backbone.").size());
      const bool is_a = n.size() > 7 && n.compare(n.size() - 7, 7, ".lora_a") == 0;
      const std::string site = n.substr(0, n.size() - 7);
      const std::string stored = LlamaImpl::stored_name(site + ".weight");
      const std::string key = stored.substr(0, stored.size() - 7);
      tensors.emplace_back(kPeftPrefix + key + (is_a ? ".lora_A.weight" : ".lora_B.weight"), p.tensor.detach().contiguous());
      if (is_a) {
        sites.push_back(site);
        ranks[key] = p.tensor.size(0);
      }
    }
    // Suffix names when they select exactly these Linears; else a full-match regex of their keys.
    std::set<std::string> suffixes;
    for (const auto& s : sites) suffixes.insert(s.substr(s.rfind('.') + 1));
    std::set<std::string> by_suffix;
    for (const auto& n : linear_names(backbone)) {
      for (const auto& s : suffixes) {
        if (suffix_match(n, s)) by_suffix.insert(n);
      }
    }
    if (by_suffix == std::set<std::string>(sites.begin(), sites.end())) {
      cfg["target_modules"] = std::vector<std::string>(suffixes.begin(), suffixes.end());
    } else {
      std::string re;
      for (const auto& [key, r] : ranks) re += (re.empty() ? "" : "|") + std::regex_replace(key, std::regex("\\."), "\\.");
      cfg["target_modules"] = "(" + re + ")";
    }
    cfg["peft_type"] = "LORA";
    cfg["r"] = c.lora.r;
    cfg["lora_alpha"] = c.lora.alpha;
    cfg["lora_dropout"] = c.lora.dropout;
    cfg["use_rslora"] = c.lora.rslora;
    cfg["bias"] = "none";
    cfg["fan_in_fan_out"] = false;
    cfg["init_lora_weights"] = true;
    cfg["modules_to_save"] = nullptr;
    cfg["layers_to_transform"] = nullptr;
    cfg["layers_pattern"] = nullptr;
    json rank_pattern = json::object(), alpha_pattern = json::object();
    for (const auto& rule : c.lora.targets) {
      if (!rule.r && !rule.alpha) continue;
      for (const auto& [key, r] : ranks) {
        if (!match_pattern(rule.pattern, "backbone." + LlamaImpl::internal_name(key + ".weight").substr(0, LlamaImpl::internal_name(key + ".weight").size() - 7))) continue;
        if (rule.r) rank_pattern[key] = *rule.r;
        if (rule.alpha) alpha_pattern[key] = *rule.alpha;
      }
    }
    cfg["rank_pattern"] = rank_pattern;
    cfg["alpha_pattern"] = alpha_pattern;
  } else if (method == "prompt") {
    cfg["peft_type"] = "PROMPT_TUNING";
    cfg["num_virtual_tokens"] = c.prompt.num_virtual_tokens;
    cfg["token_dim"] = bc.hidden_size;
    cfg["num_transformer_submodules"] = 1;
    cfg["num_attention_heads"] = bc.num_attention_heads;
    cfg["num_layers"] = bc.num_hidden_layers;
    cfg["prompt_tuning_init"] = "RANDOM";
    cfg["prompt_tuning_init_text"] = nullptr;
    cfg["tokenizer_name_or_path"] = nullptr;
    tensors.emplace_back("prompt_embeddings", exported.at(0).tensor.detach().contiguous());
  } else if (method == "prefix") {
    const int64_t P = c.prefix.num_virtual_tokens, L = bc.num_hidden_layers, KV = bc.num_key_value_heads, D = bc.head_dim;
    std::map<std::string, at::Tensor> by_name;
    for (const auto& p : exported) by_name[p.name] = p.tensor.detach();
    std::vector<at::Tensor> blocks;  // (L*2) x (KV, P, D)
    for (int64_t i = 0; i < L; ++i) {
      const std::string n = "backbone.layers." + std::to_string(i) + ".self_attn.prefix_";
      blocks.push_back(by_name.at(n + "key"));
      blocks.push_back(by_name.at(n + "value"));
    }
    at::Tensor table = at::stack(blocks, 0).permute({2, 0, 1, 3}).reshape({P, L * 2 * KV * D}).contiguous();
    cfg["peft_type"] = "PREFIX_TUNING";
    cfg["num_virtual_tokens"] = P;
    cfg["token_dim"] = KV * D;
    cfg["encoder_hidden_size"] = KV * D;
    cfg["num_transformer_submodules"] = 1;
    cfg["num_attention_heads"] = KV;
    cfg["num_layers"] = L;
    cfg["prefix_projection"] = false;
    tensors.emplace_back("prompt_embeddings", table);
  } else {
    M4_FAIL(ErrorCode::kMismatch, "HF PEFT has no format for backbone method '", method, "'");
  }
  fs::create_directories(dir);
  write_safetensors(dir / kWeightsFile, tensors);
  write_file_atomic(dir / kConfigFile, cfg.dump(1) + "\n");
}

}  // namespace m4
