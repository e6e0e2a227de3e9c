"""Helpers of `benchmarks/bench_gpu.py`: the timing core (`timing`), Keras steps on the backend
in use (`keras_steps`), the sweep (`sweep`), time to accuracy (`accuracy`), the optional
PyTorch peer (`torch_peer`), the device (`environment`) and what a run writes (`results`).
"""
