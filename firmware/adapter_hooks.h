// The points where PEFT methods attach to the frozen firmware modules. The
// firmware only calls these interfaces; m4_peft implements them (LoRA on a
// Linear, prefix tuning on an attention layer, prompt tuning on the backbone).
// With no hook set, every module computes exactly what the checkpoint defines.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>

namespace m4 {

// Added to a Linear's output: y = x W^T + b + delta(x).
class LinearAdapter {
 public:
  virtual ~LinearAdapter() = default;
  // x: (..., in) -> (..., out)
  virtual at::Tensor delta(const at::Tensor& x) = 0;
};

// Learned keys and values placed before the real ones of one attention layer;
// every query attends to them, and they carry no (rotary) position.
class AttentionPrefix {
 public:
  virtual ~AttentionPrefix() = default;
  // Each (kv_heads, P, head_dim).
  virtual std::pair<at::Tensor, at::Tensor> key_value() = 0;
};

// Soft tokens prepended to the backbone's input embeddings (prompt tuning).
class InputPrompt {
 public:
  virtual ~InputPrompt() = default;
  virtual int64_t tokens() const = 0;
  virtual at::Tensor embeddings() = 0;  // (P, hidden)
};

}  // namespace m4
