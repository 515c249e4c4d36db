// peft_bench: one LoRA training step on the backbone (forward + backward +
// AdamW on the LoRA tensors) against the same forward/backward with the LoRA
// merged into the frozen weights, and the memory the trainable state takes.
// Default shape: issue 6's comparison config (hidden 512, 8 layers, 8 heads,
// intermediate 1376, vocab 32000, seq 256, batch 4, r 8 on q,v). See bench/README.md.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/adamw.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/bench_llama.h"
#include "bench/lora_step_args.h"
#include "bench/timing.h"
#include "core/cpu_runtime.h"
#include "core/safetensors.h"
#include "firmware/llama.h"
#include "firmware/weight_set.h"
#include "peft/adapter.h"

namespace fs = std::filesystem;

namespace {

using Args = m4::bench::LoraStepArgs;

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    if (m4::bench::read_lora_step_flag(a, argc, argv, i)) continue;
    const std::string s = argv[i];
    std::fprintf(stderr, "usage: %s %s\n", argv[0], m4::bench::kLoraStepUsage);
    std::exit(s == "-h" || s == "--help" ? 0 : 2);
  }
  return a;
}

using m4::bench::time_median;

// HF's shifted causal-LM loss over every token, computed as the trainer does
// (task/task_model.cpp): the LM head only on the positions that predict a
// token, so no (B, T, vocab) logits are sliced and copied.
at::Tensor shifted_ce(m4::LlamaImpl& llama, const m4::LlamaOutput& out, const at::Tensor& ids) {
  const at::Tensor& h = out.hidden_states.back();
  const int64_t T = h.size(1);
  return at::cross_entropy_loss(llama.logits_of(h.narrow(1, 0, T - 1).reshape({-1, h.size(2)})),
                                ids.narrow(1, 1, T - 1).reshape({-1}));
}
const m4::LlamaForwardOptions kHiddenOnly{/*logits=*/false, /*hidden_states=*/true};

}  // namespace

int main(int argc, char** argv) {
  m4::restart_if_blas_misdetected_cpu(argv);
  const Args a = parse_args(argc, argv);
  auto rt = m4::configure_cpu_runtime(a.threads);
  const m4::LlamaConfig c = m4::bench::bench_llama_config(a.hidden, a.intermediate, a.layers, a.heads, a.vocab);
  const fs::path file = fs::temp_directory_path() / ("m4_peft_bench_" + std::to_string(::getpid()) + ".safetensors");
  m4::write_safetensors(file, m4::bench::bench_llama_weights(c));
  auto llama = std::make_shared<m4::LlamaImpl>(c, m4::WeightSet::open({file}), file.string());
  fs::remove(file);  // the mapping keeps the data
  const auto cfg = m4::PeftConfig::from_json(
      {{"trainable", {{"backbone", "lora"}}},
       {"peft", {{"lora", {{"r", a.r}, {"alpha", 2 * a.r}, {"targets", {"backbone.layers.*.self_attn.{q,v}_proj"}}}}}}},
      "bench");
  m4::Adapter adapter({{"backbone", llama}}, cfg, "bench backbone");
  {
    at::NoGradGuard ng;  // B = 0 would make the LoRA branch's gradient trivial
    for (auto& p : adapter.parameters()) p.tensor.normal_(0, 0.01);
  }
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const at::Tensor ids = at::randint(3, a.vocab, {a.batch, a.seq}, gen, at::kLong);
  const double tokens = static_cast<double>(a.batch * a.seq);

  torch::optim::AdamW opt(adapter.trainable_tensors(), torch::optim::AdamWOptions(1e-4));
  adapter.train();
  const double lora_step = time_median(a.iters, [&] {
    opt.zero_grad();
    shifted_ce(*llama, llama->forward(ids, {}, {}, nullptr, kHiddenOnly), ids).backward();
    opt.step();
  });
  // The same forward/backward with the LoRA merged: gradients flow back to the
  // input embeddings so that every layer's backward still runs.
  adapter.merge();
  const double merged_step = time_median(a.iters, [&] {
    at::Tensor emb = llama->forward_embeds_of(ids).detach().requires_grad_(true);
    shifted_ce(*llama, llama->forward_embeds(emb, {}, {}, nullptr, kHiddenOnly), ids).backward();
  });
  adapter.unmerge();
  at::NoGradGuard ng;
  const double fwd_unmerged = time_median(a.iters, [&] { llama->forward(ids); });
  adapter.merge();
  const double fwd_merged = time_median(a.iters, [&] { llama->forward(ids); });
  adapter.unmerge();

  int64_t params = adapter.trainable_count(), state_bytes = 0, grad_bytes = 0;
  for (auto& t : adapter.trainable_tensors()) {
    state_bytes += t.nbytes();
    if (t.grad().defined()) grad_bytes += t.grad().nbytes();
  }
  int64_t opt_bytes = 0;
  for (const auto& [key, st] : opt.state()) {
    auto& s = static_cast<torch::optim::AdamWParamState&>(*st);
    opt_bytes += s.exp_avg().nbytes() + s.exp_avg_sq().nbytes();
  }
  int64_t frozen = 0;
  for (const auto& p : llama->parameters()) frozen += p.numel();

  std::printf("peft_bench: backbone hidden %lld, %lld layers, %lld heads, intermediate %lld, vocab %lld; batch %lld x seq %lld; "
              "LoRA r %lld on q,v; %d threads (%s)\n",
              (long long)a.hidden, (long long)a.layers, (long long)a.heads, (long long)a.intermediate, (long long)a.vocab,
              (long long)a.batch, (long long)a.seq, (long long)a.r, a.threads, rt.blas.c_str());
  std::printf("  LoRA train step (fwd+bwd+AdamW)   %8.3f s  %8.1f tokens/s\n", lora_step, tokens / lora_step);
  std::printf("  merged fwd+bwd (no LoRA branch)   %8.3f s  %8.1f tokens/s  (LoRA step / merged: %.3fx)\n", merged_step,
              tokens / merged_step, lora_step / merged_step);
  std::printf("  forward, LoRA unmerged            %8.3f s  %8.1f tokens/s\n", fwd_unmerged, tokens / fwd_unmerged);
  std::printf("  forward, LoRA merged              %8.3f s  %8.1f tokens/s\n", fwd_merged, tokens / fwd_merged);
  std::printf("  trainable state: %lld parameters (%.4f%% of %lld frozen); weights %.2f MiB + grads %.2f MiB + AdamW moments %.2f MiB = %.2f MiB\n",
              (long long)params, 100.0 * params / frozen, (long long)frozen, state_bytes / 1048576.0, grad_bytes / 1048576.0,
              opt_bytes / 1048576.0, (state_bytes + grad_bytes + opt_bytes) / 1048576.0);
  return 0;
}
