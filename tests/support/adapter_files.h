// Adapter files for the bundle and serve tests: the adapter a task config
// describes on a firmware, with seeded random weights so it changes outputs.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "firmware/firmware.h"
#include "firmware/module_loader.h"
#include "peft/adapter.h"
#include "prompts/prompt_template.h"
#include "task/task_config.h"
#include "tests/support/test_util.h"

namespace m4::test {

// A classifier head gets the template's label count.
inline std::string write_random_adapter(const std::string& fw_dir, const std::string& cfg, const std::filesystem::path& out,
                                        uint64_t seed = 0) {
  const Firmware fw = Firmware::open(fw_dir);
  const TaskConfig task = load_task_config(cfg, {}, repo_dir());
  nlohmann::json pj = task.peft;
  if (task.trainable.count("head") && task.trainable.at("head") == "full") {
    pj["head"]["classes"] = load_prompt_template(repo_dir(), task.prompt).labels.size();
  }
  const PeftConfig peft = PeftConfig::from_json({{"trainable", task.trainable}, {"peft", pj}}, cfg);
  Adapter::Modules modules;
  for (const auto& m : task.modules) modules[m] = load_firmware_module(fw, m);
  Adapter a(modules, peft, fw.label());
  at::manual_seed(static_cast<int64_t>(seed));
  {
    at::NoGradGuard g;
    for (auto& p : a.parameters()) p.tensor.normal_(0, 0.02);
  }
  a.save(out);
  return out.string();
}

}  // namespace m4::test
