"""The CPU a run measures on and the instruction sets it can be held to, without Keras: the
cross-backend run (`bench_cpu.py`) decides here which instruction sets to measure before it
starts a process of any backend."""

from __future__ import annotations

import os
import platform
import re

KEYS = ("model name", "flags")  # of /proc/cpuinfo
FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")
"""The `/proc/cpuinfo` flags recorded: the vector and matrix extensions the kernels pick from."""
AVX2_CAP = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN: TensorFlow's and PyTorch's convolutions
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's own (ATen) kernels
    "XLA_FLAGS": "--xla_cpu_max_isa=AVX2",  # XLA's CPU code generation (JAX)
}
"""The environment that holds every backend's kernels to AVX2 on a CPU that has more."""
ISA_CHOICES = ("auto", "native", "avx2", "both")


def cpu_info() -> tuple[str, list[str]]:
    """The CPU's model name and which of `FLAGS` it has (`/proc/cpuinfo`; elsewhere none).

    Example:
    >>> model, flags = cpu_info()
    >>> isinstance(model, str) and set(flags) <= set(FLAGS)
    True
    """
    try:
        with open("/proc/cpuinfo") as file:
            text = file.read()
    except OSError:
        return platform.processor() or platform.machine(), []
    model, flags = (re.search(rf"^{key}\s*:(.*)$", text, re.MULTILINE) for key in KEYS)
    found = flags.group(1).split() if flags else []
    name = model.group(1).strip() if model else platform.machine()
    return name, [flag for flag in FLAGS if flag in found]


def native_isa(flags: list[str]) -> str:
    """The widest vector instruction set of `flags`: `avx512`, `avx2` or `baseline`.

    Example:
    >>> native_isa(["avx2", "avx512f"]), native_isa(["avx2"]), native_isa([])
    ('avx512', 'avx2', 'baseline')
    """
    return "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "baseline"


def instruction_sets(choice: str, flags: list[str]) -> tuple[dict[str, dict], list[str]]:
    """The instruction sets to measure, each with the environment that selects it, and notes
    on what cannot be measured on this CPU.

    `auto` measures the native set and, on an AVX-512 CPU, AVX2 as well (`AVX2_CAP`); `both`
    asks for the two wherever they differ; `avx2` only the capped one. Capping a CPU that has
    no more than AVX2 changes nothing, so it is measured once, as `avx2`.

    Example:
    >>> sets, notes = instruction_sets("auto", ["avx2", "avx512f"])
    >>> list(sets), sets["avx2"]["ONEDNN_MAX_CPU_ISA"], notes
    (['avx512', 'avx2'], 'AVX2', [])
    >>> sets, notes = instruction_sets("auto", ["avx2"])
    >>> list(sets), notes[0].split(" (")[0]
    (['avx2'], 'AVX-512 not measured: this CPU has AVX2 and no AVX-512')
    """
    if choice not in ISA_CHOICES:
        raise ValueError(f"`isa` must be one of {ISA_CHOICES}. Received: isa={choice!r}")
    native = native_isa(flags)
    if native != "avx512":
        note = f"AVX-512 not measured: this CPU has {native.upper()} and no AVX-512"
        return {native: {}}, [note + " (only its native instruction set was measured)"]
    sets = {}
    if choice in ("auto", "native", "both"):
        sets[native] = {}
    if choice in ("auto", "avx2", "both"):
        sets["avx2"] = dict(AVX2_CAP)
    return sets, []


def thread_environment(threads: int | None) -> dict[str, str]:
    """The environment that gives every library `threads` compute threads (`None`: their own
    defaults, all usable CPUs): OpenMP (PyTorch, oneDNN), TensorFlow's pools, and, for one
    thread, XLA's (it has no count for more).

    Example:
    >>> thread_environment(1)["TF_NUM_INTRAOP_THREADS"], thread_environment(None)
    ('1', {})
    """
    if threads is None:
        return {}
    count = str(threads)
    env = {"OMP_NUM_THREADS": count, "MKL_NUM_THREADS": count}
    env.update(TF_NUM_INTRAOP_THREADS=count, TF_NUM_INTEROP_THREADS=count)
    if threads == 1:
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
    return env


def environment_for(cap: dict[str, str], base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with `cap` applied; `XLA_FLAGS` is added
    to the flags already there.

    Example:
    >>> environment_for(AVX2_CAP, {"XLA_FLAGS": "--xla_a=1"})["XLA_FLAGS"]
    '--xla_a=1 --xla_cpu_max_isa=AVX2'
    """
    env = dict(os.environ if base is None else base)
    for name, value in cap.items():
        env[name] = f"{env[name]} {value}" if name == "XLA_FLAGS" and env.get(name) else value
    return env
