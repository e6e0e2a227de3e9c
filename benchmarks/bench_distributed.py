"""Wall time of distributed training and tuning against one process, on this machine.

Times the `lenet-blocks` commands themselves, one after another: training (the notebook
preset) on one device, `--distribution mirrored` over 2 CPU devices (or the GPUs) and
`--distribution multi-worker` with 2 workers on 127.0.0.1; tuning (the notebook's architecture,
the SGD learning rate searched) with `--workers 1` and 2. Each figure is the median of
`--repeats` runs; `distributed.json` goes into `--output`.

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

from lenet_blocks.artifacts import write_json
from lenet_blocks.distributed_search import free_ports

REFERENCE_FIXED = json.loads(
    '{"blocks": 2, "filters_1": 6, "filters_2": 16, "kernel_size": 5, "padding": "valid", '
    '"block_pooling": "max", "batch_norm": false, "activation": "sigmoid", '
    '"classifier_activation": "sigmoid", "units_1": 120, "units_2": 84, "dropout": 0.0, '
    '"include_rescaling": false, "augmentation": "none", "optimizer": "sgd", '
    '"lr_schedule": "constant", "momentum": 0.0, "nesterov": false, "weight_decay": 0.0, '
    '"batch_size": 32}'
)
"""The notebook's architecture as `--fixed` values: the search varies the SGD learning rate."""


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "lenet_blocks", *args]


def timed(commands: list[tuple[list[str], dict]]) -> float:
    """Starts the commands together, waits for all; returns the wall seconds."""
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for command, env in commands
    ]
    for process in processes:
        _, stderr = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{process.args} failed:\n{stderr.decode()[-3000:]}")
    return time.perf_counter() - start


def training_runs(scratch: Path, epochs: int, data_dir: list[str]) -> dict:
    common = ["--epochs", str(epochs), "--verbose", "0", "--overwrite", *data_dir]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}

    def train(name: str, *options: str) -> list[str]:
        return cli("train", "--output", str(scratch / name), *options, *common)

    workers = [
        {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        for i in range(2)
    ]
    mirrored = train("mirrored", "--distribution", "mirrored", "--cpu-devices", "2")
    return {
        "one device": [(train("single"), {})],
        "mirrored, 2 CPU devices": [(mirrored, {})],
        "multi-worker, 2 workers": [
            (train("workers", "--distribution", "multi-worker"), env) for env in workers
        ],
    }


def tuning_runs(scratch: Path, trials: int, epochs: int, data_dir: list[str]) -> dict:
    fixed = [f"{key}={json.dumps(value)}" for key, value in REFERENCE_FIXED.items()]
    options = ["--max-trials", str(trials), "--epochs", str(epochs), "--overwrite", "--verbose"]
    options += ["0", *(option for value in fixed for option in ("--fixed", value)), *data_dir]
    runs = {}
    for workers in (1, 2):
        output = ["--output", str(scratch / f"tune-{workers}")]
        runs[f"tune, {workers} worker(s)"] = [
            (cli("tune", "--workers", str(workers), *output, *options), {})
        ]
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
    Path(args.output).mkdir(parents=True, exist_ok=True)
    print(f"Wrote {write_json(Path(args.output) / 'distributed.json', report)}")


if __name__ == "__main__":
    main()
