// Loads any module of a firmware by name as a torch module, dispatching on its
// arch (llama, clip_vision, ...): what PEFT walks to attach adapters.
#pragma once

#include <torch/nn/module.h>

#include <map>
#include <memory>
#include <string>

namespace m4 {

class Firmware;
class Tokenizer;
class ClipTokenizer;

// The module `name` of `fw` (zero-copy frozen weights, f32 compute).
std::shared_ptr<torch::nn::Module> load_firmware_module(const Firmware& fw, const std::string& name);

// The modules of one firmware, each loaded on first use and then kept: one
// resident copy that many tasks use in turn (`m4forge train-many`). Adapters
// attach hooks to a module, so only one task may use it at a time; Adapter
// refuses a module that still carries another adapter's hooks.
class ModuleCache {
 public:
  explicit ModuleCache(const Firmware& fw) : fw_(fw) {}
  const Firmware& firmware() const { return fw_; }
  std::shared_ptr<torch::nn::Module> get(const std::string& name);
  size_t loads() const { return modules_.size(); }  // modules loaded so far (each once)
  // The tokenizers beside the modules, loaded once and shared the same way:
  // the backbone's tokenizer.model, and txt_enc's vocab.json + merges.txt.
  std::shared_ptr<const Tokenizer> tokenizer();
  std::shared_ptr<const ClipTokenizer> clip_tokenizer();

 private:
  const Firmware& fw_;
  std::map<std::string, std::shared_ptr<torch::nn::Module>> modules_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::shared_ptr<const ClipTokenizer> clip_tokenizer_;
};

}  // namespace m4

namespace m4 {
// The hidden width of a loaded firmware module (backbone hidden_size, an
// encoder's transformer width): what a projector or head attaches to.
int64_t firmware_module_width(const torch::nn::Module& module);
}  // namespace m4
