#!/usr/bin/env bash
# Memory and speed of a quantized firmware: the ~2.2 GB f32 bench backbone
# (hidden 2048, intermediate 5632, 8 layers, vocab 32000, seeded random) against
# its INT8 and 4-bit quantizations (`m4forge firmware quantize`): forward
# tokens/s and a LoRA (r 8 on q, v) training step, each in its own process so
# its peak RSS is its own; rounds alternate the variants. See bench/README.md.
#   bash bench/quantized_firmware.sh [--rounds 2] [--seq 256] [--threads 2]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=2 SEQ=256 THREADS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seq) SEQ=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--seq N] [--threads N]" >&2; exit 2 ;;
  esac
done
[ -n "${M4_NO_BUILD:-}" ] || bash scripts/build.sh m4forge quantized_bench >/dev/null  # M4_NO_BUILD=1: as built
M4=build/cli/m4forge
QB=build/bench/quantized_bench
WORK=$(mktemp -d /tmp/m4-quant.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores," \
     "flags: $(grep -m1 -o -w -E 'amx_bf16|avx512_bf16|avx512f|avx2' /proc/cpuinfo | sort -u | xargs)"
"$QB" make --out "$WORK/f32"
"$M4" firmware quantize "$WORK/f32" --bits 8 --out "$WORK/int8" --log-level warn >/dev/null
"$M4" firmware quantize "$WORK/f32" --bits 4 --out "$WORK/int4" --log-level warn >/dev/null
for v in f32 int8 int4; do
  echo "size $v: $(du -sb "$WORK/$v" | cut -f1) bytes"
done
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r"
  for v in f32 int8 int4; do
    "$QB" forward --firmware "$WORK/$v" --seq "$SEQ" --threads "$THREADS" --iters 3
    "$QB" lora --firmware "$WORK/$v" --seq "$SEQ" --threads "$THREADS" --iters 2
  done
done
