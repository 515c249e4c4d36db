#!/usr/bin/env bash
# Sound classification by Sonic Pi sample bank -> WAV + CSV -> HDF5
# (mAIBench audio-classification stand-in; small).
#
# Debian package: sonic-pi-samples (/usr/share/sonic-pi/samples/*.flac)
# License: CC0 for every sample file (freesound.org uploads; see
#          /usr/share/doc/sonic-pi-samples/copyright and samples/README.md).
#          libsndfile1 (LGPL-2.1+) decodes FLAC, libsamplerate0 (BSD-2-clause) resamples.
# Builds: 12 classes = the file-name prefix (Sonic Pi's bank name): ambi, bass, bd, drum,
#         elec, glitch, guit, loop, perc, sn, tabla, vinyl ("misc": 3 unrelated sounds and
#         "mehackit": a contributor's mixed bank are left out). 151 source files.
#         Split by SOURCE FILE (no file contributes to both): within each class, files
#         sorted by name, every 4th starting at index 1 -> test (>= 1 test file per class).
#         Each file: mono, peak-normalised to 0.9, resampled to 16 kHz, cut into up to 4
#         consecutive 2 s clips (later clips only while not near-silent, >= 1 s long),
#         zero-padded to exactly 2 s.
#         Result: train 156 clips (113 files), test 51 clips (38 files);
#         per class in OUT_DIR/raw/counts.tsv.
# How: scripts/data/audio_classification.py (python3 stdlib + ctypes), then
#      --format wav-csv --sample-rate 16000 --seconds 2.
# Caveat: tiny; classes are sample-bank names, not acoustic categories (snares occur in
#         "sn", "drum" and "elec"). Good for smoke tests and few-shot, not for a benchmark number.
# Usage: bash scripts/data/audio_classification.sh [OUT_DIR] (default datasets/audio_classification)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
m4_init audio_classification "$@"
m4_need_pkgs sonic-pi-samples libsndfile1 libsamplerate0 python3

SOURCE="Sonic Pi sample bank (freesound.org), Debian package sonic-pi-samples $(m4_pkg_version sonic-pi-samples); label = file-name prefix"
LICENSE="CC0-1.0"

mkdir -p "$M4_TMP/raw"
SUMMARY="$(python3 "$M4_SCRIPTS_DIR/audio_classification.py" "$M4_TMP/raw" 4)"
read -r NTRAIN NTEST LABELS <<<"$SUMMARY"
m4_log "clips: train $NTRAIN, test $NTEST; labels $LABELS"
for split in train test; do
  m4_import "$split" --format wav-csv --csv "raw/$split.csv" --sample-rate 16000 --seconds 2 \
    --source "$SOURCE" --license "$LICENSE" --label-names "$LABELS"
done
m4_finish
