"""Training and inference throughput of `build_lenet` models with Keras on JAX, no TensorFlow.

`bench_gpu.py` needs TensorFlow; the lent H200 machine's image has JAX with CUDA but no
TensorFlow, so this script measures the same models there with Keras' JAX backend (it sets
`KERAS_BACKEND=jax` itself) and judges the issue's GPU target on them. See docs/benchmarks.md.

Usage:
    python benchmarks/bench_keras_jax.py                    # full sweep on the device JAX sees
    python benchmarks/bench_keras_jax.py --quick            # small CPU sweep (< 1 min)
    python benchmarks/bench_keras_jax.py --models notebook --precisions float32 mixed_bfloat16

Writes into --output (default benchmarks/results/<device>-keras-jax): `throughput.json`,
`throughput.md`, `throughput_<mode>_<precision>.png`, each atomically.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = os.environ.get("KERAS_BACKEND") or "jax"
if os.environ["KERAS_BACKEND"] != "jax":
    raise SystemExit(
        "bench_keras_jax.py measures Keras on JAX. Received: "
        f"KERAS_BACKEND={os.environ['KERAS_BACKEND']!r}; unset it or set it to 'jax'."
    )

import argparse
import datetime
import importlib.metadata
import platform
import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path

import jax
import keras
import numpy as np
from bench_lib import keras_jax_sweep, report
from bench_lib.environment import describe_cpu, nvidia_smi, precision_support
from bench_lib.networks import SEQUENTIAL
from bench_lib.sweep_defaults import (
    CPU_BATCH_SIZES,
    GPU_BATCH_SIZES,
    PRECISIONS,
    QUICK_BATCH_SIZES,
    RESULTS_DIR,
)
from bench_lib.targets import below_one_within_noise
from tqdm import tqdm

import lenet_blocks
from lenet_blocks.artifacts import write_json


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line, checked: a bad value exits with a message naming it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, help="results folder")
    parser.add_argument("--quick", action="store_true", help="small CPU sweep (< 1 min)")
    parser.add_argument("--models", nargs="+", help="presets and/or 'sequential'")
    parser.add_argument("--batch-sizes", nargs="+", type=int)
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS)
    parser.add_argument(
        "--loop-steps", type=int, help="training steps per dispatch of the loop (32; quick: 8)"
    )
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--warmup-calls", type=int)
    parser.add_argument("--min-seconds", type=float, help="least duration of one repeat")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    known = [*lenet_blocks.list_presets(), SEQUENTIAL]
    for name in args.models or ():
        if name not in known:
            parser.error(f"`--models` must be among {known}. Received: {name!r}")
    for name, value in (
        ("--loop-steps", args.loop_steps),
        ("--repeats", args.repeats),
        ("--warmup-calls", args.warmup_calls),
        *(("--batch-sizes", batch) for batch in args.batch_sizes or ()),
    ):
        if value is not None and value < 1:
            parser.error(f"`{name}` must be at least 1. Received: {value}")
    if args.min_seconds is not None and args.min_seconds < 0:
        parser.error(f"`--min-seconds` must be >= 0. Received: {args.min_seconds}")
    return args


def run_config(args: argparse.Namespace, device: dict) -> dict:
    """The configuration of the run, defaults resolved (`--quick`: CPU-sized)."""

    def pick(value, full, quick):
        return value if value is not None else (quick if args.quick else full)

    gpu = device["kind"] == "gpu"
    return {
        "quick": args.quick,
        "models": list(args.models or ["notebook", SEQUENTIAL]),
        "batch_sizes": list(
            pick(args.batch_sizes, GPU_BATCH_SIZES if gpu else CPU_BATCH_SIZES, QUICK_BATCH_SIZES)
        ),
        "precisions": list(pick(args.precisions, PRECISIONS, ["float32"])),
        "loop_steps": pick(args.loop_steps, 32, 8),
        "repeats": pick(args.repeats, 5, 3),
        "warmup_calls": pick(args.warmup_calls, 5, 2),
        "min_seconds": pick(args.min_seconds, 0.3, 0.05),
        "seed": args.seed,
        "timing": (
            "samples/s over whole calls (each ends with jax.block_until_ready); each figure = "
            "median of `repeats` repeats lasting at least `min_seconds`, after one untimed "
            "compiling call and `warmup_calls` untimed calls; the candidates of one precision, "
            "batch size and mode interleaved round-robin"
        ),
    }


def write_markdown(result: dict, path: Path) -> Path:
    """The run as Markdown: device, targets, one table per mode and precision, the ratios."""
    figures, batches = result["figures"], result["config"]["batch_sizes"]
    lines = ["# lenet_blocks throughput, Keras on JAX", "", *report.device_lines(result), ""]
    lines += report.targets_table(result["targets"])
    groups = defaultdict(lambda: defaultdict(dict))
    for figure in figures.values():
        row = (figure["model"], figure["compiler"])
        groups[(figure["mode"], figure["precision"])][row][figure["batch_size"]] = figure
    header = ["model", "compiler", *(f"batch {batch}" for batch in batches)]
    for (mode, precision), rows in sorted(groups.items()):
        cells = [
            [*row, *(report.cell(by_batch.get(batch)) for batch in batches)]
            for row, by_batch in sorted(rows.items())
        ]
        lines += ["", f"## {mode}, {precision}: samples/s, median (min-max)", ""]
        lines += report.table(header, cells)
    lines += ["", "## Ratios (medians of figures above, same run)", ""]
    lines += report.ratios_table(result["ratios"])
    below = result["build_lenet_below_sequential_within_noise"]
    lines += ["", f"build_lenet / Sequential ratios below 1.0 within the noise: {len(below)}"]
    lines += [f"- skipped {item['what']}: {item['reason']}" for item in result["skipped"]]
    return report.write_text(path, "\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    """Measures, writing the results after every group; prints the target's line."""
    args = parse_args(argv)
    started = time.perf_counter()
    device = {**keras_jax_sweep.describe_jax_device(), "nvidia_smi": nvidia_smi(), **describe_cpu()}
    config = run_config(args, device)
    output = args.output or RESULTS_DIR / device["slug"]
    output.mkdir(parents=True, exist_ok=True)
    support = precision_support(device)
    runnable = [precision for precision in config["precisions"] if support[precision] is None]
    groups = len(runnable) * len(config["batch_sizes"]) * 2
    print(f"Measuring Keras on JAX on {device['name']} ({device['jax_device']})", flush=True)
    base = {
        "schema_version": 1,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "device": device,
        "versions": {
            "python": platform.python_version(),
            "lenet_blocks": lenet_blocks.__version__,
            "keras": keras.__version__,
            "jax": jax.__version__,
            "jaxlib": importlib.metadata.version("jaxlib"),
            "jax_platform_version": jax.devices()[0].client.platform_version,
            "numpy": np.__version__,
            "platform": platform.platform(),
        },
        "config": config,
    }

    def write(figures: dict, skipped: list, complete: bool) -> dict:
        """Writes the JSON and Markdown of what is measured so far (a killed run keeps it)."""
        ratios = keras_jax_sweep.jax_ratios(figures, config["loop_steps"])
        result = {
            **base,
            "complete": complete,
            "figures": figures,
            "ratios": ratios,
            "targets": [keras_jax_sweep.gpu_target(figures, ratios, device)],
            "build_lenet_below_sequential_within_noise": below_one_within_noise(
                figures,
                {k: v for k, v in ratios.items() if k.startswith("build_lenet_vs_sequential/")},
            ),
            "skipped": skipped,
            "elapsed_seconds": time.perf_counter() - started,
        }
        write_json(output / "throughput.json", result)
        write_markdown(result, output / "throughput.md")
        return result

    with tqdm(total=groups, desc="throughput", unit="group") as progress:

        def after_group(figures: dict, skipped: list) -> None:
            write(figures, skipped, complete=False)
            progress.update()

        figures, skipped = keras_jax_sweep.measure(config, device, after_group)
    result = write(figures, skipped, complete=True)
    report.plot_throughput(result, output)
    for target in result["targets"]:
        print(f"[{target['status']}] {target['id']}: {target['statement']} -- {target['detail']}")
    print(f"Wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
