#!/usr/bin/env bash
# Fashion-MNIST -> HDF5 (image classification, mAIBench T23 stand-in).
#
# Debian package: dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)
# License: Expat (MIT), Zalando Research (see /usr/share/doc/dataset-fashion-mnist/copyright)
# Builds: OUT_DIR/train.h5 (60000 images), OUT_DIR/test.h5 (10000 images),
#         1x28x28 uint8 grayscale, 10 classes: T-shirt/top, Trouser, Pullover,
#         Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot (6000/1000 per class).
# How: the package's IDX files are imported as they are (--format idx); the
#      official train/test split is kept. Deterministic by construction.
# Usage: bash scripts/data/fashion_mnist.sh [OUT_DIR]   (default datasets/fashion_mnist)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
m4_init fashion_mnist "$@"
m4_need_pkgs dataset-fashion-mnist

SRC=/usr/share/datasets/fashion-mnist
LABELS="T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot"
VER="$(m4_pkg_version dataset-fashion-mnist)"
SOURCE="Fashion-MNIST (Zalando Research), Debian package dataset-fashion-mnist $VER"
LICENSE="Expat (MIT)"

mkdir -p "$M4_TMP/raw"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
  [ -r "$SRC/$f" ] || m4_die "missing $SRC/$f"
  ln -s "$SRC/$f" "$M4_TMP/raw/$f"
done

m4_import train --format idx --images "$SRC/train-images-idx3-ubyte.gz" \
  --labels "$SRC/train-labels-idx1-ubyte.gz" --source "$SOURCE" --license "$LICENSE" --label-names "$LABELS"
m4_import test --format idx --images "$SRC/t10k-images-idx3-ubyte.gz" \
  --labels "$SRC/t10k-labels-idx1-ubyte.gz" --source "$SOURCE" --license "$LICENSE" --label-names "$LABELS"
m4_finish
