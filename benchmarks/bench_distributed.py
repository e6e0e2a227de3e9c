"""Wall time of distributed training and tuning against one process, on this machine.

Runs the `lenet-blocks` commands themselves, one after another, and times them:

- training (the notebook preset, `--epochs`): one device; `--distribution mirrored` over
  `--cpu-devices 2` (or the GPUs); `--distribution multi-worker` with 2 workers on 127.0.0.1;
- tuning (`--max-trials` trials of `--tune-epochs` epochs, the notebook's architecture with the
  SGD learning rate searched): `--workers 1` against `--workers 2`.

Each figure is the median of `--repeats` runs. Writes `distributed.json` into `--output`.

    python benchmarks/bench_distributed.py --output benchmarks/results/distributed
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lenet_blocks.distributed_search import free_ports

REFERENCE_FIXED = {
    "blocks": 2,
    "filters_1": 6,
    "filters_2": 16,
    "kernel_size": 5,
    "padding": "valid",
    "block_pooling": "max",
    "batch_norm": False,
    "activation": "sigmoid",
    "classifier_activation": "sigmoid",
    "units_1": 120,
    "units_2": 84,
    "dropout": 0.0,
    "include_rescaling": False,
    "augmentation": "none",
    "optimizer": "sgd",
    "lr_schedule": "constant",
    "momentum": 0.0,
    "nesterov": False,
    "weight_decay": 0.0,
    "batch_size": 32,
}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "lenet_blocks", *args]


def timed(commands: list[tuple[list[str], dict]]) -> float:
    """Starts the commands together, waits for all; returns the wall seconds."""
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command, env in commands
    ]
    for process in processes:
        _, stderr = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{process.args} failed:\n{stderr[-3000:]}")
    return time.perf_counter() - start


def training_runs(scratch: Path, epochs: int, data_dir: list[str]) -> dict:
    common = ["--epochs", str(epochs), "--verbose", "0", "--overwrite", *data_dir]
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return {
        "one device": [(cli("train", "--output", str(scratch / "single"), *common), {})],
        "mirrored, 2 CPU devices": [
            (
                cli(
                    "train",
                    "--output",
                    str(scratch / "mirrored"),
                    "--distribution",
                    "mirrored",
                    "--cpu-devices",
                    "2",
                    *common,
                ),
                {},
            )
        ],
        "multi-worker, 2 workers": [
            (
                cli(
                    "train",
                    "--output",
                    str(scratch / "workers"),
                    "--distribution",
                    "multi-worker",
                    *common,
                ),
                {
                    "TF_CONFIG": json.dumps(
                        {"cluster": cluster, "task": {"type": "worker", "index": index}}
                    )
                },
            )
            for index in range(2)
        ],
    }


def tuning_runs(scratch: Path, trials: int, epochs: int, data_dir: list[str]) -> dict:
    fixed = [
        option for k, v in REFERENCE_FIXED.items() for option in ("--fixed", f"{k}={json.dumps(v)}")
    ]
    runs = {}
    for workers in (1, 2):
        command = cli(
            "tune",
            "--workers",
            str(workers),
            "--max-trials",
            str(trials),
            "--epochs",
            str(epochs),
            "--output",
            str(scratch / f"tune-{workers}"),
            "--overwrite",
            "--verbose",
            "0",
            *fixed,
            *data_dir,
        )
        runs[f"tune, {workers} worker(s)"] = [(command, {})]
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="benchmarks/results/distributed")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs (default 2)")
    parser.add_argument("--max-trials", type=int, default=4, help="tuning trials (default 4)")
    parser.add_argument("--tune-epochs", type=int, default=1, help="epochs per trial (1)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--data-dir", help="directory with the Fashion-MNIST IDX .gz files")
    args = parser.parse_args(argv)
    data_dir = ["--data-dir", args.data_dir] if args.data_dir else []

    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        runs = {
            **training_runs(scratch, args.epochs, data_dir),
            **tuning_runs(scratch, args.max_trials, args.tune_epochs, data_dir),
        }
        for name, commands in runs.items():
            seconds = [timed(commands) for _ in range(args.repeats)]
            results[name] = {"median_s": statistics.median(seconds), "runs_s": seconds}
            print(f"{name:28s} {results[name]['median_s']:8.1f} s", flush=True)
    single = results["one device"]["median_s"]
    one_worker = results["tune, 1 worker(s)"]["median_s"]
    report = {
        "settings": vars(args),
        "cpu_count": os.cpu_count(),
        "results": results,
        "speedup": {
            "mirrored / one device": single / results["mirrored, 2 CPU devices"]["median_s"],
            "multi-worker / one device": single / results["multi-worker, 2 workers"]["median_s"],
            "tune 2 workers / 1 worker": one_worker / results["tune, 2 worker(s)"]["median_s"],
        },
    }
    for name, value in report["speedup"].items():
        print(f"speed-up {name}: {value:.2f}x")
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    path = output / "distributed.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(temporary, path)
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
