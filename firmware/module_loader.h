// Loads any module of a firmware by name as a torch module, dispatching on its
// arch (llama, clip_vision, ...): what PEFT walks to attach adapters.
#pragma once

#include <torch/nn/module.h>

#include <memory>
#include <string>

namespace m4 {

class Firmware;

// The module `name` of `fw` (zero-copy frozen weights, f32 compute).
std::shared_ptr<torch::nn::Module> load_firmware_module(const Firmware& fw, const std::string& name);

}  // namespace m4

namespace m4 {
// The hidden width of a loaded firmware module (backbone hidden_size, an
// encoder's transformer width): what a projector or head attaches to.
int64_t firmware_module_width(const torch::nn::Module& module);
}  // namespace m4
