# Shared helpers for scripts/data/<name>.sh (sourced, not run).
#
# Each dataset script:  bash scripts/data/<name>.sh [OUT_DIR]
#   OUT_DIR   default datasets/<name> (relative to the repository root)
#   M4FORGE   env, default build/cli/m4forge (the binary that runs `data import`)
#   M4FORGE_SKIP_IMPORT=1  only build the raw form (OUT_DIR/raw), no HDF5
#
# Layout written: OUT_DIR/raw/...   (the raw form: IDX / CSV+PNG / JSONL / CSV+WAV)
#                 OUT_DIR/train.h5, OUT_DIR/test.h5
# Everything is first written into OUT_DIR.tmp.XXXX and moved into place at the
# end, so an interrupted run leaves the previous OUT_DIR untouched; a re-run
# rebuilds the same bytes (fixed seeds, sorted inputs).
set -euo pipefail

M4_SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
M4_REPO_ROOT="$(cd "$M4_SCRIPTS_DIR/../.." && pwd)"
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
export LC_ALL=C.UTF-8

m4_log() { echo "[$M4_NAME] $*" >&2; }
m4_die() { echo "[$M4_NAME] error: $*" >&2; exit 1; }

# m4_init NAME "$@"  -> sets M4_NAME, M4_OUT (final dir), M4_TMP (work dir), M4FORGE
m4_init() {
  M4_NAME="$1"; shift
  local out="${1:-$M4_REPO_ROOT/datasets/$M4_NAME}"
  case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
  M4_OUT="$out"
  M4FORGE="${M4FORGE:-$M4_REPO_ROOT/build/cli/m4forge}"
  case "$M4FORGE" in /*) ;; */*) M4FORGE="$PWD/$M4FORGE" ;; esac
  if [ "${M4FORGE_SKIP_IMPORT:-0}" != 1 ] && [ ! -x "$M4FORGE" ]; then
    m4_die "$M4FORGE not found (build it: scripts/build.sh, or set M4FORGE=...; M4FORGE_SKIP_IMPORT=1 builds the raw form only)"
  fi
  mkdir -p "$(dirname "$M4_OUT")"
  M4_TMP="$(mktemp -d "$M4_OUT.tmp.XXXXXX")"
  trap 'rm -rf "$M4_TMP"' EXIT
  M4_T0=$(date +%s)
  m4_log "building into $M4_OUT"
}

# m4_need_pkgs PKG... : install missing Debian packages
m4_need_pkgs() {
  local missing=() p sudo=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  m4_log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# m4_pkg_version PKG
m4_pkg_version() { dpkg-query -W -f='${Version}' "$1"; }

# m4_import SPLIT ARGS... : m4forge data import ... --out SPLIT.h5 --split SPLIT, run inside
# the work dir so that paths (and the created_by attribute) are relative: raw/train.csv
m4_import() {
  local split="$1"; shift
  if [ "${M4FORGE_SKIP_IMPORT:-0}" = 1 ]; then
    m4_log "M4FORGE_SKIP_IMPORT=1: not importing $split"; return 0
  fi
  if [ ! -x "$M4FORGE" ]; then
    m4_die "$M4FORGE not found (build it: scripts/build.sh, or set M4FORGE=...; M4FORGE_SKIP_IMPORT=1 builds the raw form only)"
  fi
  m4_log "import $split"
  (cd "$M4_TMP" && "$M4FORGE" data import "$@" --out "$split.h5" --split "$split")
}

# m4_finish : move the finished temp dir into place (replacing an old OUT_DIR)
m4_finish() {
  local old=""
  if [ -e "$M4_OUT" ]; then old="$(mktemp -d "$M4_OUT.old.XXXXXX")"; mv "$M4_OUT" "$old/"; fi
  chmod 755 "$M4_TMP"
  mv "$M4_TMP" "$M4_OUT"
  trap - EXIT
  if [ -n "$old" ]; then rm -rf "$old"; fi
  m4_log "done in $(( $(date +%s) - M4_T0 )) s -> $M4_OUT"
  ls -l "$M4_OUT" >&2
}
