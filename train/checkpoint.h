// Training checkpoints: RUN_DIR/checkpoints/step-NNNNNNNN/ holds the adapter's
// trainable tensors, the optimizer moments, and state.json (step, data cursor,
// RNG state). Each is written into a temporary directory, fsynced and renamed;
// the pointer file `latest` is replaced last, so a write killed at any point
// leaves the previous checkpoint selected.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "data/loader.h"
#include "peft/adapter.h"
#include "train/adamw.h"

namespace m4 {

struct CheckpointState {
  int64_t step = 0;             // optimizer steps done
  data::LoaderState loader;     // where the data stream continues
  std::string rng_state_hex;    // the CPU generator at the checkpoint (recorded; the trainer reseeds per step)
  double last_loss = 0;
};

// Writes checkpoint `state.step` (rank 0 only). Returns its directory.
std::filesystem::path write_checkpoint(const std::filesystem::path& run_dir, const Adapter& adapter, AdamW& opt,
                                       const CheckpointState& state);

// The newest complete checkpoint: the one `latest` names if it is complete,
// else the highest complete step directory; nullopt if there is none.
std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& run_dir);

// Restores adapter tensors, optimizer moments and step; returns the state.
CheckpointState read_checkpoint(const std::filesystem::path& dir, Adapter& adapter, AdamW& opt);

// The CPU generator's state as hex (recorded in state.json).
std::string cpu_rng_state();

}  // namespace m4
