#!/usr/bin/env bash
# The README's accuracy table: for each real-data task, an adapter trained on
# the demo firmware vs zero-shot (no adapter) vs a small task-specific model
# trained from scratch on the same data (`m4forge eval --from-scratch`).
#   bash bench/accuracy_figures.sh [TASK ...]   (default: the four below)
#   BITS=8 bash bench/accuracy_figures.sh TASK  (the same on the demo firmware quantized
#                                                to 8 or 4 bits: `firmware quantize`)
# Needs build/cli/m4forge and the datasets (scripts/data/<task>.sh). The demo
# firmware is randomly initialised: these figures show that training works on
# real data, not what M4's pretrained model would reach.
set -euo pipefail
cd "$(dirname "$0")/.."
M4=build/cli/m4forge
WORK=${WORK:-/tmp/m4-accuracy}
mkdir -p "$WORK"
FW=$WORK/fw
[ -f "$FW/firmware.json" ] || "$M4" firmware init-demo --out "$FW" --seed 0 --log-level warn >/dev/null
RUNS=$WORK
if [ -n "${BITS:-}" ]; then
  [ -f "$WORK/fw-int$BITS/firmware.json" ] ||
    "$M4" firmware quantize "$FW" --bits "$BITS" --out "$WORK/fw-int$BITS" --log-level warn >/dev/null
  FW=$WORK/fw-int$BITS
  RUNS=$WORK/int$BITS
  mkdir -p "$RUNS"
fi

# task | training overrides | eval options (test samples)
declare -A TRAIN EVAL
TRAIN[fashion_mnist]="train.steps=1500 optim.lr=5.0e-3 train.eval_every=0"
EVAL[fashion_mnist]="--limit 0"
TRAIN[wordnet_topics]="train.steps=600 optim.lr=3.0e-3 train.eval_every=0"
EVAL[wordnet_topics]="--limit 0"
TRAIN[keyword_spotting]="train.steps=400 optim.lr=3.0e-3 train.eval_every=0"
EVAL[keyword_spotting]="--limit 0"
TRAIN[translation_de_en]="train.steps=600 optim.lr=3.0e-3 train.eval_every=0"
EVAL[translation_de_en]="--limit 300"
TASKS=("$@")
[ ${#TASKS[@]} -gt 0 ] || TASKS=(fashion_mnist wordnet_topics keyword_spotting translation_de_en)

echo "| task | metric | test samples | adapter | zero-shot | from scratch | adapter steps | train time |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for t in "${TASKS[@]}"; do
  run=$RUNS/$t
  rm -rf "$run"
  start=$(date +%s)
  # shellcheck disable=SC2086
  "$M4" train "configs/tasks/$t.yaml" ${TRAIN[$t]} --firmware "$FW" --run-dir "$run" --final-eval-limit 16 \
    --log-level warn >"$WORK/$t.train.log" 2>&1 || { echo "train $t failed: see $WORK/$t.train.log" >&2; exit 1; }
  secs=$(($(date +%s) - start))
  steps=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['training']['steps'])" "$run/run.json")
  # shellcheck disable=SC2086
  "$M4" eval "configs/tasks/$t.yaml" ${TRAIN[$t]} --firmware "$FW" --adapter "$run/adapter.safetensors" \
    --from-scratch ${EVAL[$t]} --json --log-level warn >"$WORK/$t.eval.json" 2>"$WORK/$t.eval.log" ||
    { echo "eval $t failed: see $WORK/$t.eval.log" >&2; exit 1; }
  python3 - "$WORK/$t.eval.json" "$t" "$steps" "$secs" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
task, steps, secs = sys.argv[2], sys.argv[3], sys.argv[4]
a, z, s = r["adapter"], r["zero_shot"], r["from_scratch"]
f = lambda x: f"{100 * x['value']:.1f}%" if x["metric"] in ("accuracy", "macro_f1") or x["metric"].startswith("recall") else f"{x['value']:.2f}"
print(f"| {task} | {a['metric']} | {a['samples']} | {f(a)} | {f(z)} | {f(s)} ({s['steps']} steps) | {steps} | {secs} s |")
EOF
done
