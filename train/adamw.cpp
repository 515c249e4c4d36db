// AdamW step in torch's operation order (torch/optim/adamw.py, _single_tensor_adamw).
#include "train/adamw.h"

#include <cmath>

namespace m4 {

AdamW::AdamW(std::vector<at::Tensor> params, AdamWOptions options) : params_(std::move(params)), o_(options) {
  for (const auto& p : params_) {
    m_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
    v_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
  }
}

void AdamW::step(double lr) {
  at::NoGradGuard ng;
  ++step_;
  const double bc1 = 1 - std::pow(o_.beta1, static_cast<double>(step_));
  const double bc2 = 1 - std::pow(o_.beta2, static_cast<double>(step_));
  const double step_size = lr / bc1, bc2_sqrt = std::sqrt(bc2);
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i];
    if (!p.grad().defined()) continue;
    const at::Tensor& g = p.grad();
    p.mul_(1 - lr * o_.weight_decay);
    m_[i].mul_(o_.beta1).add_(g, 1 - o_.beta1);
    v_[i].mul_(o_.beta2).addcmul_(g, g, 1 - o_.beta2);
    at::Tensor denom = (v_[i].sqrt() / bc2_sqrt).add_(o_.eps);
    p.addcdiv_(m_[i], denom, -step_size);
  }
}

void AdamW::zero_grad() {
  for (auto& p : params_) {
    if (p.grad().defined()) p.mutable_grad().zero_();
  }
}

}  // namespace m4
