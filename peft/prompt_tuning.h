// Prompt tuning (Lester et al. 2021) as HF PEFT: P soft tokens prepended to the
// backbone's input embeddings; initialised N(0, 1) or from the embeddings of a
// text's tokens (repeated or cut to P).
#pragma once

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

#include "firmware/adapter_hooks.h"
#include "peft/method.h"

namespace m4 {

struct PromptTuningOptions {
  PromptTuningOptions(int64_t tokens, int64_t hidden) : tokens_(tokens), hidden_(hidden) {}
  TORCH_ARG(int64_t, tokens);
  TORCH_ARG(int64_t, hidden);
  TORCH_ARG(uint64_t, seed) = 0;
};

class PromptTuningImpl : public torch::nn::Cloneable<PromptTuningImpl>, public InputPrompt {
 public:
  explicit PromptTuningImpl(const PromptTuningOptions& options);
  void reset() override;
  // PEFT's TEXT init: the word embeddings of `ids`, cycled to fill P tokens.
  void init_from_tokens(const at::Tensor& word_embeddings, const std::vector<int64_t>& ids);

  int64_t tokens() const override { return options.tokens(); }
  at::Tensor embeddings() override { return embedding; }

  PromptTuningOptions options;
  at::Tensor embedding;  // (P, hidden)
};
TORCH_MODULE(PromptTuning);

// Prompt tuning on the backbone.
std::unique_ptr<Attachment> attach_prompt(const AttachContext& ctx);

}  // namespace m4
