#!/usr/bin/env bash
# WordNet noun glosses -> topic classification JSONL -> HDF5 (mAIBench T8 stand-in
# for ag_news-style text classification).
#
# Debian package: wordnet-base (/usr/share/wordnet/data.noun), WordNet 3.0
# License: WordNet 3.0 license (BSD-like, Princeton University; see
#          /usr/share/doc/wordnet-base/copyright); Debian packaging GPL-2+.
# Builds: OUT_DIR/train.h5 and OUT_DIR/test.h5 with text=the synset's definition
#         (WordNet gloss without the quoted usage examples), label = the synset's
#         lexicographer file (lex_filenum 03..28): 26 classes noun.Tops, noun.act,
#         noun.animal, ..., noun.time (label index = lex_filenum - 3).
#         Split: synset offset -> SHA-256 -> 20% test, 80% train; then capped at
#         2000 train / 400 test per class (first items in hash order) to keep the
#         big classes (artifact, person, plant, ...) from swamping the small ones.
#         Result: 34548 train / 7357 test; per-class counts in OUT_DIR/raw/counts.tsv.
#         Small classes stay small: noun.Tops 42/9, noun.motive 33/7.
# How: scripts/data/wordnet_topics.py (python3 stdlib), then --format jsonl.
# Usage: bash scripts/data/wordnet_topics.sh [OUT_DIR]   (default datasets/wordnet_topics)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
m4_init wordnet_topics "$@"
m4_need_pkgs wordnet-base python3

VER="$(m4_pkg_version wordnet-base)"
SOURCE="WordNet 3.0 noun glosses by lexicographer file, Debian package wordnet-base $VER"
LICENSE="WordNet 3.0 license (Princeton University)"

mkdir -p "$M4_TMP/raw"
LABELS="$(python3 "$M4_SCRIPTS_DIR/wordnet_topics.py" /usr/share/wordnet/data.noun "$M4_TMP/raw" 2000 400 20)"
m4_log "$(tail -1 "$M4_TMP/raw/counts.tsv")"
for split in train test; do
  m4_import "$split" --format jsonl --jsonl "raw/$split.jsonl" \
    --source "$SOURCE" --license "$LICENSE" --label-names "$LABELS"
done
m4_finish
