#!/usr/bin/env bash
# The main job on the embedded demo firmware: set up, build, write the demo
# firmware, inspect and verify it, run a forward pass and generate a few tokens,
# then build Fashion-MNIST from its Debian package and train a LoRA adapter on
# it (Path-2: img_enc vs txt_enc label texts), evaluated against zero-shot.
# The demo firmware is randomly initialised (seeded): its text is gibberish and
# its zero-shot accuracy is chance; the adapter's gain is what training buys.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
bash scripts/build.sh m4forge
M4=./build/cli/m4forge
OUT=demo
rm -rf "$OUT" && mkdir -p "$OUT"

$M4 firmware init-demo --out "$OUT/fw" --seed 0
$M4 firmware inspect "$OUT/fw" --verify
$M4 firmware tokenize --firmware "$OUT/fw" --text "This License applies to any program" \
  --text "free software" --out "$OUT/input.safetensors"
$M4 firmware forward --firmware "$OUT/fw" --module backbone \
  --input "$OUT/input.safetensors" --out "$OUT/output.safetensors"
$M4 firmware generate --firmware "$OUT/fw" --prompt "The GNU General Public License" \
  --max-new-tokens 8
# Path-3 of M4 (§3.3): the backbone alone, loading only that module. Paths 1
# and 2 take encoder inputs as safetensors (see README: `m4forge path`).
$M4 path --firmware "$OUT/fw" --path 3 --prompt "The GNU General Public License" --max-new-tokens 8

# Real data (dataset-fashion-mnist) -> HDF5 -> a trained adapter -> its accuracy.
M4FORGE="$M4" bash scripts/data/fashion_mnist.sh datasets/fashion_mnist
$M4 peft plan configs/tasks/fashion_mnist.yaml --firmware "$OUT/fw"
$M4 train configs/tasks/fashion_mnist.yaml train.steps=150 train.eval_every=50 \
  --firmware "$OUT/fw" --run-dir "$OUT/runs/fashion_mnist"
$M4 eval configs/tasks/fashion_mnist.yaml --firmware "$OUT/fw" \
  --adapter "$OUT/runs/fashion_mnist/adapter.safetensors" --limit 2000
echo "demo: ok (outputs in $OUT/)"
