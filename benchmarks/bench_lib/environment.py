"""What was measured on: the device, the CPU, the driver, the libraries and the machine's load.

TensorFlow is imported only by the functions that ask it (`describe_device`,
`library_versions`), so that the Keras-on-JAX benchmark runs where TensorFlow is not installed.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys

import keras
import numpy as np

import lenet_blocks
from bench_lib.peers import PEERS, installed_version

CPU_FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")


def cpu_model() -> str:
    """The CPU's `model name` from /proc/cpuinfo (else `platform.processor()`)."""
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """Which of `CPU_FLAGS_OF_INTEREST` (vector and bfloat16 units) the CPU has."""
    try:
        with open("/proc/cpuinfo") as file:
            text = file.read()
    except OSError:
        return []
    match = re.search(r"^flags\s*:(.*)$", text, flags=re.MULTILINE)
    flags = set(match.group(1).split()) if match else set()
    return [flag for flag in CPU_FLAGS_OF_INTEREST if flag in flags]


def nvidia_smi() -> str | None:
    """`nvidia-smi`'s name, driver and memory of each GPU, or `None` without nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = "--query-gpu=name,driver_version,memory.total,compute_cap"
    try:
        process = subprocess.run(
            ["nvidia-smi", query, "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"nvidia-smi failed: {error}"
    return process.stdout.strip() or process.stderr.strip()


def device_slug(name: str) -> str:
    """A GPU's name as a folder name.

    Example:
    >>> device_slug("NVIDIA H200")
    'nvidia-h200'
    """
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def describe_cpu() -> dict:
    """The CPU's model, flags of interest, logical and usable CPUs, and the load average now."""
    return {
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def describe_device() -> dict:
    """The device TensorFlow computes on: its first GPU when it sees one, else the CPU.

    Call it before TensorFlow runs anything: it turns on memory growth on the GPUs, so that
    TensorFlow does not take the memory the peers' subprocesses need.

    `kind` is `"gpu"` or `"cpu"`; `slug` names the default results folder (`cpu`, or the GPU's
    name such as `nvidia-h200`); `compute_capability` is set for NVIDIA GPUs.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:  # leave GPU memory to the peers' subprocesses
        tf.config.experimental.set_memory_growth(gpu, True)
    cpu = describe_cpu()
    if not gpus:
        return {
            "kind": "cpu",
            "name": cpu["cpu_model"],
            "slug": "cpu",
            "tensorflow_device": "/CPU:0",
            "compute_capability": None,
            "gpu_count": 0,
            "nvidia_smi": nvidia_smi(),
            **cpu,
        }
    details = tf.config.experimental.get_device_details(gpus[0])
    name = details.get("device_name", gpus[0].name)
    capability = details.get("compute_capability")
    return {
        "kind": "gpu",
        "name": name,
        "slug": device_slug(name),
        "tensorflow_device": "/GPU:0",
        "compute_capability": list(capability) if capability else None,
        "gpu_count": len(gpus),
        "nvidia_smi": nvidia_smi(),
        **cpu,
    }


def precision_support(device: dict) -> dict[str, str | None]:
    """For each Keras dtype policy: `None` if the device runs it natively, else why it is
    skipped. On CPU float16 has no native kernels in TensorFlow or XLA (it is emulated), so
    `mixed_float16` is skipped; `mixed_bfloat16` runs on any CPU (natively with AVX512-BF16 or
    AMX). NVIDIA GPUs need compute capability 7.0 for float16 and 8.0 for bfloat16 Tensor Cores;
    a GPU without a known compute capability (`[major, minor]`) runs float32 only.

    Example:
    >>> precision_support({"kind": "gpu", "compute_capability": [9, 0]})["mixed_bfloat16"] is None
    True
    """
    if device["kind"] == "cpu":
        return {
            "float32": None,
            "mixed_bfloat16": None,
            "mixed_float16": "no native float16 kernels on CPU (emulated); "
            "mixed_bfloat16 is the CPU's mixed precision",
        }
    if not device.get("compute_capability"):
        reason = "the GPU's compute capability is unknown (not an NVIDIA GPU?)"
        return {"float32": None, "mixed_float16": reason, "mixed_bfloat16": reason}
    capability = tuple(device["compute_capability"])
    return {
        "float32": None,
        "mixed_float16": None
        if capability >= (7, 0)
        else f"float16 Tensor Cores need compute capability 7.0, this GPU has {capability}",
        "mixed_bfloat16": None
        if capability >= (8, 0)
        else f"bfloat16 Tensor Cores need compute capability 8.0, this GPU has {capability}",
    }


def library_versions() -> dict:
    """Versions of Python, the libraries measured, the peers (or `None`) and the platform."""
    import tensorflow as tf

    return {
        "python": sys.version.split()[0],
        "lenet_blocks": lenet_blocks.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "numpy": np.__version__,
        **{peer: installed_version(peer) for peer in PEERS},
        "tensorflow_build": {
            key: value
            for key, value in tf.sysconfig.get_build_info().items()
            if key in ("cuda_version", "cudnn_version", "is_cuda_build")
        },
        "platform": platform.platform(),
    }
