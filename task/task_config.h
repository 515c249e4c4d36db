// Task configs (configs/tasks/<task>.yaml): load, apply dotted CLI overrides,
// fill documented defaults, and validate, reporting every problem at once.
// The schema is documented in docs/tasks.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "prompts/prompt_template.h"
#include "task/metrics.h"

namespace m4 {

struct TaskData {
  std::string train, test;   // HDF5 files, relative to the working directory
  bool user_supplied = false;  // not buildable from Debian packages
  std::string prepare;       // command that builds them (may be empty)
  std::string note;          // what to supply, provenance, caveats
};

struct TaskOptim {
  double lr = 1e-3, weight_decay = 0.01;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  std::string schedule = "cosine";  // cosine | linear | constant (after warmup)
  int64_t warmup_steps = 0;
  double clip_grad_norm = 1.0;      // 0 = no clipping
};

struct TaskTrain {
  int64_t batch_size = 16, grad_accum = 1, steps = 200, eval_every = 50;  // eval_every 0 = only at the end
  int64_t seed = 0;
  std::string precision = "f32";  // f32 | bf16
  std::string device = "auto";    // auto | cpu | cuda (core/device.h); not part of the run's identity
};

struct TaskConfig {
  std::filesystem::path source;  // the YAML file
  std::string task, description;
  int path = 0;                                  // 1, 2 or 3 (paper §3.3)
  std::vector<std::string> modules;              // firmware modules on the path
  std::map<std::string, std::string> trainable;  // component -> frozen|full|lora|prefix|prompt; every module, projector and head present
  nlohmann::json peft;                           // sections of the methods in use, defaults filled
  std::string prompt;                            // prompts/templates/<prompt>.yaml
  TaskData data;
  MetricSpec metric;
  TaskOptim optim;
  TaskTrain train;
  nlohmann::json resolved;  // the whole config after overrides and defaults (for manifests)

  // Components whose method is not `frozen`, sorted.
  std::vector<std::string> trained_components() const;
};

// Loads `path`, applies `overrides` ("optim.lr=1e-4", value parsed as a YAML
// scalar or flow list), fills defaults, validates. `repo_root` locates
// prompts/templates. Every problem goes into ONE m4::Error(kBadInput) naming the
// file; a bad override (unknown key, no '=') is m4::Error(kInvalidArgument).
TaskConfig load_task_config(const std::filesystem::path& path, const std::vector<std::string>& overrides,
                            const std::filesystem::path& repo_root);

// Same, from already-parsed json (e.g. a manifest's training config); `where` prefixes errors.
TaskConfig task_config_from_json(nlohmann::json j, const std::vector<std::string>& overrides,
                                 const std::filesystem::path& repo_root, const std::string& where);

// Same, with the prompt template given instead of read from prompts/templates
// (a bundle's manifest carries its own); its id must be the config's `prompt`.
TaskConfig task_config_from_json(nlohmann::json j, const PromptTemplate& prompt, const std::string& where);
// Applies one "a.b.c=value" override in place; a key outside the schema is an
// error naming it and listing what exists there.
void apply_override(nlohmann::json& j, const std::string& override_text);

// The task registry: every configs_dir/*.yaml (task id = file stem), sorted.
struct TaskEntry {
  std::string id;
  std::filesystem::path file;
};
std::vector<TaskEntry> list_tasks(const std::filesystem::path& configs_dir);

// The repository a config or job file lives in: the nearest ancestor directory
// holding prompts/templates (else the working directory).
std::filesystem::path find_repo_root(const std::filesystem::path& file);

// Names used in configs, for messages and docs.
const std::vector<std::string>& known_modules();  // img_enc, txt_enc, aud_b_enc, aud_i_enc, imu_enc, backbone
const std::vector<std::string>& known_methods();  // frozen, full, lora, prefix, prompt

}  // namespace m4
