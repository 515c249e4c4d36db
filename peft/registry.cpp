// The PEFT methods m4forge knows: one line each.
#include "peft/head.h"
#include "peft/lora.h"
#include "peft/method.h"
#include "peft/prefix_tuning.h"
#include "peft/prompt_tuning.h"

namespace m4 {

const std::vector<PeftMethod>& peft_methods() {
  static const std::vector<PeftMethod> kMethods = {
      {"lora", attach_lora},
      {"prefix", attach_prefix},
      {"prompt", attach_prompt},
      {"full", attach_full},  // projector and head
  };
  return kMethods;
}

void assign_parameter(at::Tensor& dst, const at::Tensor& src) {
  at::NoGradGuard ng;
  dst.copy_(src.to(dst.scalar_type()));
}

void Attachment::load(const std::map<std::string, at::Tensor>& tensors) {
  for (auto& p : parameters()) assign_parameter(p.tensor, tensors.at(p.name));
}

}  // namespace m4
