// AdamW (Loshchilov & Hutter) computed exactly as torch.optim.AdamW's
// single-tensor path does (decoupled decay, then the bias-corrected step), with
// its state out in the open so checkpoints can save and restore it.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace m4 {

struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

class AdamW {
 public:
  AdamW(std::vector<at::Tensor> params, AdamWOptions options);
  // One step with learning rate `lr` on the parameters' current .grad().
  void step(double lr);
  void zero_grad();

  int64_t steps() const { return step_; }
  std::vector<at::Tensor>& exp_avg() { return m_; }
  std::vector<at::Tensor>& exp_avg_sq() { return v_; }
  void set_steps(int64_t s) { step_ = s; }
  const std::vector<at::Tensor>& params() const { return params_; }

 private:
  std::vector<at::Tensor> params_, m_, v_;
  AdamWOptions o_;
  int64_t step_ = 0;
};

}  // namespace m4
