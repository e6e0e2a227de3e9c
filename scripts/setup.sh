#!/usr/bin/env bash
# Sets up lenet_blocks on a fresh machine: the Fashion-MNIST data (Debian's package, where apt
# is available and the data is not there yet) and a virtual environment `.venv` with the
# package, its test tools and the ONNX export tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_DATA_DIR=/usr/share/datasets/fashion-mnist
if [ ! -d "$DEBIAN_DATA_DIR" ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing Debian's dataset-fashion-mnist into $DEBIAN_DATA_DIR"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist); then
    echo "setup: could not install dataset-fashion-mnist; training will use another copy" \
      "(--data-dir, LENET_BLOCKS_DATA_DIR, ~/.keras/datasets) or Keras' download." >&2
  fi
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[all]"
echo "setup: ready ($(.venv/bin/python -c 'import lenet_blocks; print("lenet_blocks", lenet_blocks.__version__)'))"
