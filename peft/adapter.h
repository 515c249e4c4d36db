// An adapter: every PEFT method a task config names, attached to the loaded
// firmware modules, with its trainable state saved and loaded as safetensors
// under full dotted names. Loading is fail-closed: every tensor must bind to a
// module with the right shape, and every expected tensor must be present.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "peft/method.h"
#include "peft/peft_config.h"

namespace m4 {

// The adapter file format tag (safetensors __metadata__ "format").
inline constexpr const char* kAdapterFormat = "m4forge-adapter/1";

class Adapter {
 public:
  using Modules = std::map<std::string, std::shared_ptr<torch::nn::Module>>;

  // Attaches every method of `config` to `modules` (component -> loaded
  // firmware module). `target` names the firmware in messages
  // ("firmware m4-demo@0.1.0"). A component the config trains that is not
  // loaded, or a target that matches nothing, is an error.
  Adapter(Modules modules, const PeftConfig& config, std::string target,
          std::vector<int64_t> prompt_init_ids = {});
  ~Adapter();
  Adapter(const Adapter&) = delete;
  Adapter& operator=(const Adapter&) = delete;

  const PeftConfig& config() const { return config_; }
  // Trainable tensors, full dotted names, sorted by name.
  std::vector<NamedParameter> parameters() const;
  std::vector<at::Tensor> trainable_tensors() const;
  // What an exported adapter file holds (prefix MLPs folded).
  std::vector<NamedParameter> export_tensors() const;
  std::vector<PlanRow> plan() const;
  // Every firmware tensor the adapter depends on (name -> the frozen tensor),
  // sorted by name: LoRA'd weights, the k/v projections prefixes stand in for,
  // the embeddings a soft prompt lives beside, the widths a projector/head maps.
  std::vector<TouchedTensor> touched() const;
  int64_t trainable_count() const;
  // Parameters of the loaded firmware modules (frozen) plus trainable ones.
  int64_t total_count() const;

  void train(bool on = true);
  void eval() { train(false); }
  // Moves the trainable tensors (and projector/head modules) to `device`, in
  // place; the firmware modules it is attached to are the caller's to move.
  void to(c10::Device device);
  void merge();
  void unmerge();
  void detach();  // removes every hook; the firmware modules compute as before
  // Sets the hooks again after detach() (a host lending shared modules to one
  // adapter per request); refuses modules that carry another adapter's hooks.
  void attach();
  bool attached() const { return !detached_; }

  // A projector/head module, or nullptr when the config has none.
  torch::nn::Module* part(const std::string& component) const;

  // `exported`: folded tensors (what bundles hold); otherwise the trainable
  // parameters as they are (checkpoints).
  void save(const std::filesystem::path& path, bool exported = true) const;
  void load(const std::filesystem::path& path);
  // The same check and copy, from tensors already in memory; `where` names their source.
  void load_tensors(const std::map<std::string, at::Tensor>& tensors, const std::string& where);

  // An adapter file's own config (its metadata) attached to `modules`. With
  // `loaded_only`, methods on components that are not loaded (and their
  // tensors) are left out, so one module can run with its share of a larger
  // adapter; every tensor of the loaded components must still bind.
  static std::unique_ptr<Adapter> open_file(const std::filesystem::path& path, Modules modules, const std::string& target,
                                            bool loaded_only = false);

  // Asserts no firmware parameter requires grad or holds a gradient buffer.
  void check_frozen() const;

 private:
  Modules modules_;
  PeftConfig config_;
  std::string target_;
  std::vector<std::pair<std::string, std::unique_ptr<Attachment>>> parts_;
  bool detached_ = false;
};

}  // namespace m4
