#!/usr/bin/env bash
# Installs every Debian 12 package m4forge builds, tests and runs with, and
# selects OpenBLAS as libblas.so.3 (Debian's libtorch uses whatever BLAS the
# alternatives system selects; the reference BLAS is ~40x slower).
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  g++ cmake ninja-build ccache pkg-config git
  libtorch-dev libgloo-dev libdnnl-dev
  libopenblas0-pthread libopenblas0-openmp
  libspdlog-dev libcxxopts-dev nlohmann-json3-dev
  libgtest-dev libssl-dev
  libsentencepiece-dev libicu-dev libsoxr-dev
  libhdf5-dev libsndfile1-dev libyaml-cpp-dev libpng-dev zlib1g-dev python3
  libopenmpi-dev openmpi-bin
  libsodium-dev minisign
  chromium fonts-dejavu-core
  libcpp-httplib-dev curl
  base-files
  dataset-fashion-mnist
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The pthreads build for every BLAS name LibTorch links (libopenblas0-openmp is installed
# beside it for a test, never selected: two OpenBLAS builds in one process would clash).
OPENBLAS=/usr/lib/x86_64-linux-gnu/openblas-pthread
for name in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
  if [ -e "$OPENBLAS/$name" ]; then
    $SUDO update-alternatives --set "$name-x86_64-linux-gnu" "$OPENBLAS/$name" >/dev/null
  fi
done
echo "setup: ok (BLAS: $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3))"
