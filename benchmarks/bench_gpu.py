"""Throughput and time-to-accuracy of `build_lenet` models, with the notebook's plain
`keras.Sequential` and (when installed) PyTorch and Keras-on-JAX side by side.

Usage:
    python benchmarks/bench_gpu.py                      # full sweep on the device TF sees
    python benchmarks/bench_gpu.py --quick              # small CPU sweep for CI (< 2 min)
    python benchmarks/bench_gpu.py --time-to-accuracy   # also: time to 0.80/0.90 test accuracy
    python benchmarks/bench_gpu.py --time-to-accuracy --skip-throughput

A GPU is used whenever TensorFlow sees one. Writes into --output (default
benchmarks/results/<device>, e.g. `cpu` or `nvidia-h200`): `throughput.json`, `throughput.md`,
`throughput_<mode>_<precision>.png`; with --time-to-accuracy also `time_to_accuracy.json`,
`time_to_accuracy.md`, `time_to_accuracy.png`. Every file is written atomically.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import time
from pathlib import Path

try:
    import tensorflow  # noqa: F401  (bench_lib's TensorFlow modules need it)
except ImportError as error:
    raise SystemExit(
        f"bench_gpu.py measures Keras on TensorFlow, which is not installed here ({error}). "
        "Install the package with `pip install -e .`, or measure Keras on JAX without "
        "TensorFlow: python benchmarks/bench_keras_jax.py"
    ) from None

from bench_lib import accuracy_run, peers, report, sweep, targets
from bench_lib.environment import describe_device, library_versions, precision_support
from bench_lib.networks import SEQUENTIAL
from bench_lib.sweep_defaults import (
    CPU_BATCH_SIZES,
    GPU_BATCH_SIZES,
    PRECISIONS,
    QUICK_BATCH_SIZES,
    RESULTS_DIR,
)
from tqdm import tqdm

from lenet_blocks import list_presets
from lenet_blocks.artifacts import write_json

FEEDS = ("tensor", "tf.data")
XLA_CHOICES = {"both": [True, False], "on": [True], "off": [False]}
JIT_CHOICES = {"auto": "auto", "on": True, "off": False}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small CPU sweep for CI")
    parser.add_argument("--output", type=Path, help="results folder")
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="default: by device")
    parser.add_argument(
        "--models",
        nargs="+",
        help="presets and/or 'sequential' (default: every preset and the Sequential)",
    )
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS)
    parser.add_argument("--xla", choices=tuple(XLA_CHOICES), default="both")
    parser.add_argument("--feeds", nargs="+", choices=FEEDS, default=list(FEEDS))
    parser.add_argument("--repeats", type=int, help="timed repeats per figure (5; quick 3)")
    parser.add_argument("--warmup-steps", type=int, help="untimed steps first (5; quick 3)")
    parser.add_argument("--min-seconds", type=float, help="length of a repeat (0.3; quick 0.05)")
    parser.add_argument("--fit-samples", type=int, help="samples per timed fit (8192; quick 1024)")
    parser.add_argument("--fit-repeats", type=int, help="timed fit epochs (5; quick 3)")
    parser.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        help="measure installed peers (PyTorch, Keras on JAX); default on, off with --quick",
    )
    parser.add_argument(
        "--peer-threads", type=int, help="OMP_NUM_THREADS of the peers (default: theirs)"
    )
    parser.add_argument(
        "--peer-timeout", type=float, default=900.0, help="seconds a peer may take to answer"
    )
    parser.add_argument("--time-to-accuracy", action="store_true", help="train on Fashion-MNIST")
    parser.add_argument("--skip-throughput", action="store_true", help="no throughput sweep")
    parser.add_argument("--tta-max-seconds", type=float, default=60.0, help="cap per run")
    parser.add_argument("--tta-eval-every", type=int, default=10_000, help="samples")
    parser.add_argument("--tta-jit-compile", choices=tuple(JIT_CHOICES), default="auto")
    parser.add_argument("--tta-steps-per-execution", type=int, default=32)
    parser.add_argument("--data-dir", help="Fashion-MNIST folder (default: as the loader finds)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def _default(value, full, quick, is_quick: bool):
    if value is not None:
        return value
    return quick if is_quick else full


def throughput_config(args: argparse.Namespace, device: dict) -> dict:
    """The full configuration of the throughput run, defaults resolved."""
    full_batches = GPU_BATCH_SIZES if device["kind"] == "gpu" else CPU_BATCH_SIZES
    all_models, quick_models = [*list_presets(), SEQUENTIAL], ["notebook", SEQUENTIAL]
    return {
        "quick": args.quick,
        "batch_sizes": list(
            _default(args.batch_sizes, full_batches, QUICK_BATCH_SIZES, args.quick)
        ),
        "models": list(_default(args.models, all_models, quick_models, args.quick)),
        "precisions": list(_default(args.precisions, PRECISIONS, ["float32"], args.quick)),
        "xla": XLA_CHOICES[args.xla],
        "feeds": list(args.feeds),
        "repeats": _default(args.repeats, 5, 3, args.quick),
        "warmup_steps": _default(args.warmup_steps, 5, 3, args.quick),
        "min_seconds": _default(args.min_seconds, 0.3, 0.05, args.quick),
        "fit_samples": _default(args.fit_samples, 8192, 1024, args.quick),
        "fit_repeats": _default(args.fit_repeats, 5, 3, args.quick),
        "peers": _default(args.peers, True, False, args.quick),
        "peer_timeout": args.peer_timeout,
        "peer_threads": args.peer_threads,
        "seed": args.seed,
        "timing": (
            "samples/s over whole calls; each figure = median of `repeats` repeats of "
            "`calls_per_repeat` calls (set from the warm-up to last about `min_seconds`), "
            "after `warmup_calls` untimed calls; all candidates of one precision, batch size "
            "and mode (models, XLA on/off, feeds, peers) interleaved"
        ),
    }


def run_throughput(args: argparse.Namespace, base: dict, output: Path) -> list[dict]:
    """Measures, writes throughput.json/.md/.png, returns the targets."""
    device = base["device"]
    config = throughput_config(args, device)
    started = time.perf_counter()
    settings = len(config["precisions"]) * len(config["batch_sizes"])
    servers, peer_status = peers.start_servers(config["peers"], timeout=config["peer_timeout"])
    try:
        with tqdm(total=settings + 1, desc="throughput", unit="setting") as progress:
            figures, skipped = sweep.keras_sweep(
                config, device, precision_support(device), servers, progress
            )
            progress.set_postfix_str("fit at batch 32")
            fit_figures, fit_skipped = sweep.fit_comparison(config, device, servers)
            progress.update()
    finally:
        for server in servers.values():
            server.close()
    figures = {**figures, **fit_figures}
    skipped += fit_skipped
    for peer in servers:
        if not any(figure["framework"] == peer for figure in figures.values()):
            reasons = [item["reason"] for item in skipped if f"/{peer}/" in item["what"]]
            peer_status[peer].update(status="failed", reason=reasons[0] if reasons else "no figure")
    ratios = {**targets.throughput_ratios(figures), **targets.pipeline_ratios(figures)}
    result = {
        **base,
        "config": config,
        "figures": figures,
        "ratios": ratios,
        "targets": targets.throughput_targets(figures, ratios, device),
        "peers": peer_status,
        "skipped": skipped,
        "elapsed_seconds": time.perf_counter() - started,
    }
    write_json(output / "throughput.json", result)
    report.write_text(output / "throughput.md", report.throughput_markdown(result))
    report.plot_throughput(result, output)
    return result["targets"]


def run_time_to_accuracy(args: argparse.Namespace, base: dict, output: Path) -> list[dict]:
    """Trains every row on Fashion-MNIST, writes time_to_accuracy.json/.md/.png."""
    config = {
        "models": list(args.models or list_presets()),
        "thresholds": [0.8, 0.9],
        "max_seconds": args.tta_max_seconds,
        "eval_every": args.tta_eval_every,
        "jit_compile": JIT_CHOICES[args.tta_jit_compile],
        "steps_per_execution": args.tta_steps_per_execution,
        "peers": _default(args.peers, True, False, args.quick),
        "peer_timeout": args.peer_timeout,
        "peer_threads": args.peer_threads,
        "data_dir": args.data_dir,
        "seed": args.seed,
    }
    started = time.perf_counter()
    rows = accuracy_run.time_to_accuracy(config)
    result = {
        **base,
        "config": config,
        "rows": rows,
        "targets": targets.accuracy_targets(rows),
        "elapsed_seconds": time.perf_counter() - started,
    }
    write_json(output / "time_to_accuracy.json", result)
    report.write_text(output / "time_to_accuracy.md", report.accuracy_markdown(result))
    report.plot_accuracy(result, output / "time_to_accuracy.png")
    return result["targets"]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.peer_threads is not None:  # inherited by the peers' workers only
        peers.PEER_ENVIRONMENT["OMP_NUM_THREADS"] = str(args.peer_threads)
    device = describe_device()
    output = args.output or RESULTS_DIR / device["slug"]
    base = {
        "schema_version": 1,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["python", sys.argv[0], *(sys.argv[1:] if argv is None else argv)]),
        "device": device,
        "versions": library_versions(),
    }
    print(f"Measuring on {device['kind']}: {device['name']} -> {output}", flush=True)
    results = []
    if not args.skip_throughput:
        results += run_throughput(args, base, output)
    if args.time_to_accuracy:
        results += run_time_to_accuracy(args, base, output)
    for target in results:
        print(f"[{target['status']}] {target['id']}: {target['statement']} -- {target['detail']}")
    print(f"Wrote {output}")


if __name__ == "__main__":
    main()
