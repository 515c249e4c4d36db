#!/usr/bin/env bash
# Open Clip Art drawings -> 64x64 PNG + caption text + topic label -> image-csv -> HDF5
# (captioning / text-to-image retrieval / 18-way topic classification; small stand-in).
#
# Debian packages: openclipart-svg (/usr/share/openclipart/svg, Open Clip Art Library 0.18),
#                  librsvg2-bin (rsvg-convert, LGPL-2+)
# License: public domain (Creative Commons Public Domain Dedication; per-drawing authors in
#          the SVG metadata; see /usr/share/doc/openclipart-svg/copyright)
# Builds: OUT_DIR/train.h5, OUT_DIR/test.h5: 3x64x64 RGB, white background, drawing
#         scaled to fit (aspect kept) and centred. label = top-level folder (18 classes:
#         animals buildings computer containers decorations education electronics food
#         geography office people plants recreation science shapes signs_and_symbols tools
#         transportation; "unsorted", "special", "buttons", "logos" left out).
#         text = the drawing's title from its RDF metadata (<cc:Work><dc:title>), or the
#         cleaned file name when the title is missing or is a collection name shared by
#         >= 5 drawings ("Part of the Flat Icon Collection", ...), plus up to 5 of its
#         dc:subject keywords in parentheses.
#         Selection: byte-identical SVGs (same file in two folders, 663) are counted once;
#         per class the drawings are ordered by SHA-256 of their path, rendered, and the
#         first 200 that render to a non-blank 64x64 PNG are kept; failures / blank renders
#         are counted in OUT_DIR/raw/counts.tsv. Every 10th kept drawing (in that order) -> test.
#         Result: 2282 drawings: train 2049, test 233 (3 blank renders skipped, 0 failures).
#         raw/{train,test}_sources.tsv maps each PNG to its SVG.
# How: scripts/data/openclipart.py (python3 stdlib, rsvg-convert), then --format image-csv
#      (CSV columns file,label,text; RFC 4180 quoting: text may contain commas).
# Caveat: clip art, not photos; captions are titles/keywords (often terse, some Italian,
#         some file names). Classes are folder topics and overlap (a dog icon may be in "computer").
# Usage: bash scripts/data/openclipart.sh [OUT_DIR] (default datasets/openclipart)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
m4_init openclipart "$@"
m4_need_pkgs openclipart-svg librsvg2-bin python3

SOURCE="Open Clip Art Library 0.18 drawings rendered 64x64 with rsvg-convert, Debian package openclipart-svg $(m4_pkg_version openclipart-svg)"
LICENSE="Public domain (Creative Commons Public Domain Dedication)"

mkdir -p "$M4_TMP/raw"
SUMMARY="$(python3 "$M4_SCRIPTS_DIR/openclipart.py" "$M4_TMP/raw" 64 200 10)"
read -r NTRAIN NTEST LABELS <<<"$SUMMARY"
m4_log "drawings: train $NTRAIN, test $NTEST"
for split in train test; do
  m4_import "$split" --format image-csv --csv "raw/$split.csv" \
    --source "$SOURCE" --license "$LICENSE" --label-names "$LABELS"
done
m4_finish
