#!/usr/bin/env bash
# Builds every dataset m4forge can make from Debian packages:
#   bash scripts/data/all.sh [OUT_ROOT]   (default datasets/; each one in OUT_ROOT/<name>)
# Env: M4FORGE (default build/cli/m4forge), M4FORGE_SKIP_IMPORT=1 (raw forms only),
#      M4_DATASETS="fashion_mnist wordnet_topics ..." to build a subset.
# See docs/datasets.md for what each one is, its license, counts and caveats.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="${1:-$(cd "$HERE/../.." && pwd)/datasets}"
NAMES="${M4_DATASETS:-fashion_mnist wordnet_topics translation_de_en keyword_spotting audio_classification openclipart har_synthetic}"
for n in $NAMES; do
  t0=$(date +%s)
  bash "$HERE/$n.sh" "$ROOT/$n"
  echo "[all] $n: $(( $(date +%s) - t0 )) s" >&2
done
