#!/usr/bin/env bash
# The one device check of issue 15, one command of at most 10 minutes with the
# build, on an H100/H200 machine that has CUDA, nvcc, CMake and a PyTorch wheel
# but no Debian libraries and no network (the .debs come along in cuda-debs/,
# from cluster/cuda-debs.sh):
#   bash bench/gpu_check.sh        (the session's device tool: run, carry: [cuda-debs])
# Stages: (a) the GPU, driver, Python/torch/CUDA versions; (b) a CUDA build of
# only m4forge, m4_train_tests and gpu_lora_bench; (c) the CUDA parity tests
# (gtest suite Cuda in m4_train_tests), required, not skipped; (d) the 7B LoRA
# throughput bench in bf16. A failed parity test does not stop the bench; every
# failure makes the exit status nonzero. Everything goes to stdout and, when
# $OUT is set, to $OUT/gpu_check.log. Env: GPU_CHECK_BUDGET_S (590),
# JOBS (nproc), DEBS (cuda-debs), BUILD (build-cuda).
# shellcheck disable=SC2317  # the stage functions run through `bash -c NAME`
set -euo pipefail
cd "$(dirname "$0")/.."

BUDGET=${GPU_CHECK_BUDGET_S:-590}
JOBS=${JOBS:-$(nproc)}
DEBS=${DEBS:-cuda-debs}
BUILD=${BUILD:-build-cuda}
START=$(date +%s)
TEE_PID=
if [[ -n "${OUT:-}" ]]; then
  mkdir -p "$OUT"
  exec > >(tee -a "$OUT/gpu_check.log") 2>&1
  TEE_PID=$!
fi

declare -a SUMMARY=()
FAILED=0
elapsed() { echo $(($(date +%s) - START)); }
left() { echo $((BUDGET - $(elapsed))); }
log() { printf '== [%s +%ss] %s\n' "$(date -u +%H:%M:%S)" "$(elapsed)" "$*"; }

# stage NAME SECONDS CMD...: CMD under `timeout SECONDS` (never past the
# budget); records "NAME rc seconds" and returns CMD's status.
stage() {
  local name=$1 cap=$2 rc=0 t0
  shift 2
  local limit=$(( cap < $(left) ? cap : $(left) ))
  if (( limit < 5 )); then
    log "$name: skipped, $(left) s of the ${BUDGET} s budget left"
    SUMMARY+=("$name: skipped (no time left)")
    FAILED=1
    return 1
  fi
  log "$name: start (limit ${limit} s): $*"
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" || rc=$?
  local s=$(($(date +%s) - t0))
  if (( rc == 124 || rc == 137 )); then
    SUMMARY+=("$name: TIMED OUT after ${s} s (limit ${limit} s)")
  elif (( rc != 0 )); then
    SUMMARY+=("$name: FAILED rc $rc in ${s} s")
  else
    SUMMARY+=("$name: ok in ${s} s")
  fi
  (( rc == 0 )) || FAILED=1
  log "$name: rc $rc after ${s} s"
  return "$rc"
}

info() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "nvidia-smi failed"
  python3 -c 'import sys, torch; print("python", sys.version.split()[0], "| torch", torch.__version__,
"| torch CUDA", torch.version.cuda, "| cuda available", torch.cuda.is_available())' || echo "no torch in python3"
  { nvcc --version | tail -n 1; } || echo "no nvcc"
  { cmake --version | head -n 1; } || echo "no cmake"
  echo "cores $(nproc), revision $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
}

# Only three targets fit the budget: the CLI, the test binary that holds
# tests/train/cuda_test.cpp (gtest suite Cuda, beside hf_trajectory_test.cpp)
# and the bench. cluster/build-cuda.sh takes them as TARGETS="a b" in the
# environment (its convention: DEBS_DIR [BUILD_DIR] [-- CMAKE_ARGS...]; without
# TARGETS it builds everything). JOBS reaches its `cmake --build -j`;
# CMAKE_BUILD_PARALLEL_LEVEL and MAKEFLAGS cover a build tool started otherwise.
build() {
  export JOBS  # build-cuda.sh reads it
  TARGETS="m4forge m4_train_tests gpu_lora_bench" CMAKE_BUILD_PARALLEL_LEVEL=$JOBS MAKEFLAGS="-j$JOBS" \
    bash cluster/build-cuda.sh "$DEBS/" "$BUILD"
}

# M4FORGE_REQUIRE_CUDA=1: the Cuda tests fail instead of skipping without a GPU.
# They compare CUDA with CPU logits (f32 within 1e-4, bf16 within the test's
# stated tolerance) and 20 LoRA steps of the HF PEFT trajectory on CUDA f32
# (within 1e-5).
parity() {
  M4FORGE_REQUIRE_CUDA=1 ctest --test-dir "$BUILD" -R '^Cuda\.' --output-on-failure --no-tests=error
}

BENCH_LOG=$(mktemp)
bench() {
  set -o pipefail  # a child bash: the bench's status, not tee's
  "$BUILD/bench/gpu_lora_bench" --device cuda --precision bf16 --steps 10 --warmup 2 "$@" | tee -a "$BENCH_LOG"
}
# timeout runs programs, not shell functions: each stage is `bash -c NAME`.
export JOBS DEBS BUILD BENCH_LOG
export -f info build parity bench

log "gpu_check: budget ${BUDGET} s, ${JOBS} build jobs, debs ${DEBS}/, build ${BUILD}/"
stage info 30 bash -c info || true
BUILT=1
# The build gets what the budget leaves after 200 s for the tests and benches.
stage build $(( $(left) - 200 )) bash -c build || BUILT=0
if (( BUILT )); then
  if [[ -f "$BUILD/cuda-env.sh" ]]; then
    set +u  # the environment file may extend unset variables (LD_LIBRARY_PATH)
    # shellcheck disable=SC1091
    source "$BUILD/cuda-env.sh"
    set -u
  else
    log "no $BUILD/cuda-env.sh: running with this shell's environment"
  fi
  stage parity 90 bash -c parity || true
  # The 7B shape (the bench's defaults): frozen f32 weights + their bf16
  # copies, as m4forge train runs precision bf16; then frozen weights stored
  # in bf16 (LlamaImpl loaded in bf16).
  stage bench-7b-f32-frozen 100 bash -c 'bench --frozen-dtype f32' || true
  stage bench-7b-bf16-frozen 80 bash -c 'bench --frozen-dtype bf16' || true
fi

log "gpu_check: summary"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
grep -E '^(gpu_lora_bench:|summary:|peak device memory:|MFU:|loss:)' "$BENCH_LOG" | sed 's/^/  /' || true
rm -f "$BENCH_LOG"
log "gpu_check: $( ((FAILED)) && echo FAILED || echo passed ) in $(elapsed) s"
if [[ -n "$TEE_PID" ]]; then
  exec >&- 2>&-  # let tee see the end of its input and finish the log
  wait "$TEE_PID" 2>/dev/null || true
fi
exit "$FAILED"
