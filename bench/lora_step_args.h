// The command line of the LoRA-step benches (peft_bench, gemm_ceiling_bench):
// the LLaMA shape, batch, LoRA rank, threads and timed iterations. Defaults:
// the comparison config of issues 6 and 18 (hidden 512, 8 layers, 8 heads,
// intermediate 1376, vocab 32000, seq 256, batch 4, r 8).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace m4::bench {

struct LoraStepArgs {
  int threads = 2, iters = 5;
  int64_t hidden = 512, intermediate = 1376, layers = 8, heads = 8, vocab = 32000, seq = 256, batch = 4, r = 8;
};

inline constexpr const char* kLoraStepUsage =
    "[--threads 2] [--iters 5] [--hidden 512] [--intermediate 1376] [--layers 8] [--heads 8]\n"
    "          [--vocab 32000] [--seq 256] [--batch 4] [--r 8]";

// Reads the flag at argv[i] (and its value, advancing i) into `a`; false when
// it is not one of these flags. A flag without its value exits with status 2.
inline bool read_lora_step_flag(LoraStepArgs& a, int argc, char** argv, int& i) {
  const std::string s = argv[i];
  auto num = [&]() -> int64_t {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n", s.c_str());
      std::exit(2);
    }
    return std::max<int64_t>(1, std::atoll(argv[++i]));
  };
  if (s == "--threads") a.threads = static_cast<int>(num());
  else if (s == "--iters") a.iters = static_cast<int>(num());
  else if (s == "--hidden") a.hidden = num();
  else if (s == "--intermediate") a.intermediate = num();
  else if (s == "--layers") a.layers = num();
  else if (s == "--heads") a.heads = num();
  else if (s == "--vocab") a.vocab = num();
  else if (s == "--seq") a.seq = num();
  else if (s == "--batch") a.batch = num();
  else if (s == "--r") a.r = num();
  else return false;
  return true;
}

}  // namespace m4::bench
