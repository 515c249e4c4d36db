#!/usr/bin/env bash
# train_scaling: image-task training samples/s through the real CLI, and the
# efficiency of 2 MPI ranks over 1 (issue 6 item 9). See bench/README.md.
#
#   bash bench/train_scaling.sh [--steps 300] [--warmup 30] [--batch 32] [--repeats 3]
#
# Runs `m4forge train configs/tasks/fashion_mnist.yaml` (Path-2, LoRA on img_enc)
# on the demo firmware, round-robin over three set-ups, --repeats times:
#   1p x 2t   one process, --threads 2 (the image-task figure)
#   1p x 1t   one process, --threads 1 (the baseline)
#   2r x 1t   mpirun -np 2, --threads 1 and OMP_NUM_THREADS=1 per rank
# train.batch_size is the global batch, so every set-up trains the same samples.
# samples/s is read from the run's metrics.jsonl, leaving out the first --warmup
# steps (start-up, first allocations). Each line's samples_per_s is cumulative
# since the loop started, so step n ended at t_n = n * batch / samples_per_s_n and
# the steady rate is (N - k) * batch / (t_N - t_k).
# `--stop-after STEPS` ends the run without the final full-test-set evaluation.
# Environment: M4FORGE (binary, default build/cli/m4forge), M4_SCALING_DIR
# (firmware and runs, default /tmp/m4-train-scaling; kept between calls).
set -euo pipefail
cd "$(dirname "$0")/.."

steps=300 warmup=30 batch=32 repeats=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "train_scaling: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
if (( warmup >= steps )); then
  echo "train_scaling: --warmup ($warmup) must be below --steps ($steps)" >&2; exit 2
fi

M4=${M4FORGE:-build/cli/m4forge}
WORK=${M4_SCALING_DIR:-/tmp/m4-train-scaling}
CONFIG=configs/tasks/fashion_mnist.yaml
[[ -x $M4 ]] || { echo "train_scaling: no $M4 (build it: bash scripts/build.sh m4forge)" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "train_scaling: no mpirun (apt-get install openmpi-bin)" >&2; exit 1; }
if [[ ! -f datasets/fashion_mnist/train.h5 ]]; then
  echo "train_scaling: datasets/fashion_mnist/train.h5 is missing (build it: bash scripts/data/fashion_mnist.sh)" >&2
  exit 1
fi
mkdir -p "$WORK"
if [[ ! -f $WORK/fw/firmware.json ]]; then
  "$M4" firmware init-demo --out "$WORK/fw" --seed 0 --log-level warn
fi
# Open MPI refuses root without these (as tests/train/train_cli_fixture.h).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# steady samples/s of a run directory, first $warmup steps left out
rate() {
  python3 - "$1/metrics.jsonl" "$warmup" "$batch" <<'PY'
import json, sys
path, k, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = [r for r in map(json.loads, open(path)) if "samples_per_s" in r]
t = {r["step"]: r["step"] * batch / r["samples_per_s"] for r in rows}
n = max(t)
print(f"{(n - k) * batch / (t[n] - t[k]):.1f}")
PY
}

run() {  # name, then the command prefix; trains into $WORK/runs/name
  local name=$1; shift
  local dir=$WORK/runs/$name
  rm -rf "$dir"
  "$@" "$M4" train "$CONFIG" train.steps="$steps" train.eval_every=0 train.batch_size="$batch" \
    --stop-after "$steps" --firmware "$WORK/fw" --run-dir "$dir" --log-level warn "${extra[@]}" >/dev/null
  rate "$dir"
}

declare -A all
echo "train_scaling: $CONFIG on the demo firmware, batch $batch, $steps steps ($warmup left out), $repeats repeats; $(nproc) cores"
for ((i = 1; i <= repeats; i++)); do
  echo "repeat $i: load average $(cut -d' ' -f1-3 /proc/loadavg) before"
  extra=(--threads 2); a=$(run p1t2 env)
  extra=(--threads 1); b=$(run p1t1 env OMP_NUM_THREADS=1)
  extra=(--threads 1); c=$(run r2t1 env OMP_NUM_THREADS=1 mpirun -np 2 -x OMP_NUM_THREADS)
  all["1p x 2t"]+="$a " all["1p x 1t"]+="$b " all["2r x 1t"]+="$c "
  printf '  samples/s: 1p x 2t %s, 1p x 1t %s, 2r x 1t %s\n' "$a" "$b" "$c"
done

# median (and range) per set-up; speed-up vs 1p x 1t; efficiency = rate / (workers x 1p x 1t)
python3 - "${all["1p x 2t"]}" "${all["1p x 1t"]}" "${all["2r x 1t"]}" <<'PY'
import statistics, sys
rows = [("1 process x 2 threads", 2), ("1 process x 1 thread", 1), ("2 MPI ranks x 1 thread", 2)]
vals = [list(map(float, a.split())) for a in sys.argv[1:]]
base = statistics.median(vals[1])
print(f"\n| configuration | samples/s (median) | min-max | speed-up vs 1x1 | parallel efficiency |")
print(f"|---|---:|---:|---:|---:|")
for (name, workers), v in zip(rows, vals):
    m = statistics.median(v)
    print(f"| {name} | {m:.1f} | {min(v):.1f}-{max(v):.1f} | {m / base:.2f}x | {100 * m / (workers * base):.0f}% |")
print(f"\nimage-task training (fashion_mnist, 1 process x 2 threads): {statistics.median(vals[0]):.1f} samples/s")
PY
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) after"
