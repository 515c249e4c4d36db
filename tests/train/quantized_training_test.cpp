// Training over a quantized firmware (QLoRA-style): LoRA through the trainer
// on the INT8 and 4-bit HF fixture follows, step for step, the same training
// on a plain f32 firmware holding the dequantized weights; a stopped run
// resumes bit-identically; HF PEFT adapters import and export over it.
#include <gtest/gtest.h>

#include <fstream>

#include "cluster/communicator.h"
#include "core/atomic_file.h"
#include "core/safetensors.h"
#include "data/dataset_writer.h"
#include "firmware/firmware.h"
#include "firmware/llama.h"
#include "firmware/module_arch.h"
#include "firmware/module_loader.h"
#include "firmware/quantize.h"
#include "firmware/quantized_weight.h"
#include "firmware/weight_set.h"
#include "peft/adapter.h"
#include "peft/hf_peft.h"
#include "tests/support/test_util.h"
#include "tests/train/train_test_util.h"
#include "train/trainer.h"

namespace m4 {
namespace {
namespace fs = std::filesystem;

class QuantizedTraining : public ::testing::Test {
 protected:
  void SetUp() override {
    test::import_fixture_llama(tmp_ / "fw");
    test::write_peft_train_rows(tmp_ / "train.h5");
    fs::create_directories(tmp_ / "repo" / "configs" / "tasks");
    fs::create_directories(tmp_ / "repo" / "prompts");
    fs::create_directory_symlink(test::repo_dir() / "prompts" / "templates", tmp_ / "repo" / "prompts" / "templates");
    cfg_ = tmp_ / "repo" / "configs" / "tasks" / "q_lora.yaml";
    std::ofstream(cfg_) << "# m4forge train configs/tasks/q_lora.yaml\n"
                           "task: q_lora\ndescription: LoRA over a quantized backbone\npath: 3\nmodules: [backbone]\n"
                           "trainable: {backbone: lora}\n"
                           "peft: {lora: {r: 4, alpha: 8, dropout: 0.0, targets: [\"backbone.layers.*.self_attn.{q,v}_proj\", "
                           "\"backbone.layers.*.mlp.down_proj\"]}}\n"
                           "prompt: translation_de_en\n"
                           "data: {train: " << (tmp_ / "train.h5").string() << ", test: " << (tmp_ / "absent.h5").string() << "}\n"
                           "metric: bleu\n"
                           "optim: {lr: 1.0e-2, schedule: constant, warmup_steps: 0, clip_grad_norm: 1.0}\n"
                           "train: {batch_size: 4, grad_accum: 1, steps: 8, eval_every: 0, seed: 3}\n";
  }

  fs::path quantize(int bits) {
    QuantizeOptions o;
    o.source = tmp_ / "fw";
    o.out = tmp_ / ("q" + std::to_string(bits));
    o.bits = bits;
    quantize_firmware(o);
    return o.out;
  }

  // A plain f32 firmware whose backbone holds `q`'s weights dequantized.
  fs::path dequantized_twin(const fs::path& q) {
    const Firmware fq = Firmware::open(q);
    const fs::path out = q.string() + "-dense";
    create_firmware(out, "dense-twin", "1.0.0", nlohmann::json::object(), [&](const fs::path& staging) {
      const WeightSet ws = fq.weights("backbone");
      NamedTensors t;
      for (const auto& n : ws.names()) {
        if (!quantized_weight_of_scale(ws, n).empty()) continue;
        if (is_quantized_weight(ws, n)) {
          t.emplace_back(n, QuantizedWeight{ws.tensor(n), ws.tensor(quant_scale_name(n))}.dequantize(at::kFloat));
        } else {
          t.emplace_back(n, ws.tensor(n));
        }
      }
      fs::create_directories(staging / "backbone");
      write_safetensors(staging / "backbone" / "model.safetensors", t, {{"format", "pt"}});
      FirmwareModule m = fq.module("backbone");
      m.weights = {"backbone/model.safetensors"};
      m.assets.clear();
      m.file_sizes.clear();
      return std::map<std::string, FirmwareModule>{{"backbone", m}};
    });
    return out;
  }

  TrainSummary train(const fs::path& fw_dir, const fs::path& run_dir, bool resume = false, int64_t stop_after = 0) {
    auto comm = make_communicator();
    TrainOptions o;
    o.run_dir = run_dir;
    o.repo_root = tmp_ / "repo";
    o.resume = resume;
    o.stop_after = stop_after;
    o.checkpoint_every = 2;
    return train_task(Firmware::open(fw_dir), load_task_config(cfg_, {}, tmp_ / "repo"), o, *comm);
  }

  static std::vector<double> losses(const fs::path& run_dir) {
    std::vector<double> out;
    std::ifstream in(run_dir / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      const auto j = nlohmann::json::parse(line);
      if (j.contains("loss")) out.push_back(j["loss"].get<double>());
    }
    return out;
  }

  test::TempDir tmp_;
  fs::path cfg_;
};

TEST_F(QuantizedTraining, LoraStepsEqualTrainingOnTheDequantizedWeights) {
  for (int bits : {8, 4}) {
    const fs::path q = quantize(bits);
    const fs::path dense = dequantized_twin(q);
    const std::string tag = "q" + std::to_string(bits);
    ASSERT_EQ(train(q, tmp_ / (tag + "-run")).steps, 8);
    ASSERT_EQ(train(dense, tmp_ / (tag + "-dense-run")).steps, 8);
    const auto a = losses(tmp_ / (tag + "-run")), b = losses(tmp_ / (tag + "-dense-run"));
    ASSERT_EQ(a.size(), 8u);
    ASSERT_EQ(b.size(), 8u);
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
    std::cout << "[quantize] " << bits << "-bit LoRA: 8 losses vs dense dequantized twin max |diff| = " << worst
              << " (first " << a.front() << ", last " << a.back() << ")\n";
    EXPECT_LT(worst, 1e-5) << bits;
    EXPECT_LT(a.back(), a.front()) << bits;  // it trained
    SafetensorsFile x = SafetensorsFile::open(tmp_ / (tag + "-run") / "adapter.safetensors");
    SafetensorsFile y = SafetensorsFile::open(tmp_ / (tag + "-dense-run") / "adapter.safetensors");
    ASSERT_EQ(x.tensors().size(), 2u * 3u * 2u);  // 2 layers x 3 sites x (A, B)
    double d = 0;
    for (const auto& info : x.tensors()) d = std::max(d, test::max_abs_diff(x.tensor(info), y.tensor(info.name)));
    EXPECT_LT(d, 1e-5) << bits;
    // The run is bound to the quantized firmware it trained on.
    const auto run = nlohmann::json::parse(read_text_file(tmp_ / (tag + "-run") / "run.json"));
    EXPECT_EQ(run["firmware"]["id"], Firmware::open(q).id());
  }
}

TEST_F(QuantizedTraining, AStoppedRunResumesBitIdentically) {
  const fs::path q = quantize(4);
  ASSERT_EQ(train(q, tmp_ / "full").steps, 8);
  TrainSummary part = train(q, tmp_ / "split", false, /*stop_after=*/3);
  EXPECT_TRUE(part.preempted);
  ASSERT_EQ(train(q, tmp_ / "split", true).steps, 8);
  SafetensorsFile a = SafetensorsFile::open(tmp_ / "full" / "adapter.safetensors");
  SafetensorsFile b = SafetensorsFile::open(tmp_ / "split" / "adapter.safetensors");
  ASSERT_GT(a.tensors().size(), 0u);
  for (const auto& info : a.tensors()) EXPECT_EQ(a.bytes(info), b.bytes(*b.find(info.name))) << info.name;
  // Resuming on the source firmware instead is refused: the run is bound to the quantized one.
  test::expect_error([&] { train(tmp_ / "fw", tmp_ / "split", true); }, {"firmware"});
}

TEST_F(QuantizedTraining, HfPeftAdaptersImportAndExportOverAQuantizedBase) {
  const fs::path q = quantize(8);
  const Firmware fw = Firmware::open(q);
  auto llama = std::dynamic_pointer_cast<LlamaImpl>(load_firmware_module(fw, "backbone"));
  ASSERT_TRUE(llama);
  const fs::path dir = test::fixtures() / "lora" / "adapter";
  HfPeftAdapter hf = read_hf_peft(dir, *llama);
  Adapter a({{"backbone", llama}}, hf.config, fw.label());
  a.load_tensors(hf.tensors, dir.string());
  write_hf_peft(tmp_ / "out", a, *llama);
  SafetensorsFile orig = SafetensorsFile::open(dir / "adapter_model.safetensors");
  SafetensorsFile back = SafetensorsFile::open(tmp_ / "out" / "adapter_model.safetensors");
  ASSERT_EQ(orig.tensors().size(), back.tensors().size());
  for (const auto& info : orig.tensors()) EXPECT_TRUE(at::equal(orig.tensor(info), back.tensor(info.name))) << info.name;
  // The PEFT adapter on the INT8 base gives logits near PEFT's on the f32 base.
  SafetensorsFile ref = SafetensorsFile::open(test::fixtures() / "lora" / "train_data.safetensors");
  at::NoGradGuard ng;
  const at::Tensor got = llama->forward(ref.tensor("input_ids")).logits, want = ref.tensor("logits_after");
  const double rel = test::max_abs_diff(got, want) / want.abs().max().item<double>();
  std::cout << "[quantize] PEFT LoRA on the INT8 fixture vs PEFT on f32: max |diff| / max |logit| = " << rel << "\n";
  EXPECT_GT(rel, 0.0);
  EXPECT_LT(rel, 0.02);
}

}  // namespace
}  // namespace m4
