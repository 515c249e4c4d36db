#!/usr/bin/env bash
# Downloads, on a Debian 12 machine with network, the .deb files a CUDA build of
# m4forge needs on a GPU machine that has CUDA, nvcc, CMake and a PyTorch wheel
# (its LibTorch) but none of Debian's libraries and no network: the libraries
# m4forge links besides LibTorch, with their library dependencies, and the
# headers it compiles against. LibTorch itself, BLAS and the C/C++ runtime are
# not included (the wheel and the GPU machine bring their own).
#   bash cluster/cuda-debs.sh [OUT_DIR]    (default: cuda-debs/; then carry it over)
# cluster/README.md says what to do with them there.
set -euo pipefail
OUT=${1:-cuda-debs}
# What m4forge compiles and links against, beyond LibTorch (scripts/setup-debian.sh
# minus the toolchain, LibTorch, BLAS, the browser and the datasets), and pkg-config
# and ninja, which a GPU machine may lack (build-cuda.sh uses its own first).
PACKAGES=(
  libspdlog-dev libfmt-dev libcxxopts-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libssl-dev
  libsentencepiece-dev libprotobuf-lite32 libicu-dev libsoxr-dev
  libhdf5-dev libsndfile1-dev libyaml-cpp-dev libpng-dev zlib1g-dev
  libopenmpi-dev openmpi-bin
  libsodium-dev minisign
  libcpp-httplib-dev
  pkgconf ninja-build
)
# Never unpacked into a prefix: the GPU machine's own C runtime and toolchain must stay in charge.
EXCLUDE='^(libc6|libc6-dev|libc-dev-bin|libgcc-s1|libstdc\+\+6|libstdc\+\+-12-dev|gcc-12-base|linux-libc-dev|libcrypt1|libcrypt-dev|libnsl2|libnsl-dev|libtirpc3|libtirpc-dev|libtirpc-common|debconf|dpkg|perl-base|tar|base-files|libgomp1|libquadmath0|libgfortran5|libblas3|libopenblas0|libopenblas0-pthread|liblapack3|libtorch.*|python3.*|gcc.*|g\+\+.*|cpp.*|gfortran.*|libgfortran.*|libgcc-[0-9]+-dev|lib(a|t|ub|l|hwa)san[0-9]+|libitm1|libatomic1|libcc1-0|libisl23|libmpc3|libmpfr6|binutils.*|libbinutils|libctf.*|libgprofng0|libjansson4)$'
mkdir -p "$OUT"
# The packages and what they depend on: a walk over `apt-cache depends`
# taking the first alternative of each "a | b" (apt's own choice when nothing
# is installed), so openmpi-bin does not drag in every Fortran compiler.
mapfile -t WANT < <(python3 - "$EXCLUDE" "${PACKAGES[@]}" <<'PY'
import re, subprocess, sys
exclude = re.compile(sys.argv[1])
todo, seen, out = list(sys.argv[2:]), set(), []
while todo:
    pkg = todo.pop()
    if pkg in seen or exclude.match(pkg):
        continue
    seen.add(pkg)
    text = subprocess.run(["apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks",
                           "--no-replaces", "--no-enhances", pkg], capture_output=True, text=True).stdout
    lines = text.splitlines()
    if not lines or lines[0].startswith("<"):  # virtual: provided by the first alternative apt lists
        continue
    out.append(pkg)
    take = True  # the first alternative of an "|Depends:" group, then the line after it ends the group
    for line in lines[1:]:
        m = re.match(r"\s*(\|?)(Depends|PreDepends|Pre-Depends): (\S+)", line)
        if not m:
            continue
        name = m.group(3).split(":")[0].strip("<>")
        if take:
            todo.append(name)
        take = m.group(1) != "|"
for p in sorted(out):
    print(p)
PY
)
(cd "$OUT" && apt-get download -q "${WANT[@]}" >/dev/null)
printf '%s\n' "${WANT[@]}" > "$OUT/PACKAGES"
{
  echo "debian_version $(cat /etc/debian_version)"
  echo "glibc $(ldd --version | head -1 | grep -oE '[0-9]+\.[0-9]+$')"
} > "$OUT/SOURCE"
echo "cuda-debs: ${#WANT[@]} packages, $(du -sh "$OUT" | cut -f1), in $OUT (built on Debian $(cat /etc/debian_version)," \
     "glibc $(ldd --version | head -1 | grep -oE '[0-9]+\.[0-9]+$'))"
