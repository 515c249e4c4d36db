// Shared by the trainer tests: a demo firmware, a tiny Path-2 image dataset
// (Fashion-MNIST's 10 label names, random 28x28 images) and a task config
// laid out like the repository's (configs/tasks/ beside prompts/templates).
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "data/dataset_writer.h"
#include "firmware/firmware.h"
#include "firmware/demo.h"
#include "tests/support/test_util.h"
#include "cluster/communicator.h"
#include "task/task_config.h"
#include "train/trainer.h"

namespace m4::test {

struct TinyTask {
  std::filesystem::path root;    // repo-like: configs/tasks, prompts/templates (linked), data
  std::filesystem::path config;  // root/configs/tasks/tiny_images.yaml
  std::filesystem::path firmware;
};

inline void write_tiny_images(const std::filesystem::path& file, int64_t n, uint64_t seed) {
  data::DatasetContents c;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  c.tensors["image"] = at::randint(0, 256, {n, 1, 28, 28}, gen, at::kLong).to(at::kByte);
  c.tensors["label"] = at::arange(n, at::kLong).remainder(10);
  c.attrs.label_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  c.attrs.source = "m4forge test: random images";
  c.attrs.license = "CC0";
  data::write_dataset(file, c);
}

// `extra` is appended to the YAML (e.g. overrides of train.*).
inline TinyTask make_tiny_task(const std::filesystem::path& root, const std::string& train_line =
                                   "train: {batch_size: 4, grad_accum: 1, steps: 6, eval_every: 0, seed: 0}") {
  TinyTask t;
  t.root = root;
  std::filesystem::create_directories(root / "configs" / "tasks");
  std::filesystem::create_directories(root / "prompts");
  std::filesystem::create_directory_symlink(repo_dir() / "prompts" / "templates", root / "prompts" / "templates");
  write_tiny_images(root / "train.h5", 16, 1);
  write_tiny_images(root / "test.h5", 10, 2);
  t.config = root / "configs" / "tasks" / "tiny_images.yaml";
  std::ofstream(t.config) << "# m4forge train configs/tasks/tiny_images.yaml\n"
                             "task: tiny_images\n"
                             "description: test task\n"
                             "path: 2\n"
                             "modules: [img_enc, txt_enc]\n"
                             "trainable: {img_enc: lora, txt_enc: frozen}\n"
                             "peft: {lora: {r: 2, alpha: 4, dropout: 0.1, targets: [\"img_enc.layers.*.self_attn.{q,v}_proj\"]}}\n"
                             "prompt: fashion_mnist\n"
                             "data: {train: " << (root / "train.h5").string() << ", test: " << (root / "test.h5").string() << "}\n"
                             "metric: accuracy\n"
                             "optim: {lr: 1.0e-2, schedule: cosine, warmup_steps: 2, clip_grad_norm: 1.0}\n"
                          << train_line << "\n";
  t.firmware = root / "fw";
  DemoOptions o;
  o.out = t.firmware;
  init_demo(o);
  return t;
}

// `task` trained into `run_dir` (one process, a checkpoint every 2 steps),
// with `overrides` (key=value) on its config.
inline TrainSummary train_tiny(const TinyTask& task, const std::filesystem::path& run_dir,
                               const std::vector<std::string>& overrides, bool resume, int64_t stop_after = 0) {
  auto comm = make_communicator();
  TaskConfig cfg = load_task_config(task.config, overrides, task.root);
  TrainOptions o;
  o.run_dir = run_dir;
  o.repo_root = task.root;
  o.resume = resume;
  o.stop_after = stop_after;
  o.checkpoint_every = 2;
  Firmware fw = Firmware::open(task.firmware);
  return train_task(fw, cfg, o, *comm);
}

// The HF fixture llama (tests/fixtures/hf-reference/llama) imported as a firmware at `out`.
inline void import_fixture_llama(const std::filesystem::path& out) {
  ImportHfOptions io;
  io.out = out;
  io.name = "fixture";
  io.version = "1.0.0";
  io.backbone = fixtures() / "llama";
  import_hf(io);
}

// PEFT's 4 training rows (lora/train_data.safetensors input_ids, all attended) as an HDF5 split.
inline void write_peft_train_rows(const std::filesystem::path& file) {
  SafetensorsFile td = SafetensorsFile::open(fixtures() / "lora" / "train_data.safetensors");
  data::DatasetContents c;
  c.tensors["input_ids"] = td.tensor("input_ids").clone();
  c.tensors["attention_mask"] = at::ones_like(c.tensors["input_ids"]);
  c.attrs.source = "hf-reference lora/train_data.safetensors";
  c.attrs.license = "test fixture";
  data::write_dataset(file, c);
}

}  // namespace m4::test

namespace m4 {
// HF PEFT's 20-step LoRA trajectory through the trainer on a device
// (hf_trajectory_test.cpp): max |diff| of the losses and of the final adapter.
struct TrajectoryDiff {
  double losses = 0, adapter = 0;
  std::string device;  // as run.json records it
};
TrajectoryDiff peft_trajectory_diff(const std::string& device);
}  // namespace m4
