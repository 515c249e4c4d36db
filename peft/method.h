// The extension point for PEFT methods: a method attaches to one component
// (a firmware module, or the projector/head slot) and hands back an Attachment
// that owns its trainable tensors. New methods: a file pair with an attach
// function, plus one line in registry.cpp.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "peft/peft_config.h"

namespace m4 {

struct NamedParameter {
  std::string name;  // full dotted name: backbone.layers.3.self_attn.q_proj.lora_a
  at::Tensor tensor;
};

// A firmware tensor an adapter depends on, with the shape it has in use (a
// quantized weight: the shape it dequantizes to).
struct TouchedTensor {
  std::string name;  // full dotted internal name: backbone.layers.3.self_attn.q_proj.weight
  std::vector<int64_t> shape;
};

// One line of `m4forge peft plan`: which module got what.
struct PlanRow {
  std::string component;
  std::string target;  // full module name (or the component for whole-component methods)
  std::string method;
  std::string detail;  // e.g. "r=8 alpha=16 [64 -> 64]"
  int64_t parameters = 0;
};

// Loaded firmware modules by component name, plus what the methods need from
// outside the modules (text-initialised soft prompts need token ids).
struct AttachContext {
  std::string component;
  std::shared_ptr<torch::nn::Module> module;  // null for projector/head
  const std::map<std::string, std::shared_ptr<torch::nn::Module>>* modules = nullptr;
  const PeftConfig* config = nullptr;
  std::vector<int64_t> prompt_init_ids;  // tokens of peft.prompt.init_text, if any
};

class Attachment {
 public:
  virtual ~Attachment() = default;
  // Trainable tensors (requires_grad) with full dotted names, in a stable order.
  virtual std::vector<NamedParameter> parameters() = 0;
  // The tensors an exported adapter holds (default: parameters()); prefix
  // tuning folds its MLP here.
  virtual std::vector<NamedParameter> export_tensors() { return parameters(); }
  // Loads tensors by name (already checked for presence and shape by Adapter);
  // `names` are the names the file holds for this attachment.
  virtual void load(const std::map<std::string, at::Tensor>& tensors);
  // The names (and shapes) load() accepts as a complete set: parameters(), or
  // the exported form when it differs. Adapter uses these to fail closed.
  virtual std::vector<std::vector<NamedParameter>> accepted_layouts() { return {parameters()}; }
  virtual std::vector<PlanRow> plan() = 0;
  // The firmware tensors this attachment depends on, full dotted names
  // (internal spelling) with their shapes: what a bundle binds to.
  virtual std::vector<TouchedTensor> touched() = 0;
  virtual void train(bool on) = 0;
  // The torch module of a whole-component method (projector, head); else null.
  virtual torch::nn::Module* module() { return nullptr; }
  virtual void merge() {}
  virtual void unmerge() {}
  virtual void detach() = 0;  // removes every hook from the firmware module
  virtual void attach() = 0;  // sets them again (a host switching adapters on shared modules)
};

using AttachFn = std::unique_ptr<Attachment> (*)(const AttachContext&);

struct PeftMethod {
  const char* name;  // the value of trainable.<component>
  AttachFn attach;
};

// Every registered method (registry.cpp).
const std::vector<PeftMethod>& peft_methods();

// Copies `src` into the parameter `dst` (same shape), without recording grad.
void assign_parameter(at::Tensor& dst, const at::Tensor& src);

}  // namespace m4
