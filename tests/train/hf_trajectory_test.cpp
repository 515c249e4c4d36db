// HF PEFT's 20-step LoRA trajectory (tests/fixtures/hf-reference/lora)
// reproduced through the trainer itself: the fixture llama imported as a
// firmware, pre-tokenized input_ids as an HDF5 dataset, the adapter initialised
// from lora_init (peft.init_from), constant LR, no clipping.
#include <gtest/gtest.h>

#include <fstream>

#include "cluster/communicator.h"
#include "core/atomic_file.h"
#include "core/safetensors.h"
#include "data/dataset_writer.h"
#include "firmware/firmware.h"
#include "firmware/module_loader.h"
#include "peft/adapter.h"
#include "peft/hf_peft.h"
#include "tests/support/test_util.h"
#include "tests/train/train_test_util.h"
#include "train/trainer.h"

namespace m4 {
namespace fs = std::filesystem;

// The trajectory on `device` (train.device); the max |diff| of the 20 losses
// and of the final adapter against PEFT's, and a failure when a loss is missing.
TrajectoryDiff peft_trajectory_diff(const std::string& device) {
  test::TempDir tmp;
  const fs::path lora = test::fixtures() / "lora";
  test::import_fixture_llama(tmp / "fw");
  Firmware fw = Firmware::open(tmp / "fw");
  SafetensorsFile td = SafetensorsFile::open(lora / "train_data.safetensors");
  test::write_peft_train_rows(tmp / "train.h5");

  const std::string peft_yaml =
      "{lora: {r: 8, alpha: 16, dropout: 0.0, targets: [\"backbone.layers.*.self_attn.{q,v}_proj\"]}, init_from: " +
      (tmp / "init.safetensors").string() + "}";
  {
    auto backbone = load_firmware_module(fw, "backbone");
    PeftConfig pc = PeftConfig::from_json(
        nlohmann::json::parse(R"({"trainable": {"backbone": "lora"}, "peft": {"lora": {"r": 8, "alpha": 16}}})"), "init");
    Adapter a({{"backbone", backbone}}, pc, fw.label());
    SafetensorsFile init = SafetensorsFile::open(lora / "lora_init.safetensors");
    std::map<std::string, at::Tensor> t;
    for (const auto& info : init.tensors()) t[lora_name_from_hf(info.name)] = init.tensor(info);
    a.load_tensors(t, "lora_init");
    a.save(tmp / "init.safetensors");
  }
  fs::create_directories(tmp / "repo" / "configs" / "tasks");
  fs::create_directories(tmp / "repo" / "prompts");
  fs::create_directory_symlink(test::repo_dir() / "prompts" / "templates", tmp / "repo" / "prompts" / "templates");
  const fs::path cfg = tmp / "repo" / "configs" / "tasks" / "hf_lora.yaml";
  std::ofstream(cfg) << "# m4forge train configs/tasks/hf_lora.yaml\n"
                        "task: hf_lora\ndescription: peft fixture trajectory\npath: 3\nmodules: [backbone]\n"
                        "trainable: {backbone: lora}\npeft: " << peft_yaml << "\n"
                        "prompt: translation_de_en\n"
                        "data: {train: " << (tmp / "train.h5").string() << ", test: " << (tmp / "absent.h5").string() << "}\n"
                        "metric: bleu\n"
                        "optim: {lr: 1.0e-3, weight_decay: 0.01, betas: [0.9, 0.999], eps: 1.0e-8, schedule: constant, warmup_steps: 0, clip_grad_norm: 0}\n"
                        "train: {batch_size: 4, grad_accum: 1, steps: 20, eval_every: 0, seed: 0, device: " << device << "}\n";
  auto comm = make_communicator();
  TrainOptions o;
  o.run_dir = tmp / "run";
  o.repo_root = tmp / "repo";
  TrainSummary s = train_task(fw, load_task_config(cfg, {}, tmp / "repo"), o, *comm);
  EXPECT_EQ(s.steps, 20);
  TrajectoryDiff out;
  out.device = nlohmann::json::parse(read_text_file(tmp / "run" / "run.json"))["training"]["device"].get<std::string>();

  // metrics.jsonl's loss at step k is the loss before update k, as PEFT's `losses`.
  const at::Tensor ref = td.tensor("losses");
  std::ifstream in(tmp / "run" / "metrics.jsonl");
  double worst = 0;
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (!j.contains("loss")) continue;
    worst = std::max(worst, std::abs(j["loss"].get<double>() - ref[j["step"].get<int64_t>() - 1].item<double>()));
    ++n;
  }
  EXPECT_EQ(n, 20);
  out.losses = n == 20 ? worst : 1e9;
  SafetensorsFile fin = SafetensorsFile::open(lora / "lora_final.safetensors");
  SafetensorsFile got = SafetensorsFile::open(tmp / "run" / "adapter.safetensors");
  double d = 0;
  for (const auto& info : fin.tensors()) d = std::max(d, test::max_abs_diff(got.tensor(lora_name_from_hf(info.name)), fin.tensor(info)));
  out.adapter = d;
  return out;
}

namespace {

TEST(HfTrajectory, TwentyAdamWStepsThroughTheTrainerMatchPeft) {
  const TrajectoryDiff d = peft_trajectory_diff("cpu");
  EXPECT_EQ(d.device, "cpu");
  std::cout << "[parity] m4forge train vs peft 20-step losses max |diff| = " << d.losses << "\n";
  EXPECT_LT(d.losses, 1e-5);
  std::cout << "[parity] m4forge train vs peft lora_final max |diff| = " << d.adapter << "\n";
  EXPECT_LT(d.adapter, 1e-4);
}

}  // namespace
}  // namespace m4
