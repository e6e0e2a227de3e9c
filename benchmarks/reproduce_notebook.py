"""Trains a preset (default: the notebook's LeNet) with its own training settings over several
seeds on the real Fashion-MNIST and reports test accuracy (mean, spread) and wall time.

    python benchmarks/reproduce_notebook.py [--preset lenet5_1998] [--seeds 0 1 2]

Writes one run directory per seed under --output (as `lenet-blocks train --preset P --seed S`)
and a summary JSON (default benchmarks/results/PRESET_seeds.json).
"""

from __future__ import annotations

import argparse
import statistics
import time

from lenet_blocks import artifacts
from lenet_blocks.training import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--preset", default="notebook")
    parser.add_argument("--data-dir")
    parser.add_argument("--output", default="runs/reproduce")
    parser.add_argument("--summary", help="default: benchmarks/results/PRESET_seeds.json")
    args = parser.parse_args()

    runs = []
    for seed in args.seeds:
        started = time.perf_counter()
        metrics = train(
            f"{args.output}/{args.preset}-seed{seed}",
            preset=args.preset,
            seed=seed,
            data_dir=args.data_dir,
            overwrite=True,
            verbose=2,
        )
        wall_seconds = time.perf_counter() - started
        kept = {key: metrics[key] for key in ("test_accuracy", "test_loss", "train_seconds")}
        runs.append({"seed": seed, **kept, "wall_seconds": wall_seconds})
        print(f"seed {seed}: test accuracy {metrics['test_accuracy']:.4f}")
    accuracies = [run["test_accuracy"] for run in runs]
    settings = {key: value for key, value in metrics["settings"].items() if key != "seed"}
    summary = {
        "preset": args.preset,
        "settings": settings,
        "seeds": args.seeds,
        "runs": runs,
        "test_accuracy_mean": statistics.mean(accuracies),
        "test_accuracy_stdev": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "test_accuracy_min": min(accuracies),
        "test_accuracy_max": max(accuracies),
        "wall_seconds_median": statistics.median(run["wall_seconds"] for run in runs),
        "versions": metrics["versions"],
    }
    artifacts.write_json(args.summary or f"benchmarks/results/{args.preset}_seeds.json", summary)
    print(
        f"{args.preset}: test accuracy {summary['test_accuracy_mean']:.4f} "
        f"+/- {summary['test_accuracy_stdev']:.4f} over seeds {args.seeds}; "
        f"median wall time {summary['wall_seconds_median']:.0f} s"
    )


if __name__ == "__main__":
    main()
