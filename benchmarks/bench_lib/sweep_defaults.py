"""The sweep's defaults, shared by `bench_gpu.py` (TensorFlow) and `bench_keras_jax.py` (JAX)."""

from __future__ import annotations

from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"
"""Where results go by default: `benchmarks/results/<device slug>`."""
GPU_BATCH_SIZES = (32, 128, 512, 2048, 8192, 16384)
CPU_BATCH_SIZES = (32, 256, 2048)
QUICK_BATCH_SIZES = (32, 256)
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
"""The Keras dtype policies swept, where the device runs them natively."""
