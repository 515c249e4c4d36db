// Parsing and validation of HF LlamaConfig (config.json).
#include "firmware/llama_config.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_file.h"

namespace m4 {
using json = nlohmann::json;

LlamaConfig LlamaConfig::from_json(const json& j, const std::string& where) {
  std::vector<std::string> problems;
  LlamaConfig c;
  M4_CHECK(j.is_object(), ErrorCode::kBadInput, where, ": config must be a JSON object");

  auto get_int = [&](const char* key, int64_t* out, bool required) {
    if (!j.contains(key) || j[key].is_null()) {
      if (required) problems.push_back(std::string("missing field '") + key + "'");
      return;
    }
    if (!j[key].is_number_integer()) {
      problems.push_back(std::string("field '") + key + "' must be an integer, found " + j[key].dump());
      return;
    }
    *out = j[key].get<int64_t>();
  };
  auto get_double = [&](const char* key, double* out) {
    if (!j.contains(key) || j[key].is_null()) return;
    if (!j[key].is_number()) {
      problems.push_back(std::string("field '") + key + "' must be a number, found " + j[key].dump());
      return;
    }
    *out = j[key].get<double>();
  };
  auto get_bool = [&](const char* key, bool* out) {
    if (!j.contains(key) || j[key].is_null()) return;
    if (!j[key].is_boolean()) {
      problems.push_back(std::string("field '") + key + "' must be true or false, found " + j[key].dump());
      return;
    }
    *out = j[key].get<bool>();
  };

  get_int("vocab_size", &c.vocab_size, true);
  get_int("hidden_size", &c.hidden_size, true);
  get_int("intermediate_size", &c.intermediate_size, true);
  get_int("num_hidden_layers", &c.num_hidden_layers, true);
  get_int("num_attention_heads", &c.num_attention_heads, true);
  get_int("num_key_value_heads", &c.num_key_value_heads, false);
  get_int("head_dim", &c.head_dim, false);
  get_int("max_position_embeddings", &c.max_position_embeddings, false);
  get_double("rms_norm_eps", &c.rms_norm_eps);
  get_double("rope_theta", &c.rope_theta);
  get_bool("tie_word_embeddings", &c.tie_word_embeddings);
  get_bool("attention_bias", &c.attention_bias);
  get_bool("mlp_bias", &c.mlp_bias);
  get_int("bos_token_id", &c.bos_token_id, false);
  get_int("pad_token_id", &c.pad_token_id, false);
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const json& e = j["eos_token_id"];
    if (e.is_number_integer()) {
      c.eos_token_ids.push_back(e.get<int64_t>());
    } else if (e.is_array()) {
      for (const auto& x : e) {
        if (x.is_number_integer()) c.eos_token_ids.push_back(x.get<int64_t>());
        else problems.push_back("field 'eos_token_id' must hold integers, found " + e.dump());
      }
    } else {
      problems.push_back("field 'eos_token_id' must be an integer or a list, found " + e.dump());
    }
  }
  if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.torch_dtype = j["torch_dtype"];
  if (j.contains("hidden_act") && !(j["hidden_act"].is_string() && j["hidden_act"] == "silu")) {
    problems.push_back("hidden_act " + j["hidden_act"].dump() + " is not supported (LLaMA uses \"silu\")");
  }
  if (j.contains("pretraining_tp") && j["pretraining_tp"].is_number_integer() &&
      j["pretraining_tp"].get<int64_t>() != 1) {
    // HF's pretraining_tp > 1 only changes rounding, not the function; accept it.
  }
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& r = j["rope_scaling"];
    if (!r.is_object()) {
      problems.push_back("field 'rope_scaling' must be an object or null");
    } else {
      std::string type = r.value("rope_type", r.value("type", std::string("default")));
      if (type == "default") {
        c.rope_scaling.type = "default";
      } else if (type == "llama3") {
        c.rope_scaling.type = "llama3";
        auto num = [&](const char* key, double* out) {
          if (!r.contains(key) || !r[key].is_number()) {
            problems.push_back(std::string("rope_scaling of type llama3 needs a number '") + key + "'");
          } else {
            *out = r[key].get<double>();
          }
        };
        num("factor", &c.rope_scaling.factor);
        num("low_freq_factor", &c.rope_scaling.low_freq_factor);
        num("high_freq_factor", &c.rope_scaling.high_freq_factor);
        double orig = 0;
        num("original_max_position_embeddings", &orig);
        c.rope_scaling.original_max_position_embeddings = static_cast<int64_t>(orig);
        if (c.rope_scaling.high_freq_factor <= c.rope_scaling.low_freq_factor)
          problems.push_back("rope_scaling: high_freq_factor must exceed low_freq_factor");
      } else {
        problems.push_back("rope_scaling type '" + type + "' is not supported (supported: llama3, none)");
      }
    }
  }

  if (c.num_key_value_heads == 0) c.num_key_value_heads = c.num_attention_heads;
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) problems.push_back(std::string("field '") + key + "' must be positive, found " + std::to_string(v));
  };
  if (problems.empty()) {
    positive("vocab_size", c.vocab_size);
    positive("hidden_size", c.hidden_size);
    positive("intermediate_size", c.intermediate_size);
    positive("num_hidden_layers", c.num_hidden_layers);
    positive("num_attention_heads", c.num_attention_heads);
    positive("num_key_value_heads", c.num_key_value_heads);
    positive("max_position_embeddings", c.max_position_embeddings);
  }
  if (problems.empty()) {
    if (c.head_dim == 0) {
      if (c.hidden_size % c.num_attention_heads != 0)
        problems.push_back("hidden_size " + std::to_string(c.hidden_size) +
                           " is not divisible by num_attention_heads " +
                           std::to_string(c.num_attention_heads) + " (and no head_dim given)");
      else
        c.head_dim = c.hidden_size / c.num_attention_heads;
    }
    if (c.head_dim <= 0 || c.head_dim % 2 != 0)
      problems.push_back("head_dim " + std::to_string(c.head_dim) + " must be positive and even (rotary pairs)");
    if (c.num_attention_heads % c.num_key_value_heads != 0)
      problems.push_back("num_attention_heads " + std::to_string(c.num_attention_heads) +
                         " is not a multiple of num_key_value_heads " + std::to_string(c.num_key_value_heads));
    if (c.rms_norm_eps <= 0) problems.push_back("rms_norm_eps must be positive");
    if (c.rope_theta <= 0) problems.push_back("rope_theta must be positive");
  }
  check_problems(problems, where);
  return c;
}

LlamaConfig LlamaConfig::from_file(const std::filesystem::path& config_json) {
  return from_json(read_json_file(config_json), config_json.string());
}

json LlamaConfig::to_json() const {
  json j = {{"vocab_size", vocab_size},
            {"hidden_size", hidden_size},
            {"intermediate_size", intermediate_size},
            {"num_hidden_layers", num_hidden_layers},
            {"num_attention_heads", num_attention_heads},
            {"num_key_value_heads", num_key_value_heads},
            {"head_dim", head_dim},
            {"max_position_embeddings", max_position_embeddings},
            {"rms_norm_eps", rms_norm_eps},
            {"rope_theta", rope_theta},
            {"tie_word_embeddings", tie_word_embeddings},
            {"attention_bias", attention_bias},
            {"mlp_bias", mlp_bias},
            {"hidden_act", "silu"},
            {"bos_token_id", bos_token_id},
            {"eos_token_id", eos_token_ids},
            {"pad_token_id", pad_token_id}};
  if (rope_scaling.type == "llama3") {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", rope_scaling.factor},
                         {"low_freq_factor", rope_scaling.low_freq_factor},
                         {"high_freq_factor", rope_scaling.high_freq_factor},
                         {"original_max_position_embeddings", rope_scaling.original_max_position_embeddings}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  return j;
}

std::string LlamaConfig::summary() const {
  std::ostringstream os;
  os << "hidden " << hidden_size << ", " << num_hidden_layers << " layers, " << num_attention_heads
     << " heads (" << num_key_value_heads << " kv, head_dim " << head_dim << "), intermediate "
     << intermediate_size << ", vocab " << vocab_size;
  return os.str();
}

}  // namespace m4
