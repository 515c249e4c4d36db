#!/usr/bin/env bash
# Spoken-digit keyword spotting (10 words "zero".."nine") -> WAV + CSV -> HDF5
# (mAIBench keyword-spotting stand-in). TRAIN IS SYNTHETIC, TEST IS REAL.
#
# Debian packages and licenses (see /usr/share/doc/<pkg>/copyright):
#   espeak-ng                    GPL-3+        (speech synthesizer; train only)
#   flite                        BSD-like CMU/Edinburgh license (synthesizer; train only)
#   asterisk-core-sounds-en-wav  CC-BY-SA-3.0  (recorded prompts, voice "Allison"; test only)
#   libsndfile1 (LGPL-2.1+), libsamplerate0 (BSD-2-clause): read / resample via ctypes
# Builds: OUT_DIR/train.h5: 3330 clips = 333 per word, ALL SYNTHETIC:
#           espeak-ng: 8 English accents (en, en-us, en-gb-scotland, en-gb-x-rp, en-029,
#             en-us-nyc, en-gb-x-gbclan, en-gb-x-gbcwmd) x 12 variants (default, m1..m7,
#             f1..f4) x 3 seeded (speed 110..210 wpm, pitch 20..80) = 288 per word;
#           flite: voices kal, kal16, awb, rms, slt x duration_stretch {0.8,1.0,1.3}
#             x f0 mean {90,120,170} Hz = 45 per word.
#         OUT_DIR/test.h5: 10 clips = the REAL recorded digits 0..9 of Asterisk's
#           en_US_f_Allison prompt set (8 kHz telephone recordings, one speaker).
#           Nothing synthetic is ever put in test.
#         Every clip: mono, 16 kHz, exactly 1 s, silence-trimmed, 16-bit WAV.
#         Train: band-limited through 8 kHz (like the telephone test set; set
#         KWS_TELEPHONE_BAND=0 for full band), peak gain 0.3..0.9 and a random offset in
#         the 1 s window (seeded per clip). Test: peak 0.7, centred.
# How: scripts/data/keyword_spotting.py (python3 stdlib + ctypes), then --format wav-csv
#      --sample-rate 16000 --seconds 1. Labels: zero,one,...,nine (index = digit).
# Caveat: the test set is tiny (10 clips, one speaker): it measures synthetic->real
#         transfer, with a granularity of 10% accuracy. Report it as such.
# Usage: bash scripts/data/keyword_spotting.sh [OUT_DIR] (default datasets/keyword_spotting)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
m4_init keyword_spotting "$@"
m4_need_pkgs espeak-ng flite asterisk-core-sounds-en-wav libsndfile1 libsamplerate0 python3

SRC_TRAIN="SYNTHETIC speech: espeak-ng $(m4_pkg_version espeak-ng) and flite $(m4_pkg_version flite) (Debian), words zero..nine"
SRC_TEST="REAL recordings: Asterisk core sounds en_US_f_Allison digits/0..9.wav, Debian package asterisk-core-sounds-en-wav $(m4_pkg_version asterisk-core-sounds-en-wav)"
LIC_TRAIN="synthesized audio (espeak-ng GPL-3+, flite CMU/Edinburgh BSD-like)"
LIC_TEST="CC-BY-SA-3.0"

mkdir -p "$M4_TMP/raw"
SUMMARY="$(python3 "$M4_SCRIPTS_DIR/keyword_spotting.py" "$M4_TMP/raw" 3 "${KWS_TELEPHONE_BAND:-1}")"
read -r NTRAIN NTEST LABELS <<<"$SUMMARY"
m4_log "clips: train $NTRAIN (synthetic), test $NTEST (real)"
m4_import train --format wav-csv --csv "raw/train.csv" --sample-rate 16000 --seconds 1 \
  --source "$SRC_TRAIN" --license "$LIC_TRAIN" --label-names "$LABELS"
m4_import test --format wav-csv --csv "raw/test.csv" --sample-rate 16000 --seconds 1 \
  --source "$SRC_TEST" --license "$LIC_TEST" --label-names "$LABELS"
m4_finish
