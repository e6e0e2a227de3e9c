"""`bench_gpu.py` (same arguments) on Keras' JAX backend, which needs no TensorFlow: the lent
GPU machine's image has JAX with CUDA and PyTorch, but no TensorFlow. It sets
`KERAS_BACKEND=jax` itself; default output: benchmarks/results/<device>-keras-jax.

    python benchmarks/bench_keras_jax.py --models notebook --precisions float32 mixed_bfloat16
"""

import os
import sys

os.environ["KERAS_BACKEND"] = os.environ.get("KERAS_BACKEND") or "jax"
if os.environ["KERAS_BACKEND"] != "jax":
    raise SystemExit(
        "bench_keras_jax.py measures Keras on JAX. Received: "
        f"KERAS_BACKEND={os.environ['KERAS_BACKEND']!r}; unset it or set it to 'jax'."
    )
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave GPU memory to PyTorch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_gpu  # after the backend is set

if __name__ == "__main__":
    sys.exit(bench_gpu.main())
