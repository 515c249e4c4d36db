// Soft prompt parameters and their initialisation.
#include "peft/prompt_tuning.h"

#include <ATen/CPUGeneratorImpl.h>

#include "core/error.h"
#include "firmware/llama.h"

namespace m4 {

PromptTuningImpl::PromptTuningImpl(const PromptTuningOptions& o) : options(o) {
  M4_CHECK(o.tokens() >= 1, ErrorCode::kInvalidArgument, "prompt tuning needs num_virtual_tokens >= 1, found ",
           o.tokens());
  reset();
}

void PromptTuningImpl::reset() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed());
  embedding = register_parameter("embedding", at::empty({options.tokens(), options.hidden()}).normal_(0, 1, gen));
}

void PromptTuningImpl::init_from_tokens(const at::Tensor& word_embeddings, const std::vector<int64_t>& ids) {
  M4_CHECK(!ids.empty(), ErrorCode::kInvalidArgument, "prompt tuning init_text gives no tokens");
  std::vector<int64_t> cycled;
  for (int64_t i = 0; i < options.tokens(); ++i) cycled.push_back(ids[static_cast<size_t>(i) % ids.size()]);
  at::NoGradGuard ng;
  embedding.copy_(at::embedding(word_embeddings, at::tensor(cycled, at::kLong)).to(at::kFloat));
}

}  // namespace m4

namespace m4 {
namespace {

class PromptAttachment : public Attachment {
 public:
  std::shared_ptr<LlamaImpl> llama;
  PromptTuning prompt{nullptr};

  std::vector<NamedParameter> parameters() override { return {{"backbone.prompt.embedding", prompt->embedding}}; }
  std::vector<PlanRow> plan() override {
    return {{"backbone", "backbone (input embeddings)", "prompt",
             std::to_string(prompt->options.tokens()) + " soft tokens x " + std::to_string(prompt->options.hidden()),
             prompt->embedding.numel()}};
  }
  std::vector<TouchedTensor> touched() override {
    return {{"backbone.embed_tokens.weight", llama->embed_tokens->weight.sizes().vec()}};
  }
  void train(bool on) override { prompt->train(on); }
  void detach() override { llama->input_prompt.reset(); }
  void attach() override { llama->input_prompt = std::dynamic_pointer_cast<InputPrompt>(prompt.ptr()); }
};

}  // namespace

std::unique_ptr<Attachment> attach_prompt(const AttachContext& ctx) {
  auto llama = std::dynamic_pointer_cast<LlamaImpl>(ctx.module);
  M4_CHECK(llama != nullptr, ErrorCode::kMismatch, "prompt tuning attaches to the backbone, not ", ctx.component);
  auto a = std::make_unique<PromptAttachment>();
  a->llama = llama;
  PromptTuningOptions o(ctx.config->prompt.num_virtual_tokens, llama->config().hidden_size);
  a->prompt = PromptTuning(o.seed(ctx.config->seed));
  if (!ctx.prompt_init_ids.empty()) a->prompt->init_from_tokens(llama->embed_tokens->weight, ctx.prompt_init_ids);
  a->attach();
  return a;
}

}  // namespace m4
