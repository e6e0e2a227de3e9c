#!/usr/bin/env bash
# The GPU throughput run for a lent device machine whose image has JAX (CUDA) but no
# TensorFlow or Keras: benchmarks/bench_keras_jax.py, with Keras and the dependencies it may
# miss there carried as wheels (docs/benchmarks.md, "GPU").
#
#   bash scripts/device_keras_jax.sh fetch          # here: Python 3.12 wheels into .whl/
#   bash scripts/device_keras_jax.sh run [ARGS...]  # there, with .whl carried: the benchmark,
#                                                   # ARGS passed on; results and log in
#                                                   # $OUT/keras-jax
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(keras==3.15.1 namex==0.1.0 optree==0.20.0 typing_extensions==4.15.0)

case "${1:-}" in
  fetch)
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}"
    ls -l .whl
    ;;
  run)
    shift
    : "${OUT:?run this on the device machine, where OUT names the folder that comes back}"
    if ! ls .whl/keras-*.whl >/dev/null 2>&1; then
      echo "device_keras_jax: no .whl/keras-*.whl here: run 'fetch' first and name .whl in" \
        "the run's carry" >&2
      exit 2
    fi
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv || true
    mkdir -p "$OUT/keras-jax"
    python3 benchmarks/bench_keras_jax.py --output "$OUT/keras-jax" "$@" 2>&1 |
      tee "$OUT/keras-jax/log"
    ;;
  *)
    echo "usage: bash scripts/device_keras_jax.sh fetch | run [bench_keras_jax.py arguments]" >&2
    exit 2
    ;;
esac
