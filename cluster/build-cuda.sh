#!/usr/bin/env bash
# Builds m4forge with CUDA on a GPU machine that has CUDA, nvcc, CMake, g++ and a
# PyTorch wheel but none of Debian's libraries and no network: unpacks the .debs
# of cluster/cuda-debs.sh into a prefix, checks glibc and the wheel's C++ ABI, and
# configures and builds every target against the wheel's LibTorch.
#   bash cluster/build-cuda.sh [--prepare-only] DEBS_DIR [BUILD_DIR] [-- CMAKE_ARGS...]
#   source BUILD_DIR/cuda-env.sh          (then run m4forge, ctest, the benches)
# BUILD_DIR defaults to build-cuda/; the prefix is BUILD_DIR/debroot. --prepare-only
# stops before cmake (unpack, fix-ups, checks, cuda-env.sh, cuda-prefix.cmake) and
# skips the wheel's checks when torch does not import. Environment: PYTHON (python3),
# LIBTORCH (a LibTorch folder used instead of the wheel's), CXX (g++), CUDACXX (nvcc),
# TORCH_CUDA_ARCH_LIST (9.0: H100/H200), CMAKE_CUDA_ARCHITECTURES (from it), JOBS (nproc),
# TARGETS (space-separated targets to build; default: all).
# cluster/README.md says what each check means and what to do when one fails.
set -euo pipefail

say() { echo "build-cuda: $*"; }
die() { echo "build-cuda: error: $*" >&2; exit 1; }
# version_ge A B: A >= B, both dotted.
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

PREPARE_ONLY=0
POSITIONAL=()
EXTRA_CMAKE=()
while [ $# -gt 0 ]; do
  case $1 in
    --prepare-only) PREPARE_ONLY=1 ;;
    --) shift; EXTRA_CMAKE=("$@"); break ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) die "unknown option $1 (see: $0 --help)" ;;
    *) POSITIONAL+=("$1") ;;
  esac
  shift
done
if [ ${#POSITIONAL[@]} -lt 1 ] || [ ${#POSITIONAL[@]} -gt 2 ]; then
  die "usage: $0 [--prepare-only] DEBS_DIR [BUILD_DIR] [-- CMAKE_ARGS...]"
fi
DEBS=$(cd "${POSITIONAL[0]}" 2>/dev/null && pwd) || die "no folder ${POSITIONAL[0]} (make it with cluster/cuda-debs.sh on Debian 12)"
compgen -G "$DEBS/*.deb" >/dev/null || die "no .deb files in $DEBS (make them with cluster/cuda-debs.sh on Debian 12)"
mkdir -p "${POSITIONAL[1]:-build-cuda}"
BUILD=$(cd "${POSITIONAL[1]:-build-cuda}" && pwd)
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
P=$BUILD/debroot            # the prefix: usr/, lib/, etc/ as the .debs lay them out
ARCH=x86_64-linux-gnu       # Debian's multiarch folder; the .debs are amd64
LIBDIRS="$P/usr/lib/$ARCH:$P/lib/$ARCH"
PYTHON=${PYTHON:-python3}
CXX=${CXX:-g++}

# --- glibc: Debian 12's libraries are linked against its glibc (SOURCE says which).
need_glibc=$(sed -n 's/^glibc //p' "$DEBS/SOURCE" 2>/dev/null || true)
need_glibc=${need_glibc:-2.36}
have_glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}' || true)
[ -n "$have_glibc" ] || have_glibc=$(ldd --version 2>/dev/null | head -1 | grep -oE '[0-9]+\.[0-9]+$' || true)
[ -n "$have_glibc" ] || die "cannot tell this machine's glibc version (getconf GNU_LIBC_VERSION, ldd --version); the Debian libraries need glibc >= $need_glibc"
version_ge "$have_glibc" "$need_glibc" ||
  die "this machine has glibc $have_glibc, the Debian 12 libraries in $DEBS need glibc >= $need_glibc: build inside a Debian 12 container with the GPU passed through (docker/podman --gpus all, apptainer --nv), or build those libraries from source here"
say "glibc $have_glibc (the Debian libraries need >= $need_glibc)"

# --- unpack every .deb into the prefix, once per set of .debs.
stamp=$( (cd "$DEBS" && ls -lL -- *.deb) | md5sum | cut -d' ' -f1)
if [ "$(cat "$P/.m4-unpacked" 2>/dev/null || true)" != "$stamp" ]; then
  rm -rf "$P"
  mkdir -p "$P"
  n=0
  for deb in "$DEBS"/*.deb; do
    if command -v dpkg >/dev/null && [ "${BUILD_CUDA_EXTRACT:-dpkg}" = dpkg ]; then
      dpkg -x "$deb" "$P"
    else  # a non-Debian machine: a .deb is an ar archive holding data.tar.{xz,zst,gz}
      tmp=$(mktemp -d)
      (cd "$tmp" && ar x "$deb")
      data=$(find "$tmp" -maxdepth 1 -name 'data.tar*' | head -1)
      case $data in
        *.xz)  tar -xJf "$data" -C "$P" ;;
        *.zst) zstd -dcq "$data" | tar -xf - -C "$P" ;;
        *.gz)  tar -xzf "$data" -C "$P" ;;
        *.tar) tar -xf "$data" -C "$P" ;;
        *) rm -rf "$tmp"; die "$deb has no data.tar.{xz,zst,gz}" ;;
      esac
      rm -rf "$tmp"
    fi
    n=$((n + 1))
  done
  # Absolute symlinks (libz.so -> /lib/...) point into the prefix instead.
  while IFS= read -r link; do
    target=$(readlink "$link")
    ln -sfn "$(realpath -m -s --relative-to="$(dirname "$link")" "$P$target")" "$link"
  done < <(find "$P" -type l -lname '/*')
  # The one library name Debian makes with update-alternatives at install
  # (libfabric, which Open MPI's OFI components load, needs it).
  psm=$P/usr/lib/libpsm1/libpsm_infinipath.so.1.16
  [ -e "$psm" ] && ln -sfn ../libpsm1/libpsm_infinipath.so.1.16 "$P/usr/lib/$ARCH/libpsm_infinipath.so.1"
  echo "$stamp" > "$P/.m4-unpacked"
  say "unpacked $n .debs into $P"
else
  say "prefix $P is up to date with $DEBS"
fi
dangling=$(find "$P/usr/lib" "$P/lib" "$P/usr/include" -xtype l 2>/dev/null | head -3)
[ -z "$dangling" ] || die "dangling symlinks in the prefix (an incomplete cuda-debs folder?): $dangling"

# --- tools: pkg-config, Open MPI's wrapper and launcher, minisign, as wrappers in
# BUILD/cuda-bin that carry their own environment (CMake re-runs them at reconfigure).
BIN=$BUILD/cuda-bin
mkdir -p "$BIN"
wrap() {  # wrap NAME COMMAND: BIN/NAME runs COMMAND with the prefix's libraries and Open MPI's prefix
  cat > "$BIN/$1" <<EOF
#!/bin/sh
# Written by cluster/build-cuda.sh: $2 with the Debian libraries of $P.
export LD_LIBRARY_PATH="$LIBDIRS\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export OPAL_PREFIX="$P/usr"
export PKG_CONFIG_LIBDIR="$P/usr/lib/$ARCH/pkgconfig:$P/usr/share/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$P"
export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
exec "$2" "\$@"
EOF
  chmod +x "$BIN/$1"
}
# pkg-config: the prefix's pkgconf (its sysroot handling is the one tested), else the machine's.
# PKG_CONFIG_SYSROOT_DIR prefixes the .pc files' -I/usr/... and -L/usr/... (also hdf5-serial's
# literal paths) with the prefix; PKG_CONFIG_LIBDIR keeps the machine's own .pc files out.
if [ -x "$P/usr/bin/pkgconf" ]; then
  wrap pkg-config "$P/usr/bin/pkgconf"
elif command -v pkg-config >/dev/null; then
  wrap pkg-config "$(command -v pkg-config)"
else
  die "no pkg-config: neither $DEBS (add pkgconf to cluster/cuda-debs.sh's PACKAGES) nor this machine has one"
fi
wrap mpicxx "$P/usr/bin/mpicxx.openmpi"
wrap mpirun "$P/usr/bin/mpirun.openmpi"
wrap mpiexec "$P/usr/bin/mpirun.openmpi"
wrap minisign "$P/usr/bin/minisign"
for mod in spdlog libsodium hdf5-serial sndfile sentencepiece cpp-httplib; do
  "$BIN/pkg-config" --exists "$mod" || die "pkg-config finds no $mod in $P (an incomplete cuda-debs folder?)"
done
"$BIN/mpicxx" --showme:compile | grep -q "$P/" || die "Open MPI's mpicxx does not point into $P (OPAL_PREFIX ignored?)"
say "pkg-config: $("$BIN/pkg-config" --version) ($(readlink -f "$(sed -n 's/^exec "\(.*\)" .*/\1/p' "$BIN/pkg-config")")); Open MPI $("$BIN/pkg-config" --modversion ompi-cxx)"

# --- libstdc++: Debian's C++ libraries need the GLIBCXX symbol versions of its g++ 12.
command -v "$CXX" >/dev/null || die "no C++ compiler $CXX (set CXX=)"
need_glibcxx=3.4.30
if command -v readelf >/dev/null; then
  need_glibcxx=$(for f in "$P/usr/lib/$ARCH"/lib{spdlog,fmt,yaml-cpp,sentencepiece,sentencepiece_train,gtest,gmock,cpp-httplib,mpi_cxx}.so; do
      readelf -V --wide "$(readlink -f "$f")" 2>/dev/null | grep -oE 'GLIBCXX_[0-9.]+' || true
    done | sed 's/GLIBCXX_//' | sort -uV | tail -1)
  need_glibcxx=${need_glibcxx:-3.4.30}
fi
libstdcxx=$(readlink -f "$("$CXX" -print-file-name=libstdc++.so.6)")
grep -qa "GLIBCXX_$need_glibcxx" "$libstdcxx" 2>/dev/null ||
  die "$CXX's libstdc++ ($libstdcxx) lacks GLIBCXX_$need_glibcxx, which Debian 12's C++ libraries need: use g++ >= 12 (CXX=g++-12) or a Debian 12 container"
say "$CXX $("$CXX" -dumpfullversion 2>/dev/null || "$CXX" -dumpversion), libstdc++ has GLIBCXX_$need_glibcxx"

# --- the wheel's LibTorch: version, CUDA, C++ ABI, where its libraries and NCCL are.
TORCH_CMAKE="" TORCH_LIB="" TORCH_VERSION="" TORCH_CUDA="" TORCH_ABI="" NV_LIBS="" NCCL="" NCCL_VERSION=""
if [ -n "${LIBTORCH:-}" ]; then  # a LibTorch zip from pytorch.org instead of the wheel
  [ -f "$LIBTORCH/share/cmake/Torch/TorchConfig.cmake" ] || die "LIBTORCH=$LIBTORCH has no share/cmake/Torch/TorchConfig.cmake"
  TORCH_CMAKE=$LIBTORCH/share/cmake TORCH_LIB=$LIBTORCH/lib
  TORCH_VERSION=$(cat "$LIBTORCH/build-version" 2>/dev/null || echo unknown)
  TORCH_ABI=$(grep -oE '_GLIBCXX_USE_CXX11_ABI=[01]' "$LIBTORCH/share/cmake/Torch/TorchConfig.cmake" | head -1 | cut -d= -f2)
  TORCH_ABI=${TORCH_ABI:-1}
  NCCL=$(find "$TORCH_LIB" -maxdepth 1 -name 'libnccl.so.2*' | sort | head -1)
elif probe=$("$PYTHON" - 2>&1 <<'PY'
import glob, os
import torch
print("version", torch.__version__)
print("cuda", torch.version.cuda or "none")
print("abi", int(torch._C._GLIBCXX_USE_CXX11_ABI))
print("cmake", torch.utils.cmake_prefix_path)
lib = os.path.join(os.path.dirname(torch.__file__), "lib")
print("lib", lib)
# The wheel's CUDA libraries (cuBLAS, cuDNN, NCCL, the runtime) come as nvidia-* wheels.
roots = [os.path.join(os.path.dirname(os.path.dirname(torch.__file__)), "nvidia")]
try:
    import nvidia
    roots += list(nvidia.__path__)
except Exception:
    pass
nv = []
for r in roots:
    for d in sorted(glob.glob(os.path.join(r, "*", "lib"))):
        if os.path.realpath(d) not in map(os.path.realpath, nv):
            nv.append(d)
print("nvidia", ":".join(nv))
nccl = glob.glob(os.path.join(lib, "libnccl.so.2*")) + [f for d in nv for f in glob.glob(os.path.join(d, "libnccl.so.2*"))]
print("nccl", sorted(nccl)[0] if nccl else "")
try:
    v = torch.cuda.nccl.version()
    print("nccl_version", ".".join(map(str, v)) if isinstance(v, tuple) else v)
except Exception:
    pass
PY
); then
  while read -r key value; do
    case $key in
      version) TORCH_VERSION=$value ;; cuda) TORCH_CUDA=$value ;; abi) TORCH_ABI=$value ;;
      cmake) TORCH_CMAKE=$value ;; lib) TORCH_LIB=$value ;; nvidia) NV_LIBS=$value ;;
      nccl) NCCL=$value ;; nccl_version) NCCL_VERSION=$value ;;
    esac
  done <<< "$probe"
elif [ $PREPARE_ONLY = 1 ]; then
  say "skipping the wheel's checks (--prepare-only, and $PYTHON cannot import torch: $(tail -1 <<< "$probe"))"
else
  die "$PYTHON cannot import torch ($(tail -1 <<< "$probe")): install the CUDA PyTorch wheel, or set PYTHON= to the Python that has it, or LIBTORCH= to a LibTorch folder"
fi
if [ -n "$TORCH_CMAKE" ]; then
  [ "$TORCH_ABI" = 1 ] ||
    die "torch $TORCH_VERSION is built with the old C++ ABI (_GLIBCXX_USE_CXX11_ABI=$TORCH_ABI), Debian's C++ libraries (spdlog, fmt, yaml-cpp, sentencepiece, gtest) with the new one (=1), and std::string crosses between them: use a wheel built with the CXX11 ABI (PyTorch >= 2.7 wheels are) or the cxx11-abi LibTorch zip from pytorch.org (LIBTORCH=<its folder>)"
  say "torch $TORCH_VERSION, CUDA ${TORCH_CUDA:-?}, C++11 ABI $TORCH_ABI, LibTorch $TORCH_CMAKE"
  if [ -n "$NCCL" ]; then
    say "NCCL ${NCCL_VERSION:+$NCCL_VERSION }$NCCL"
  else
    say "warning: no libnccl.so.2 in the wheel (torch/lib, nvidia/nccl/lib): --backend nccl needs M4FORGE_NCCL_LIBRARY set by hand"
  fi
fi

# --- nvcc: LibTorch's CUDA CMake config needs the toolkit.
NVCC=${CUDACXX:-$(command -v nvcc || true)}
[ -n "$NVCC" ] || for c in /usr/local/cuda/bin/nvcc "${CUDA_HOME:-/nonexistent}/bin/nvcc"; do [ -x "$c" ] && NVCC=$c && break; done
if [ -n "$NVCC" ] && [ -x "$NVCC" ]; then
  nvcc_version=$("$NVCC" --version | grep -oE 'release [0-9.]+' | cut -d' ' -f2)
  CUDA_ROOT=$(dirname "$(dirname "$NVCC")")
  say "nvcc $nvcc_version ($NVCC)"
  if [ -n "$TORCH_CUDA" ] && [ "${TORCH_CUDA%%.*}" != "${nvcc_version%%.*}" ]; then
    say "warning: the wheel is built for CUDA $TORCH_CUDA, nvcc is $nvcc_version: another major version may not link"
  fi
elif [ $PREPARE_ONLY = 1 ]; then
  NVCC="" CUDA_ROOT=""
  say "no nvcc (not needed for --prepare-only)"
else
  die "no nvcc on PATH, in /usr/local/cuda/bin or \$CUDA_HOME/bin: install the CUDA toolkit or set CUDACXX=<path to nvcc>"
fi
[ -z "$TORCH_CUDA" ] || [ "$TORCH_CUDA" != none ] || [ $PREPARE_ONLY = 1 ] ||
  die "torch $TORCH_VERSION has no CUDA (a CPU wheel): install a CUDA wheel (e.g. pip install torch --index-url https://download.pytorch.org/whl/cu128)"

# --- headers the wheel bundles in other versions than Debian's (fmt, at least in some
# wheels): the Debian ones come first, through -I, which GCC searches before any -isystem.
FIRST=$BUILD/include-first
rm -rf "$FIRST"
if [ -n "$TORCH_CMAKE" ]; then
  torch_inc=$(dirname "$TORCH_LIB")/include
  for entry in "$torch_inc"/*; do
    name=$(basename "$entry")
    if [ -e "$P/usr/include/$name" ]; then
      mkdir -p "$FIRST"
      ln -s "$P/usr/include/$name" "$FIRST/$name"
    fi
  done
  [ ! -d "$FIRST" ] || say "include order: Debian's $(find "$FIRST" -mindepth 1 -printf '%f ')before the wheel's $torch_inc"
fi

# --- what a shell needs to run the binaries, and what CMake needs to find the prefix.
RUN_LIBS=$LIBDIRS
[ -z "$NV_LIBS" ] || RUN_LIBS=$NV_LIBS:$RUN_LIBS
[ -z "$TORCH_LIB" ] || RUN_LIBS=$TORCH_LIB:$RUN_LIBS
{
  echo "# Written by cluster/build-cuda.sh: source it to build, run and test $BUILD."
  echo "#   source $BUILD/cuda-env.sh"
  echo "# LibTorch's and the wheel's CUDA libraries, then the Debian ones in $P"
  echo "# (Open MPI finds its components through OPAL_PREFIX; mpirun is $BIN/mpirun)."
  echo "export LD_LIBRARY_PATH=\"$RUN_LIBS\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
  echo "export OPAL_PREFIX=\"$P/usr\""
  echo "export PATH=\"$BIN:\$PATH\""
  if [ -n "$NCCL" ]; then
    echo "export M4FORGE_NCCL_LIBRARY=\"$NCCL\""
  else
    echo "# No libnccl.so.2 found in the wheel: export M4FORGE_NCCL_LIBRARY=<path> for --backend nccl."
  fi
} > "$BUILD/cuda-env.sh"
config_dirs=$(find "$P/usr" \( -name '*Config.cmake' -o -name '*-config.cmake' \) -path '*/cmake/*' | sort)
{
  echo "# Written by cluster/build-cuda.sh: the Debian libraries unpacked in $P (cmake -C)."
  echo "set(CMAKE_PREFIX_PATH \"$P/usr\" CACHE STRING \"\")"
  # Named, so a CMake that does not know Debian's multiarch folder still finds them.
  while IFS= read -r f; do
    name=$(basename "$f"); name=${name%Config.cmake}; name=${name%-config.cmake}
    echo "set(${name}_DIR \"$(dirname "$f")\" CACHE PATH \"\")"
  done <<< "$config_dirs"
  echo "set(CMAKE_LIBRARY_PATH \"$P/usr/lib/$ARCH;$P/lib/$ARCH\" CACHE STRING \"\")"
  echo "set(CMAKE_INCLUDE_PATH \"$P/usr/include\" CACHE STRING \"\")"
  echo "set(OPENSSL_ROOT_DIR \"$P/usr\" CACHE PATH \"\")"
  echo "set(PKG_CONFIG_EXECUTABLE \"$BIN/pkg-config\" CACHE FILEPATH \"\")"
  echo "set(MPI_CXX_COMPILER \"$BIN/mpicxx\" CACHE FILEPATH \"\")"
  echo "set(MPIEXEC_EXECUTABLE \"$BIN/mpirun\" CACHE FILEPATH \"\")"
  # The linker resolves the libraries' own dependencies (libmpi -> libopen-pal) in the prefix too.
  echo "set(CMAKE_EXE_LINKER_FLAGS \"-Wl,-rpath-link,$LIBDIRS\" CACHE STRING \"\")"
  echo "set(CMAKE_SHARED_LINKER_FLAGS \"-Wl,-rpath-link,$LIBDIRS\" CACHE STRING \"\")"
} > "$BUILD/cuda-prefix.cmake"
say "wrote $BUILD/cuda-env.sh and $BUILD/cuda-prefix.cmake"
if [ $PREPARE_ONLY = 1 ]; then
  say "--prepare-only: stopping before cmake"
  exit 0
fi

# --- configure and build everything (m4forge, tests, benches) against the wheel's LibTorch.
command -v cmake >/dev/null || die "no cmake on PATH (the project needs >= 3.22)"
cmake_version=$(cmake --version | head -1 | grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?')
version_ge "$cmake_version" 3.22 || die "cmake $cmake_version is older than the 3.22 the project needs (pip install cmake)"
GEN=()
if [ -f "$BUILD/CMakeCache.txt" ]; then
  :  # keep the generator the folder was configured with
elif command -v ninja >/dev/null; then
  GEN=(-G Ninja)
elif "$P/usr/bin/ninja" --version >/dev/null 2>&1; then
  GEN=(-G Ninja -DCMAKE_MAKE_PROGRAM="$P/usr/bin/ninja")
else
  GEN=(-G "Unix Makefiles")
fi
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
CUDA_ARCHS=${CMAKE_CUDA_ARCHITECTURES:-$(echo "$TORCH_CUDA_ARCH_LIST" | tr -s ' ;' '\n' | sed -n 's/^\([0-9]*\)\.\([0-9a-z]*\).*/\1\2/p' | paste -sd';')}
CXX_FLAGS=()
[ ! -d "$FIRST" ] || CXX_FLAGS=(-DCMAKE_CXX_FLAGS="-I$FIRST")
# shellcheck source=/dev/null
. "$BUILD/cuda-env.sh"
# M4FORGE_ONEDNN=OFF: the wheel's LibTorch carries its own oneDNN inside it (and MKL for f32
# CPU GEMMs); a system libdnnl beside it would be a second copy. Training steps run on the GPU.
say "configuring $BUILD (CUDA architectures $CUDA_ARCHS, TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST)"
cmake -S "$SRC" -B "$BUILD" "${GEN[@]}" -C "$BUILD/cuda-prefix.cmake" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$TORCH_CMAKE;$P/usr" \
  -DCMAKE_CXX_COMPILER="$(command -v "$CXX")" \
  -DM4FORGE_CUDA=ON \
  -DM4FORGE_ONEDNN=OFF \
  -DCMAKE_CUDA_COMPILER="$NVCC" -DCUDAToolkit_ROOT="$CUDA_ROOT" -DCUDA_TOOLKIT_ROOT_DIR="$CUDA_ROOT" \
  -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS" -DTORCH_CUDA_ARCH_LIST="$TORCH_CUDA_ARCH_LIST" \
  "${CXX_FLAGS[@]}" "${EXTRA_CMAKE[@]}"
# TARGETS="a b": only those (bench/gpu_check.sh builds three to fit its 10 minutes).
read -r -a targets <<< "${TARGETS:-}"
cmake --build "$BUILD" -j "${JOBS:-$(nproc)}" ${targets[@]+--target "${targets[@]}"}
say "built $BUILD; to run: source $BUILD/cuda-env.sh && $BUILD/cli/m4forge --version && (cd $BUILD && ctest)"
