#!/usr/bin/env bash
# German->English sentence pairs from the Ding dictionary -> JSONL -> HDF5
# (mAIBench T4 machine translation, de-en direction).
#
# Debian package: trans-de-en (/usr/share/trans/de-en, Ding dictionary by Frank Richter,
#                 TU Chemnitz)
# License: GPL-2+ (see /usr/share/doc/trans-de-en/copyright)
# Builds: OUT_DIR/train.h5, OUT_DIR/test.h5 with text=German, target_text=English.
#         Only the dictionary's example SENTENCES are used, not headwords: each line is
#         "DE :: EN", both sides split on " | " into aligned sub-entries; a pair is kept
#         when both sides, after removing markup ({f} {pl} {vt} [ugs.] [techn.] <...>),
#         are a single sentence (capitalised, ending in . ! or ?), >= 4 words, <= 300 chars,
#         with no alternatives ';' '/' '|', no parentheses and no placeholders
#         (jdn./etw./sb./sth.). Deduplicated on the German side.
#         Split: SHA-256 of the German sentence -> 10% test. 12665 train / 1385 test.
# How: scripts/data/translation_de_en.py (python3 stdlib), then --format jsonl.
# Caveat: dictionary examples, not running text; English side is one translation
#         (a single reference) and sometimes idiomatic rather than literal.
# Usage: bash scripts/data/translation_de_en.sh [OUT_DIR] (default datasets/translation_de_en)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
m4_init translation_de_en "$@"
m4_need_pkgs trans-de-en python3

VER="$(m4_pkg_version trans-de-en)"
SOURCE="Ding de-en dictionary example sentences (Frank Richter, TU Chemnitz), Debian package trans-de-en $VER"
LICENSE="GPL-2+"

mkdir -p "$M4_TMP/raw"
SUMMARY="$(python3 "$M4_SCRIPTS_DIR/translation_de_en.py" /usr/share/trans/de-en "$M4_TMP/raw" 10 4)"
read -r NTRAIN NTEST <<<"$SUMMARY"
m4_log "pairs: train $NTRAIN, test $NTEST"
for split in train test; do
  m4_import "$split" --format jsonl --jsonl "raw/$split.jsonl" --source "$SOURCE" --license "$LICENSE"
done
m4_finish
