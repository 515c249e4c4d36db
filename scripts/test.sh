#!/usr/bin/env bash
# Set up, build everything, and run every test (GoogleTest under ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
