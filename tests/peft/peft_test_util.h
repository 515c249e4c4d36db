// Shared by the PEFT tests: the HF fixture backbones, the causal-LM loss HF
// computes, and an adapter over one loaded module.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <memory>
#include <string>

#include "firmware/llama.h"
#include "firmware/weight_set.h"
#include "peft/adapter.h"
#include "tests/support/test_util.h"

namespace m4::test {

// LlamaForCausalLM from a fixture directory (llama/ or prefix_tuning/base/).
inline std::shared_ptr<LlamaImpl> fixture_llama(const std::string& sub) {
  const auto dir = fixtures() / sub;
  return std::make_shared<LlamaImpl>(LlamaConfig::from_file(dir / "config.json"), WeightSet::open_hf_dir(dir), sub);
}

// HF's shifted causal-LM loss: logits (B, T, V) predict labels[:, 1:]; -100 ignored.
inline at::Tensor causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels) {
  const int64_t T = logits.size(1);
  at::Tensor l = logits.narrow(1, 0, T - 1).reshape({-1, logits.size(2)});
  at::Tensor y = labels.narrow(1, 1, T - 1).reshape({-1});
  return at::cross_entropy_loss(l, y, {}, at::Reduction::Mean, -100);
}

inline PeftConfig peft_config(const std::string& json_text) {
  return PeftConfig::from_json(nlohmann::json::parse(json_text), "test config");
}

}  // namespace m4::test
