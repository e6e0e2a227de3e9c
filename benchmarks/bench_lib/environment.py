"""What was measured on (device, CPU, libraries) and the bound that the device's peak FLOP/s
and the network's FLOPs put on throughput. Only the backend in use is imported."""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import re
import subprocess
import sys

import keras

from bench_lib.cpu import cpu_info

BACKEND = keras.backend.backend()
PEAK_FP32_FLOPS = {
    "NVIDIA H200": 67e12,
    "NVIDIA H100 80GB HBM3": 67e12,
    "NVIDIA H100 PCIe": 51e12,
    "NVIDIA A100-SXM4-80GB": 19.5e12,
    "NVIDIA A100-SXM4-40GB": 19.5e12,
    "NVIDIA A100 80GB PCIe": 19.5e12,
    "NVIDIA L4": 30.3e12,
    "Tesla T4": 8.1e12,
}
"""Dense FP32 peak FLOP/s (no Tensor Cores) from NVIDIA's data sheets, by the device name the
driver reports; any other device's peak is unknown."""
LIBRARIES = ("tensorflow", "jax", "jaxlib", "torch", "numpy")


def nvidia_smi() -> str | None:
    """`nvidia-smi`'s name, driver, memory and compute capability of each GPU, or `None`."""
    query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap"]
    try:
        process = subprocess.run(
            [*query, "--format=csv,noheader"], capture_output=True, text=True, timeout=30
        )
    except FileNotFoundError:
        return None
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"nvidia-smi failed: {error}"
    return process.stdout.strip() or process.stderr.strip()


def device_slug(name: str) -> str:
    """A device's name as a folder name.

    Example:
    >>> device_slug("NVIDIA H200")
    'nvidia-h200'
    """
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def _accelerator() -> tuple[str, str, tuple | None] | None:
    """`(placement, name, compute capability)` of the backend's first GPU, or `None`."""
    if BACKEND == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "cpu":
            return None
        capability = re.fullmatch(r"(\d+)\.(\d+)", str(getattr(device, "compute_capability", "")))
        return str(device), device.device_kind, capability and tuple(map(int, capability.groups()))
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:  # leave GPU memory to the peers
        tf.config.experimental.set_memory_growth(gpu, True)
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    capability = details.get("compute_capability")
    return "/GPU:0", details.get("device_name", gpus[0].name), capability and tuple(capability)


def describe_device() -> dict:
    """The device Keras computes on (its backend's first GPU, else the CPU), the CPU and the
    load now; call it first (it sets TensorFlow's GPU memory growth). `slug`: `cpu` or the
    GPU's name (with `-keras-<backend>` off TensorFlow), the default results folder."""
    cpu_model, cpu_flags = cpu_info()
    accelerator = _accelerator()
    placement, name, capability = accelerator or ("cpu", cpu_model, None)
    slug = device_slug(name) if accelerator else "cpu"
    return {
        "kind": "gpu" if accelerator else "cpu",
        "name": name,
        "slug": slug if BACKEND == "tensorflow" else f"{slug}-keras-{BACKEND}",
        "placement": placement,
        "compute_capability": list(capability) if capability else None,
        "peak_fp32_flops": PEAK_FP32_FLOPS.get(name) if accelerator else None,
        "nvidia_smi": nvidia_smi(),
        "cpu_model": cpu_model,
        "cpu_flags": cpu_flags,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "load_average_at_start": list(os.getloadavg()),
    }


def precision_support(device: dict) -> dict[str, str | None]:
    """For each Keras dtype policy: `None` if the device runs it natively, else why it is
    skipped. CPUs have no native float16 kernels (emulated); NVIDIA GPUs need compute
    capability 7.0 for float16 and 8.0 for bfloat16 Tensor Cores.

    Example:
    >>> precision_support({"kind": "gpu", "compute_capability": [9, 0]})["mixed_bfloat16"] is None
    True
    """
    if device["kind"] == "cpu":
        reason = "no native float16 kernels on CPU (emulated); mixed_bfloat16 is the CPU's"
        return {"float32": None, "mixed_float16": reason, "mixed_bfloat16": None}
    capability = tuple(device.get("compute_capability") or ())
    support = {"float32": None}
    for policy, needed in (("mixed_float16", (7, 0)), ("mixed_bfloat16", (8, 0))):
        support[policy] = None
        if not capability:
            support[policy] = "the GPU's compute capability is unknown (not an NVIDIA GPU?)"
        elif capability < needed:
            support[policy] = f"needs compute capability {needed}, this GPU has {capability}"
    return support


def library_versions() -> dict:
    """Python, Keras and its backend, and each of `LIBRARIES` that this run has imported."""
    versions = {"python": platform.python_version(), "keras": keras.__version__}
    versions["keras_backend"] = BACKEND
    for name in ("lenet_blocks", *LIBRARIES):
        if name in sys.modules:
            versions[name] = importlib.metadata.version(name)
    return {**versions, "platform": platform.platform()}


def training_flops_per_sample(model: keras.Model) -> int:
    """FLOPs of one training sample: 2 per multiply-add of every convolution and dense layer
    in the forward pass, twice that again backwards (gradients of the weights and of the
    inputs), less the input gradient of the first such layer (the images need none). Composite
    layers are opened through their `stages`, as `lenet_blocks.shape_walk` does.

    Example:
    >>> from lenet_blocks import build_lenet
    >>> training_flops_per_sample(build_lenet("notebook"))
    1517040
    """
    shape, flops = model.input_shape, []
    for layer in model.layers:
        for stage in getattr(layer, "stages", [layer]):
            if isinstance(stage, keras.layers.InputLayer):
                continue
            output = stage.compute_output_shape(shape)
            kernel = getattr(stage, "kernel", None)
            if kernel is not None and len(kernel.shape) >= 2:
                positions = output[1:-1] if len(kernel.shape) > 2 else shape[1:-1]
                flops.append(2 * math.prod(kernel.shape) * math.prod(positions))
            shape = output
    return 3 * sum(flops) - (flops[0] if flops else 0)


def throughput_bound(device: dict, flops_per_sample: int) -> float | None:
    """Training samples/s at the device's FP32 peak, `None` where the peak is unknown.

    Example:
    >>> throughput_bound({"peak_fp32_flops": 67e12}, 1517040) > 4e7
    True
    """
    peak = device.get("peak_fp32_flops")
    return peak / flops_per_sample if peak else None
