#!/usr/bin/env bash
# Sets up the extra Keras backends of lenet_blocks, each in its own virtual environment:
#   .venv-jax    the package with its test tools, plus JAX (CPU) and jax2onnx (export-jax)
#   .venv-torch  the package with its test tools, plus PyTorch 2.13.0 (CPU build) and
#                litert-torch (export-torch)
# The package depends on TensorFlow, so TF is installed in both too (tf.data and the loader
# use it); the backend is chosen at run time by KERAS_BACKEND=jax / KERAS_BACKEND=torch.
#
# Usage: bash scripts/setup_backends.sh [jax] [torch]     (default: both). Safe to run again.
# torch is pinned to 2.13.0: that is the CPU build pip finds on this machine's disk; an
# unpinned torch pulls a CUDA build of several GB.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
BACKENDS=("$@")
[ ${#BACKENDS[@]} -gt 0 ] || BACKENDS=(jax torch)

for backend in "${BACKENDS[@]}"; do
  case "$backend" in
    jax) extra=(".[all,export-jax]" jax) ;;
    torch) extra=(".[all,export-torch]" torch==2.13.0) ;;
    *)
      echo "setup_backends: unknown backend '$backend' (expected jax or torch)" >&2
      exit 2
      ;;
  esac
  venv=".venv-$backend"
  started=$(date +%s)
  [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
  # Keep git, ruff and pytest out of the environment (Python >= 3.13's venv does this itself).
  echo "*" >"$venv/.gitignore"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e "${extra[@]}"
  version=$(KERAS_BACKEND="$backend" "$venv/bin/python" -c \
    'import keras, lenet_blocks; print(f"keras {keras.__version__} on {keras.backend.backend()}")')
  echo "setup_backends: $venv ready ($version) in $(($(date +%s) - started)) s"
done
