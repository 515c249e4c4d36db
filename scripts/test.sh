#!/usr/bin/env bash
# Set up, build everything, and run every test (GoogleTest under ctest). Tests
# that skip (the real pretrained model absent) say why, one line each.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
log=build/Testing/Temporary/LastTest.log
if [ -f "$log" ]; then
  grep -A1 ": Skipped$" "$log" | grep -v -e "^--$" -e ": Skipped$" | sort -u | sed 's/^/test.sh: skipped: /' || true
fi
