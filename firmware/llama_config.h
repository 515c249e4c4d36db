// The LLaMA-family architecture as Hugging Face's LlamaConfig describes it
// (config.json of a LlamaForCausalLM checkpoint). Torch-free.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace m4 {

struct RopeScaling {
  std::string type = "default";  // "default" (none) or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct LlamaConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // defaults to num_attention_heads
  int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;
  int64_t pad_token_id = -1;
  std::string torch_dtype = "float32";  // as recorded; informational

  // Parses HF's config.json (or our normalised form). Every problem found is
  // reported at once in one line; `where` names the file.
  static LlamaConfig from_json(const nlohmann::json& j, const std::string& where);
  static LlamaConfig from_file(const std::filesystem::path& config_json);
  // The normalised form stored in firmware.json and hashed into firmware_id.
  nlohmann::json to_json() const;
  // A short description for messages: "hidden 64, 2 layers, 4 heads (2 kv), ...".
  std::string summary() const;
};

}  // namespace m4
