"""Throughput and time to accuracy of `build_lenet` models, with the notebook's plain
`keras.Sequential` and (when installed) PyTorch side by side, on the Keras backend in use.

    python benchmarks/bench_gpu.py [--quick] [--time-to-accuracy [--skip-throughput]]

Writes `throughput.json`, `.md`, `.png` (and `time_to_accuracy.*`) into --output (default
benchmarks/results/<device>, e.g. `cpu` or `nvidia-h200`). See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import time
from pathlib import Path

if (os.environ.get("KERAS_BACKEND") or "tensorflow") == "tensorflow":
    try:
        import tensorflow  # noqa: F401  (Keras' default backend)
    except ImportError as error:
        raise SystemExit(
            f"bench_gpu.py measures Keras on TensorFlow, which is not installed here ({error}). "
            "Install the package with `pip install -e .`, or measure Keras on JAX without "
            "TensorFlow: python benchmarks/bench_keras_jax.py"
        ) from None

import keras
from bench_lib import accuracy, environment, keras_steps, results
from bench_lib.sweep import Run
from bench_lib.timing import positive
from tqdm import tqdm

from lenet_blocks import list_presets

RESULTS_DIR = Path(__file__).resolve().parent / "results"
GPU_BATCH_SIZES = [32, 128, 512, 2048, 8192, 16384]
CPU_BATCH_SIZES, QUICK_BATCH_SIZES = [32, 256, 2048], [32, 64]
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
XLA_CHOICES = {"both": [True, False], "on": [True], "off": [False]}
JIT_CHOICES = {"auto": "auto", "on": True, "off": False}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="small CPU sweep for CI")
    add("--output", type=Path, help="results folder")
    add("--batch-sizes", type=positive, nargs="+", help="default: by device")
    add("--models", nargs="+", choices=[*list_presets(), keras_steps.SEQUENTIAL])
    add("--precisions", nargs="+", choices=PRECISIONS)
    add("--xla", choices=tuple(XLA_CHOICES), default="both", help="TensorFlow only (JAX: on)")
    add("--feeds", nargs="+", choices=("tensor", "tf.data"), default=["tensor", "tf.data"])
    add("--loop-steps", type=positive, help="training steps per call of the loop (32; quick 8)")
    add("--repeats", type=positive, help="timed repeats per figure (5; quick 3)")
    add("--warmup-calls", type=positive, help="untimed calls first (5; quick 2)")
    add("--min-seconds", type=float, help="least length of a repeat (0.3; quick 0.05)")
    add("--fit-samples", type=positive, help="samples per timed fit (8192; quick 1024)")
    add("--fit-repeats", type=positive, help="timed fit epochs (5; quick 3)")
    add("--peers", action=argparse.BooleanOptionalAction, help="PyTorch (default: on TF)")
    add("--time-to-accuracy", action="store_true", help="train on Fashion-MNIST")
    add("--skip-throughput", action="store_true", help="no throughput sweep")
    add("--tta-max-seconds", type=float, default=60.0, help="cap per run")
    add("--tta-eval-every", type=positive, default=10_000, help="samples")
    add("--tta-jit-compile", choices=tuple(JIT_CHOICES), default="auto")
    add("--tta-steps-per-execution", type=positive, default=32)
    add("--data-dir", help="Fashion-MNIST folder (default: as the loader finds)")
    add("--seed", type=int, default=0)
    return parser.parse_args(argv)


def throughput_config(args: argparse.Namespace, device: dict) -> dict:
    """The configuration of the throughput run, defaults resolved (`--quick`: CPU-sized)."""

    def pick(value, full, quick):
        return value if value is not None else (quick if args.quick else full)

    batches = GPU_BATCH_SIZES if device["kind"] == "gpu" else CPU_BATCH_SIZES
    models = [*list_presets(), keras_steps.SEQUENTIAL]
    return {
        "quick": args.quick,
        "batch_sizes": list(pick(args.batch_sizes, batches, QUICK_BATCH_SIZES)),
        "models": list(pick(args.models, models, ["notebook", keras_steps.SEQUENTIAL])),
        "precisions": list(pick(args.precisions, PRECISIONS, ["float32"])),
        "xla": XLA_CHOICES[args.xla] if keras_steps.BACKEND == "tensorflow" else [True],
        "feeds": list(args.feeds),
        "loop_steps": pick(args.loop_steps, 32, 8),
        "repeats": pick(args.repeats, 5, 3),
        "warmup_calls": pick(args.warmup_calls, 5, 2),
        "min_seconds": pick(args.min_seconds, 0.3, 0.05),
        "fit_samples": pick(args.fit_samples, 8192, 1024),
        "fit_repeats": pick(args.fit_repeats, 5, 3),
        "peers": pick(args.peers, keras_steps.BACKEND == "tensorflow", False),
        "seed": args.seed,
        "timing": "docs/benchmarks.md, 'Timing'",
    }


def load_peers(config: dict) -> tuple[dict, dict]:
    """The PyTorch peer's candidate factories by compiler, and its status."""
    if not config["peers"]:
        return {}, {"pytorch": {"status": "not requested"}}
    try:
        from bench_lib import torch_peer
    except ImportError as error:
        return {}, {"pytorch": {"status": "not installed", "reason": str(error)}}
    factories = dict.fromkeys(torch_peer.COMPILERS, torch_peer.candidate)
    info = {"version": torch_peer.torch.__version__, "device": str(torch_peer.DEVICE)}
    return factories, {"pytorch": {"status": "measured", **info}}


def run_throughput(args, base: dict, output: Path) -> dict:
    """Measures, writing the results after every group (a stopped run keeps its figures)."""
    device = base["device"]
    config = throughput_config(args, device)
    peers, peer_status = load_peers(config)
    flops = environment.training_flops_per_sample(keras_steps.compiled_model("notebook"))
    bound = environment.throughput_bound(device, flops)
    result = {**base, "kind": "throughput", "config": config, "peers": peer_status}
    result.update(complete=False, training_flops_per_sample=flops, bound_samples_per_second=bound)
    started = time.perf_counter()
    support = environment.precision_support(device)
    groups = 1 + 2 * len(config["batch_sizes"]) * sum(not support[p] for p in config["precisions"])
    with tqdm(total=groups, desc="throughput", unit="group") as progress:

        def after_group():
            result.update(
                figures=run.figures, ratios=results.ratios(run.figures), skipped=run.skipped
            )
            result["elapsed_seconds"] = round(time.perf_counter() - started, 1)
            results.write(result, output, plots=False)
            progress.update()

        run = Run(config, device, peers, after_group)
        run.sweep(support)
        run.fit_group()
    if peers and not any("/pytorch/" in key for key in run.figures):  # every candidate failed
        peer_status["pytorch"]["status"] = "failed (see skipped)"
    result["complete"] = True
    results.write(result, output)
    return result


def run_time_to_accuracy(args, base: dict, output: Path) -> dict:
    """Trains every row on Fashion-MNIST, writes time_to_accuracy.json/.md/.png."""
    config = {
        "models": [m for m in args.models or list_presets() if m != keras_steps.SEQUENTIAL],
        "thresholds": [0.8, 0.9],
        "max_seconds": args.tta_max_seconds,
        "eval_every": args.tta_eval_every,
        "jit_compile": JIT_CHOICES[args.tta_jit_compile],
        "steps_per_execution": args.tta_steps_per_execution,
        "data_dir": args.data_dir,
        "seed": args.seed,
    }
    started = time.perf_counter()
    with tqdm(total=1 + len(config["models"]), desc="time to accuracy", unit="run") as progress:
        rows = accuracy.time_to_accuracy(config, progress)
    result = {**base, "kind": "time_to_accuracy", "config": config, "rows": rows, "skipped": []}
    result["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    results.write(result, output)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = environment.describe_device()
    output = args.output or RESULTS_DIR / device["slug"]
    base = {
        "schema_version": 2,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["python", sys.argv[0], *(sys.argv[1:] if argv is None else argv)]),
        "device": device,
        "versions": environment.library_versions(),
    }
    print(f"Measuring Keras {keras.__version__} on {keras_steps.BACKEND}, {device['kind']}: "
          f"{device['name']} -> {output}", flush=True)  # fmt: skip
    done = [] if args.skip_throughput else [run_throughput(args, base, output)]
    if args.time_to_accuracy:
        done.append(run_time_to_accuracy(args, base, output))
    for result in done:
        print(*results.summary(result), sep="\n")
    print(f"Wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
