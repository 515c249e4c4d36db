// `m4forge peft`: which module of a firmware gets which adapter for a task
// (plan), and HF PEFT interop (import-hf, export-hf) for backbone adapters.
#include <spdlog/spdlog.h>

#include <iomanip>
#include <iostream>
#include <map>

#include "cli/cli_common.h"
#include "core/error.h"
#include "firmware/firmware.h"
#include "firmware/llama.h"
#include "firmware/module_loader.h"
#include "firmware/tokenizer.h"
#include "peft/adapter.h"
#include "peft/hf_peft.h"
#include "prompts/prompt_template.h"
#include "task/task_config.h"

namespace m4::cli {
namespace {
namespace fs = std::filesystem;

// Token ids for a text-initialised soft prompt, from the backbone's tokenizer.
std::vector<int64_t> prompt_init_ids(const Firmware& fw, const PeftConfig& c) {
  if (c.prompt.init_text.empty() || !c.trainable.count("backbone") || c.trainable.at("backbone") != "prompt") return {};
  return fw.tokenizer().encode(c.prompt.init_text);
}

// A classifier head's class count, when the config leaves it to the labels:
// the template's verbalizer (labels listed in the template) fills it.
nlohmann::json with_head_classes(const TaskConfig& task, const fs::path& root) {
  nlohmann::json peft = task.peft;
  const auto h = task.trainable.find("head");
  if (h == task.trainable.end() || h->second != "full") return peft;
  const nlohmann::json head = peft.value("head", nlohmann::json::object());
  if (head.value("kind", std::string("classifier")) != "classifier" || head.value("classes", 0) >= 2) return peft;
  M4_CHECK(!task.prompt.empty(), ErrorCode::kInvalidArgument, task.source.string(),
           ": the classifier head needs peft.head.classes (no prompt template lists the labels)");
  const PromptTemplate t = load_prompt_template(root, task.prompt);
  M4_CHECK(!t.labels_from_dataset, ErrorCode::kInvalidArgument, task.source.string(),
           ": the classifier head's classes come from the dataset's label names (", task.data.train,
           "); add peft.head.classes=N after the config to plan without it");
  peft["head"]["classes"] = static_cast<int64_t>(t.labels.size());
  return peft;
}

Adapter::Modules load_modules(const Firmware& fw, const std::vector<std::string>& names) {
  Adapter::Modules modules;
  for (const auto& n : names) {
    M4_CHECK(fw.has(n), ErrorCode::kMismatch, fw.dir().string(), ": the task needs module ", n, ", which ", fw.label(),
             " does not have");
    modules[n] = load_firmware_module(fw, n);
  }
  return modules;
}

int plan_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge peft plan", "Attach a task config's adapters to a firmware and list which module gets which\n"
                                          "method, with trainable vs total parameters. Nothing is trained or written.");
  add_config_args(o);
  o.add_options()("firmware", "firmware directory", cxxopts::value<std::string>())("json", "print JSON instead of a table");
  o.positional_help("CONFIG [key=value ...]");
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  const auto [cfg_path, overrides] = config_args(r);
  const fs::path root = repo_root_of(cfg_path);
  TaskConfig task = load_task_config(cfg_path, overrides, root);
  const PeftConfig peft = PeftConfig::from_json({{"trainable", task.trainable}, {"peft", with_head_classes(task, root)}}, cfg_path.string());
  Firmware fw = Firmware::open(required(r, "firmware"));
  Adapter adapter(load_modules(fw, task.modules), peft, fw.label(), prompt_init_ids(fw, peft));
  const auto rows = adapter.plan();
  const int64_t trainable = adapter.trainable_count(), total = adapter.total_count();
  if (r.count("json")) {
    nlohmann::json j = {{"task", task.task}, {"firmware", fw.label()}, {"firmware_id", fw.id()},
                        {"trainable_parameters", trainable}, {"total_parameters", total}, {"modules", nlohmann::json::array()}};
    for (const auto& row : rows) {
      j["modules"].push_back({{"component", row.component}, {"target", row.target}, {"method", row.method},
                              {"detail", row.detail}, {"parameters", row.parameters}});
    }
    for (const auto& [c, m] : peft.trainable) j["trainable"][c] = m;
    std::cout << j.dump(1) << "\n";
    return 0;
  }
  std::cout << "task " << task.task << " (path " << task.path << ") on " << fw.label() << "\n";
  for (const auto& m : task.modules) {
    const auto it = peft.trainable.find(m);
    std::cout << "  " << std::left << std::setw(10) << m << (it == peft.trainable.end() ? "frozen" : it->second) << "\n";
  }
  size_t w = 6;
  for (const auto& row : rows) w = std::max(w, row.target.size());
  std::cout << "\n" << std::left << std::setw(static_cast<int>(w) + 2) << "target" << std::setw(8) << "method"
            << std::right << std::setw(12) << "params" << "  detail\n";
  for (const auto& row : rows) {
    std::cout << std::left << std::setw(static_cast<int>(w) + 2) << row.target << std::setw(8) << row.method << std::right
              << std::setw(12) << (row.parameters > 0 ? std::to_string(row.parameters) : "") << "  " << row.detail << "\n";
  }
  std::cout << "\ntrainable params: " << trainable << " || all params: " << total << " || trainable%: " << std::fixed
            << std::setprecision(4) << 100.0 * static_cast<double>(trainable) / static_cast<double>(total) << "\n";
  return 0;
}

int import_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge peft import-hf", "Bring a Hugging Face PEFT adapter directory (adapter_config.json +\n"
                                               "adapter_model.safetensors; LoRA, prompt or prefix tuning) for the\n"
                                               "firmware's backbone in as an m4forge adapter file.");
  o.add_options()("adapter", "HF PEFT adapter directory", cxxopts::value<std::string>())(
      "firmware", "firmware directory", cxxopts::value<std::string>())(
      "out", "m4forge adapter (.safetensors) to write", cxxopts::value<std::string>());
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  const fs::path dir = required(r, "adapter"), out = required(r, "out");
  Firmware fw = Firmware::open(required(r, "firmware"));
  M4_CHECK(fw.has("backbone"), ErrorCode::kMismatch, fw.dir().string(), ": no backbone to attach a PEFT adapter to");
  auto backbone = fw.load_backbone({});
  HfPeftAdapter hf = read_hf_peft(dir, *backbone);
  Adapter adapter({{"backbone", backbone}}, hf.config, fw.label());
  adapter.load_tensors(hf.tensors, dir.string());  // fail-closed against this firmware's shapes
  adapter.save(out);
  std::cout << "wrote " << out.string() << ": " << hf.config.trainable.at("backbone") << " adapter, "
            << adapter.trainable_count() << " parameters, for " << fw.label() << "\n";
  return 0;
}

int export_cmd(int argc, char** argv) {
  cxxopts::Options o("m4forge peft export-hf", "Write an m4forge backbone adapter as a Hugging Face PEFT directory.");
  o.add_options()("adapter", "m4forge adapter (.safetensors)", cxxopts::value<std::string>())(
      "firmware", "firmware directory", cxxopts::value<std::string>())(
      "out", "directory to write (adapter_config.json, adapter_model.safetensors)", cxxopts::value<std::string>());
  add_common_options(o);
  cxxopts::ParseResult r;
  if (!parse(o, argc, argv, &r)) return 0;
  apply_common_options(r);
  const fs::path file = required(r, "adapter"), out = required(r, "out");
  Firmware fw = Firmware::open(required(r, "firmware"));
  M4_CHECK(!fs::exists(out) || fs::is_empty(out), ErrorCode::kInvalidArgument, out.string(), " exists and is not empty");
  auto backbone = fw.load_backbone({});
  auto adapter = Adapter::open_file(file, {{"backbone", backbone}}, fw.label());
  write_hf_peft(out, *adapter, *backbone);
  std::cout << "wrote " << out.string() << " (HF PEFT, " << adapter->config().trainable.at("backbone") << ")\n";
  return 0;
}

}  // namespace

int run_peft(int argc, char** argv) {
  const std::map<std::string, int (*)(int, char**)> verbs = {
      {"plan", plan_cmd}, {"import-hf", import_cmd}, {"export-hf", export_cmd}};
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << "usage: m4forge peft <plan|import-hf|export-hf> [options]\n";
    return argc < 2 ? 2 : 0;
  }
  const auto it = verbs.find(argv[1]);
  M4_CHECK(it != verbs.end(), ErrorCode::kInvalidArgument, "unknown peft command '", argv[1],
           "' (known: plan, import-hf, export-hf)");
  return it->second(argc - 1, argv + 1);
}

}  // namespace m4::cli
