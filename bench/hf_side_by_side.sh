#!/usr/bin/env bash
# LoRA training throughput: Hugging Face transformers + PEFT against `m4forge train`, on the same
# checkpoint and token ids, on this machine, in alternating rounds (issue 18). Prints tokens/s,
# peak RSS, effective GFLOP/s against the GEMM ceiling measured in the same run
# (gemm_ceiling_bench), the ratios, and the CPU model with its AVX-512/AMX flags.
#
#   bash bench/hf_side_by_side.sh            # from a built checkout (bash scripts/build.sh)
#
# The HF side needs transformers 4.33 and peft 0.5 on HF_PYTHONPATH (default $HOME/hf-peer/site,
# where the peer's setup.sh puts them; any install of those versions works) and a Python with
# torch (default Debian's /usr/bin/python3 with python3-torch).
# Env: OUT (/tmp/m4forge-hf-sbs), ROUNDS (3), THREADS (every core), WARMUP (2), STEPS (10),
#      VARIANTS (all: hf_f32_t1 hf_f32_tN m4_f32 m4_f32_blas hf_bf16_t1 hf_bf16_tN m4_bf16).
# Shape (as the issue's table): LLaMA hidden 512, 8 layers, 8 heads, intermediate 1376, vocab
# 32000, untied head; batch 4 x seq 256; LoRA r 8, alpha 16 on q,v; AdamW lr 1e-4, wd 0.01.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
here="$root/bench"
out=$(realpath -m "${OUT:-/tmp/m4forge-hf-sbs}")
rounds=${ROUNDS:-3}
threads=${THREADS:-$(nproc)}
warmup=${WARMUP:-2}
steps=${STEPS:-10}
python=${PYTHON:-/usr/bin/python3}
hfpath=${HF_PYTHONPATH:-$HOME/hf-peer/site}
m4="$root/build/cli/m4forge"
ceiling="$root/build/bench/gemm_ceiling_bench"
py() { PYTHONPATH="$hfpath" "$python" "$here/hf_side_by_side.py" "$@"; }
die() { echo "hf_side_by_side.sh: $*" >&2; exit 1; }

[[ -x "$m4" && -x "$ceiling" ]] || die "build first: bash scripts/build.sh (no $m4 or $ceiling)"
PYTHONPATH="$hfpath" "$python" -c 'import sys; sys.modules.setdefault("sentencepiece", None); import torch, transformers, peft' \
  || die "$python cannot import torch, transformers and peft with PYTHONPATH=$hfpath (set HF_PYTHONPATH)"

mkdir -p "$out"
cpu=$(lscpu | sed -n 's/^Model name: *//p')
flags=$(grep -o -w -E 'avx512f|avx512_bf16|amx_bf16|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')
cpu="$cpu, $(nproc) cores, flags: ${flags:-no AVX-512/AMX}"
[[ "$flags" == *amx_bf16* ]] || echo "hf_side_by_side.sh: this CPU has no AMX-BF16: bf16 GEMMs run on AVX-512 at best"
echo "cpu: $cpu"

# 1. The checkpoint and ids (made by transformers), imported into m4forge.
if [[ ! -f "$out/fw/firmware.json" || ! -f "$out/ids.h5" || ! -f "$out/ids4.h5" ]]; then
  rm -rf "$out/hf" "$out/fw" "$out/ids.h5" "$out/ids4.h5"
  py make --out "$out"
  "$m4" firmware import-hf --backbone "$out/hf" --name hf-sbs --version 1.0.0 --out "$out/fw"
  "$m4" data import --format input-ids --input "$out/ids.safetensors" --out "$out/ids.h5" \
    --source "bench/hf_side_by_side.py make --seed 0" --license "random token ids"
  "$m4" data import --format input-ids --input "$out/ids4.safetensors" --out "$out/ids4.h5" \
    --source "bench/hf_side_by_side.py make --seed 0 (rows 0-3)" --license "random token ids"
fi
# The task config: Path-3 causal LM on pre-tokenized ids, in a small tree whose prompts/ is ours.
mkdir -p "$out/repo/configs/tasks" "$out/repo/prompts"
ln -sfn "$root/prompts/templates" "$out/repo/prompts/templates"
cfg="$out/repo/configs/tasks/hf_sbs.yaml"
tokens=$((4 * 256))  # per step: the config's batch x the ids' sequence length (hf_side_by_side.py make)
cat > "$cfg" <<YAML
task: hf_sbs
description: "LoRA throughput against HF PEFT: causal-LM loss on every token of pre-tokenized ids"
path: 3
modules: [backbone]
trainable: {backbone: lora, head: frozen}
peft:
  lora: {r: 8, alpha: 16, dropout: 0.0, rslora: false, targets: ["backbone.layers.*.self_attn.{q,v}_proj"]}
prompt: translation_de_en
data: {train: $out/ids.h5, test: $out/no_test_split.h5, user_supplied: false}
metric: bleu
optim: {lr: 1.0e-4, weight_decay: 0.01, betas: [0.9, 0.999], eps: 1.0e-8, schedule: constant, warmup_steps: 0, clip_grad_norm: 0}
train: {batch_size: 4, grad_accum: 1, steps: $((warmup + steps)), eval_every: 0, seed: 0, precision: f32}
YAML

# 2. The same model: the first step's loss on the same 4 rows, HF and m4forge.
: > "$out/sanity.txt"
for prec in f32 bf16; do
  rm -rf "$out/sanity_$prec"
  "$m4" train "$cfg" train.steps=1 "train.precision=$prec" data.train="$out/ids4.h5" --firmware "$out/fw" \
    --run-dir "$out/sanity_$prec" --threads "$threads" > "$out/sanity_$prec.log" 2>&1 || die "sanity $prec: $out/sanity_$prec.log"
  py train --hf "$out/hf" --ids "$out/ids4.safetensors" --precision "$prec" --threads "$threads" --warmup 0 --steps 1 \
    --out "$out/sanity_hf_$prec.json" > /dev/null
  "$python" - "$out" "$prec" >> "$out/sanity.txt" <<'PY'
import json, os, sys
out, prec = sys.argv[1], sys.argv[2]
m4 = json.loads(open(os.path.join(out, f"sanity_{prec}", "metrics.jsonl")).readline())["loss"]
hf = json.load(open(os.path.join(out, f"sanity_hf_{prec}.json")))["first_loss"]
print(f"first-step loss on the same 4 rows, {prec}: HF {hf:.7f}, m4forge {m4:.7f}, |diff| {abs(hf - m4):.2e}")
PY
done
cat "$out/sanity.txt"
# Where OpenBLAS misdetects this CPU, m4forge restarts itself with a better OPENBLAS_CORETYPE
# (core/cpu_runtime.h); HF gets the same kernels (its best setting), and hf_f32_t1_asis shows it
# with OpenBLAS's own choice.
core=$(sed -n 's/.*restarted with OPENBLAS_CORETYPE=\([A-Za-z0-9]*\).*/\1/p' "$out/sanity_f32.log" | head -n 1)
asis=""
if [[ -n "$core" && -z "${OPENBLAS_CORETYPE:-}" ]]; then
  export OPENBLAS_CORETYPE=$core
  asis=hf_f32_t1_asis
  echo "OpenBLAS misdetects this CPU: m4forge and HF run with OPENBLAS_CORETYPE=$core ($asis: without it)" | tee -a "$out/sanity.txt"
fi

# 3. The GEMM ceiling, f32 and bf16, on the same threads.
: > "$out/ceiling.jsonl"
for dt in f32 bf16; do
  "$ceiling" --dtype "$dt" --threads "$threads" | tee "$out/ceiling_$dt.txt" | tail -n 1 >> "$out/ceiling.jsonl"
  sed -n '$!p' "$out/ceiling_$dt.txt" | tail -n 1
done

# 4. Rounds: every variant once per round, HF and m4forge alternating.
# m4_f32_blas: m4forge with its f32 GEMMs in OpenBLAS (M4FORGE_F32_GEMM=blas), as before oneDNN.
variants=${VARIANTS:-"hf_f32_t1 hf_f32_tN m4_f32 m4_f32_blas hf_bf16_t1 hf_bf16_tN m4_bf16 $asis"}
: > "$out/runs.jsonl"
for round in $(seq 1 "$rounds"); do
  for v in $variants; do
    prec=${v#*_}; prec=${prec%%_*}
    t=$threads; [[ "$v" == *_t1* ]] && t=1
    [[ "$v" == *_t1 && "$threads" == 1 ]] && continue
    d="$out/runs/r${round}_$v"; rm -rf "$d"; mkdir -p "$d"
    if [[ "$v" == *_asis ]]; then
      env -u OPENBLAS_CORETYPE PYTHONPATH="$hfpath" "$python" "$here/hf_side_by_side.py" train --hf "$out/hf" \
        --ids "$out/ids.safetensors" --precision "$prec" --threads "$t" --warmup "$warmup" --steps "$steps" \
        --out "$d/hf.json" > "$d/log" 2>&1 || die "round $round $v failed: $d/log"
    elif [[ "$v" == hf_* ]]; then
      py train --hf "$out/hf" --ids "$out/ids.safetensors" --precision "$prec" --threads "$t" \
        --warmup "$warmup" --steps "$steps" --out "$d/hf.json" > "$d/log" 2>&1 || die "round $round $v failed: $d/log"
    fi
    if [[ "$v" == hf_* ]]; then
      "$python" - "$d/hf.json" "$round" "$v" >> "$out/runs.jsonl" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({"round": int(sys.argv[2]), "variant": sys.argv[3], "tokens_per_s": r["tokens_per_s"],
                  "peak_rss_kib": r["peak_rss_kib"], "first_loss": r["first_loss"]}))
PY
    else
      gemm=onednn; [[ "$v" == *_blas ]] && gemm=blas
      M4FORGE_F32_GEMM=$gemm py run --out "$d/run.json" -- "$m4" train "$cfg" "train.precision=$prec" --firmware "$out/fw" \
        --run-dir "$d/run" --threads "$t" > "$d/log" 2>&1 || die "round $round $v failed: $d/log"
      "$python" - "$d" "$round" "$v" "$warmup" "$tokens" >> "$out/runs.jsonl" <<'PY'
import json, os, statistics, sys
d, rnd, v, warmup, tokens = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
steps = [json.loads(l) for l in open(os.path.join(d, "run", "metrics.jsonl")) if l.strip()]
med = statistics.median(s["step_time_s"] for s in steps[warmup:])
print(json.dumps({"round": rnd, "variant": v, "tokens_per_s": tokens / med,
                  "peak_rss_kib": json.load(open(os.path.join(d, "run.json")))["peak_rss_kib"],
                  "first_loss": steps[0]["loss"]}))
PY
    fi
    tail -n 1 "$out/runs.jsonl"
  done
done

# 5. The table.
py summarize --out "$out" --cpu "$cpu"
