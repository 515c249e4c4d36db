#!/usr/bin/env bash
# Resident memory of `m4forge train-many` for 1 task vs 10 tasks over one
# resident firmware, and what the same 10 tasks take as 10 separate
# `m4forge train` processes. Prints a table; see bench/README.md.
#   bash bench/train_many_memory.sh [--width 8] [--steps 4]
# Needs the datasets of the tasks below (scripts/data/*.sh) and build/cli/m4forge.
set -euo pipefail
cd "$(dirname "$0")/.."
WIDTH=8 STEPS=4
while [ $# -gt 0 ]; do
  case "$1" in
    --width) WIDTH=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    *) echo "usage: $0 [--width N] [--steps N]" >&2; exit 2 ;;
  esac
done
M4=build/cli/m4forge
WORK=$(mktemp -d /tmp/m4-many-mem.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
FW=$WORK/fw
"$M4" firmware init-demo --out "$FW" --width "$WIDTH" --log-level warn >/dev/null
COMMON="train.steps=$STEPS, train.eval_every=0, optim.warmup_steps=0"
TASKS=(fashion_mnist wordnet_topics keyword_spotting translation_de_en har audio_classification
       fashion_mnist wordnet_topics keyword_spotting har)
for t in "${TASKS[@]}"; do
  f="datasets/$(sed -n 's/^  train: datasets\/\([^/]*\)\/.*/\1/p' "configs/tasks/$t.yaml")/train.h5"
  [ -f "$f" ] || { echo "missing $f: run the dataset script named in configs/tasks/$t.yaml" >&2; exit 1; }
done
write_job() {  # FILE N: the first N tasks, each its own name and seed
  {
    echo "overrides: [$COMMON]"
    echo "tasks:"
    for ((i = 0; i < $2; i++)); do
      echo "  - {config: ${TASKS[$i]}, name: t$i-${TASKS[$i]}, overrides: [train.seed=$i]}"
    done
  } >"$1"
}
write_job "$WORK/one.yaml" 1
write_job "$WORK/ten.yaml" 10
peak_kib() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }
LIMITS=(--final-eval-limit 32 --log-level warn --threads 2)

/usr/bin/time -v "$M4" train-many "$WORK/one.yaml" --firmware "$FW" --run-root "$WORK/r1" "${LIMITS[@]}" \
  >"$WORK/one.out" 2>"$WORK/one.time"
/usr/bin/time -v "$M4" train-many "$WORK/ten.yaml" --firmware "$FW" --run-root "$WORK/r10" "${LIMITS[@]}" \
  >"$WORK/ten.out" 2>"$WORK/ten.time" || { cat "$WORK/ten.out"; grep -v "^\s" "$WORK/ten.time" | head -5; exit 1; }
sum=0 max=0
for ((i = 0; i < 10; i++)); do
  /usr/bin/time -v "$M4" train "configs/tasks/${TASKS[$i]}.yaml" train.steps="$STEPS" train.eval_every=0 \
    optim.warmup_steps=0 train.seed=$i --firmware "$FW" --run-dir "$WORK/s$i" "${LIMITS[@]}" \
    >/dev/null 2>"$WORK/s$i.time"
  k=$(peak_kib "$WORK/s$i.time"); sum=$((sum + k)); [ "$k" -gt "$max" ] && max=$k
done
fw_mib=$(du -sm "$FW" | cut -f1)
echo "train_many_memory: demo firmware x$WIDTH width ($fw_mib MiB on disk), $STEPS steps per task, 2 threads"
printf '%-52s %12s\n' "run" "peak RSS MiB"
printf '%-52s %12d\n' "train-many, 1 task (${TASKS[0]})" $(($(peak_kib "$WORK/one.time") / 1024))
printf '%-52s %12d\n' "train-many, 10 tasks (6 kinds, 5 module sets)" $(($(peak_kib "$WORK/ten.time") / 1024))
printf '%-52s %12d\n' "10 separate 'm4forge train' processes, sum" $((sum / 1024))
printf '%-52s %12d\n' "10 separate processes, largest one" $((max / 1024))
echo "RSS after each task of the 10-task job (MiB) and modules loaded so far:"
python3 - "$WORK/r10/job-rank0.jsonl" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"  {r['task']:<28} {r['status']:<8} {r['rss_kib'] / 1024:8.0f}  modules {r['modules_loaded']}")
EOF
