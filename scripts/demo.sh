#!/usr/bin/env bash
# The main job on the embedded demo firmware: set up, build, write the demo
# firmware, inspect and verify it, run a forward pass and generate a few tokens,
# then build Fashion-MNIST from its Debian package and train a LoRA adapter on
# it (Path-2: img_enc vs txt_enc label texts), evaluated against zero-shot and
# a small CNN trained from scratch on the same data for as many steps.
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
# eval --run and export --run read the run's record (run.json) and its adapter
# alone: the config, template and labels it trained with. eval --run adds its
# figures to the run's report.html.
$M4 eval --run "$OUT/runs/fashion_mnist" --firmware "$OUT/fw" --limit 2000 --from-scratch

# Ship it: a signing key, a signed bundle bound to this firmware, verification
# (also with Debian's minisign), and a prediction on one real test image.
$M4 keygen --out "$OUT/demo-key"
$M4 export --run "$OUT/runs/fashion_mnist" --firmware "$OUT/fw" --key "$OUT/demo-key.key" \
  --out "$OUT/fashion_mnist.m4adapter"
$M4 verify "$OUT/fashion_mnist.m4adapter" --pubkey "$OUT/demo-key.pub" --firmware "$OUT/fw"
$M4 compat --firmware "$OUT/fw" "$OUT/fashion_mnist.m4adapter" --pubkey "$OUT/demo-key.pub"
mkdir -p "$OUT/bundle" && tar -xf "$OUT/fashion_mnist.m4adapter" -C "$OUT/bundle"
minisign -V -H -p "$OUT/demo-key.pub" -m "$OUT/bundle/manifest.json" -x "$OUT/bundle/manifest.json.minisig"
python3 - "$OUT/test0.png" <<'PY'
# The first Fashion-MNIST test image as a PNG (stdlib only).
import gzip, struct, sys, zlib
raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()[16:16 + 784]
rows = b"".join(b"\x00" + raw[r * 28:(r + 1) * 28] for r in range(28))
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)) + \
      chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
$M4 run --firmware "$OUT/fw" --bundle "$OUT/fashion_mnist.m4adapter" --pubkey "$OUT/demo-key.pub" \
  --input "$OUT/test0.png"
echo "demo: ok (outputs in $OUT/)"
echo "demo: report: $PWD/$OUT/runs/fashion_mnist/report.html"
