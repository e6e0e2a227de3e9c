"""Helpers of `benchmarks/bench_gpu.py`: timing, models, peers, targets and the report.

Framework-specific modules (`keras_tf`, `torch_peer`, `jax_peer`) are imported only where
they run: the PyTorch and Keras-on-JAX peers run in a subprocess (`peer_worker`), so that a
missing or broken peer never stops the TensorFlow run.
"""
