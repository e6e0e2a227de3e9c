"""Training throughput of the package on every installed Keras backend, side by side with plain
Keras `fit` on the same backend and PyTorch eager, on the CPU, in one interleaved run, for each
instruction set the CPU has (AVX-512 and, capped, AVX2).

    python benchmarks/bench_cpu.py [--quick] [--update-docs]

Each backend runs in its own environment (`.venv`, `.venv-jax`, `.venv-torch`, or the
interpreters `LENET_BLOCKS_<BACKEND>_PYTHON` name), one process per backend and instruction
set (`bench_lib.backend_worker`). Writes `backends.json`, `.md`, `.png` into --output (default
benchmarks/results/cpu); `--update-docs` rewrites the generated table in docs/backends.md and
docs/benchmarks.md. See docs/benchmarks.md, "Which backend on which CPU".
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

from bench_lib import backend_report, cpu, cross_backend
from bench_lib.timing import positive

from lenet_blocks.backends import BACKENDS

RESULTS_DIR = Path(__file__).resolve().parent / "results" / "cpu"
DOCS = [cross_backend.REPOSITORY / "docs" / name for name in ("backends.md", "benchmarks.md")]
QUICK = {"batch_sizes": [32], "samples": 256, "repeats": 1}
"""`--quick` also skips the untimed warm-up run: a smoke test, its figures hold first calls."""
QUICK_VARIANTS = ["package", "keras-fit", "pytorch-eager"]
SHARED_MACHINE_NOTE = (
    "The machine was shared with other jobs while this ran (load average at start above): "
    "absolute figures are lower than on an idle machine; the ratios, of figures measured "
    "interleaved, are what to read."
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="one small batch size, one repeat (for CI)")
    add("--output", type=Path, default=RESULTS_DIR, help="results folder")
    add("--backends", nargs="+", choices=BACKENDS, default=BACKENDS)
    add("--isa", choices=cpu.ISA_CHOICES, default="auto", help="auto: native, and AVX2 too")
    add("--batch-sizes", type=positive, nargs="+", help="default 32 256 2048 (quick: 32)")
    add("--samples", type=positive, help="samples per timed epoch (8192; quick 256)")
    add("--repeats", type=positive, help="timed repeats per figure (3; quick 1)")
    add("--variants", nargs="+", choices=cross_backend.VARIANTS, help="default: all (quick: 3)")
    add("--threads", type=positive, help="compute threads per process (default: all CPUs)")
    add("--shared-machine", action="store_true", help="say in the report that others ran too")
    add("--update-docs", action="store_true", help="rewrite the table in docs/*.md")
    add("--from", dest="source", type=Path, help="no run: rewrite this backends.json's reports")
    add("--seed", type=int, default=0)
    return parser.parse_args(argv)


def run_config(args: argparse.Namespace) -> dict:
    """The run's configuration, defaults resolved."""

    def pick(value, name, full):
        return value if value is not None else (QUICK[name] if args.quick else full)

    default_variants = QUICK_VARIANTS if args.quick else list(cross_backend.VARIANTS)
    return {
        "quick": args.quick,
        "backends": list(args.backends),
        "isa": args.isa,
        "batch_sizes": list(pick(args.batch_sizes, "batch_sizes", [32, 256, 2048])),
        "samples": pick(args.samples, "samples", 8192),
        "repeats": pick(args.repeats, "repeats", 3),
        "variants": list(args.variants or default_variants),
        "warmup": not args.quick,
        "threads": args.threads,
        "seed": args.seed,
        "timing": "docs/benchmarks.md, 'Which backend on which CPU'",
    }


def start_workers(config: dict, isas: dict, logs: Path) -> tuple[list, dict, list]:
    """A worker per backend and instruction set, the description of each, what could not start."""
    workers, skipped = [], []
    kinds = list(config["backends"])
    if "pytorch-eager" in config["variants"]:
        kinds.append(cross_backend.PEER)
    for isa, cap in isas.items():
        for backend in kinds:
            python = cross_backend.interpreter(backend)
            if python is None:
                env_name = cross_backend.ENVIRONMENTS[backend]
                reason = f"no interpreter ({env_name} missing; bash scripts/setup_backends.sh)"
                skipped.append({"what": f"{backend}/{isa}", "reason": reason})
                continue
            env = cpu.environment_for(cpu.thread_environment(config["threads"]))
            env = cpu.environment_for(cap, env)
            try:
                log = logs / f"{backend}-{isa}.log"
                workers.append(cross_backend.Worker(backend, isa, python, env, log))
            except cross_backend.WorkerError as error:
                skipped.append({"what": f"{backend}/{isa}", "reason": str(error)})
    return workers, {worker.name: worker.info for worker in workers}, skipped


def source_tree() -> dict:
    """The commit measured, and the package files that differed from it (`git`; else none)."""
    import subprocess

    def git(*command):
        done = subprocess.run(
            ["git", *command], capture_output=True, text=True, cwd=cross_backend.REPOSITORY
        )
        return done.stdout.strip() if done.returncode == 0 else None

    changed = git("status", "--porcelain", "--", "lenet_blocks")
    return {"commit": git("rev-parse", "HEAD"), "uncommitted": (changed or "").splitlines()}


def update_docs(result: dict) -> None:
    for path in DOCS:
        print(f"{path}: {'updated' if backend_report.update_docs(path, result) else 'no block'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.source is not None:  # the reports of a finished run, from its figures
        result = cross_backend.derive(json.loads(args.source.read_text()))
        backend_report.write(result, args.source.parent)
        if args.update_docs:
            update_docs(result)
        return 0
    config = run_config(args)
    cpu_model, flags = cpu.cpu_info()
    isas, notes = cpu.instruction_sets(config["isa"], flags)
    if args.shared_machine:
        notes.append(SHARED_MACHINE_NOTE)
    result = {
        "schema_version": 1,
        "kind": "backends",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["python", sys.argv[0], *(sys.argv[1:] if argv is None else argv)]),
        "device": {
            "cpu_model": cpu_model,
            "cpu_flags": flags,
            "logical_cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)),
            "load_average_at_start": list(os.getloadavg()),
        },
        "config": {**config, "instruction_sets": isas},
        "notes": notes,
        "source": source_tree(),
        "complete": False,
    }
    started = time.perf_counter()
    print(f"Measuring {', '.join(config['backends'])} on {cpu_model} ({', '.join(isas)})")
    with tempfile.TemporaryDirectory() as logs:
        workers, result["workers"], skipped = start_workers(config, isas, Path(logs))

        def after_group(figures, skipped_now):
            result.update(figures=figures, skipped=skipped + skipped_now)
            result.update(cross_backend.derive(result))
            result["elapsed_seconds"] = round(time.perf_counter() - started, 1)
            backend_report.write(result, args.output, plots=False)
            print(f"  {len(figures)} figures after {result['elapsed_seconds']} s", flush=True)

        try:
            after_group(*cross_backend.measure(workers, config, after_group))
        finally:
            for worker in workers:
                worker.close()
    result["complete"] = True
    backend_report.write(result, args.output)
    print(*backend_report.fastest_table(result), sep="\n")
    if args.update_docs:
        for path in DOCS:
            print(
                f"{path}: {'updated' if backend_report.update_docs(path, result) else 'no block'}"
            )
    print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
