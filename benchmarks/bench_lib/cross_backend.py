"""The cross-backend CPU run: one `backend_worker` process per Keras backend and instruction
set, each in the backend's own environment, timed interleaved: every repeat runs each
candidate of every process once, in turn, one process at a time, so that a change of load on a
shared machine hits every backend alike. Keras-free: the processes import the backends."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from bench_lib.timing import summarize

BENCHMARKS = Path(__file__).resolve().parent.parent
REPOSITORY = BENCHMARKS.parent
PEER = "pytorch"
"""The worker of the PyTorch peer: plain PyTorch in PyTorch's environment, a process of its own
(no TensorFlow loaded beside it, as in a PyTorch program)."""
ENVIRONMENTS = {
    "tensorflow": ".venv",
    "jax": ".venv-jax",
    "torch": ".venv-torch",
    PEER: ".venv-torch",
}
"""The virtual environment of each backend (`scripts/setup.sh`, `scripts/setup_backends.sh`);
`LENET_BLOCKS_<BACKEND>_PYTHON` names another interpreter."""
VARIANTS = ("package", "package-spe32", "package-cosine", "keras-fit", "pytorch-eager")
"""What each backend's worker can time (`bench_lib.backend_worker`)."""
PACKAGE_VARIANTS = ("package", "package-spe32")
"""The ways of running `lenet-blocks train` that `fastest` chooses from."""
REPLY_TIMEOUT = 1800.0  # seconds: a prepare at batch 2048 under load, with margin


class WorkerError(RuntimeError):
    """A worker process died, hung or answered an error."""


def interpreter(backend: str) -> str | None:
    """The Python that runs `backend`: `$LENET_BLOCKS_<BACKEND>_PYTHON`, else the backend's
    environment in the repository, else (TensorFlow) this one; `None` if there is none.

    Example:
    >>> interpreter("tensorflow") is not None
    True
    """
    named = os.environ.get(f"LENET_BLOCKS_{'torch' if backend == PEER else backend}_PYTHON".upper())
    if named:
        return named
    python = REPOSITORY / ENVIRONMENTS[backend] / "bin" / "python"
    if python.exists():
        return str(python)
    return sys.executable if backend == "tensorflow" else None


def figure_key(isa: str, backend: str, variant: str, batch_size: int) -> str:
    """The key of one figure: instruction set, framework, variant, batch size.

    Example:
    >>> figure_key("avx2", "torch", "pytorch-eager", 32), figure_key("avx2", "jax", "package", 8)
    ('avx2/pytorch/eager/b32', 'avx2/keras-jax/package/b8')
    """
    if variant == "pytorch-eager":
        return f"{isa}/pytorch/eager/b{batch_size}"
    return f"{isa}/keras-{backend}/{variant}/b{batch_size}"


def key_fields(key: str) -> dict:
    """The fields of a `figure_key` (`batch_size` as an int).

    Example:
    >>> key_fields("avx512/keras-jax/package/b256")["batch_size"]
    256
    """
    isa, framework, variant, batch = key.split("/")
    return {"isa": isa, "framework": framework, "variant": variant, "batch_size": int(batch[1:])}


def worker_variants(backend: str, variants: list[str]) -> list[str]:
    """The variants the worker of `backend` (or of the `PEER`) times.

    Example:
    >>> worker_variants("jax", ["package", "pytorch-eager"]), worker_variants(PEER, ["package"])
    (['package'], [])
    """
    return [v for v in variants if (v == "pytorch-eager") is (backend == PEER)]


class Worker:
    """One `backend_worker` process of `backend` (or of the `PEER`) under instruction set `isa`
    (`env` selects it), logging to `log`."""

    def __init__(self, backend: str, isa: str, python: str, env: dict, log: Path):
        self.backend, self.isa, self.log = backend, isa, log
        keras_backend = "torch" if backend == PEER else backend
        env = {**env, "KERAS_BACKEND": keras_backend, "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join([str(BENCHMARKS), str(REPOSITORY)])
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as stderr:
            self.process = subprocess.Popen(
                [python, "-m", "bench_lib.backend_worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env,
            )  # fmt: skip
        self.info = self._receive()["ready"]

    @property
    def name(self) -> str:
        return f"{self.backend}/{self.isa}"

    def _receive(self) -> dict:
        ready, _, _ = select.select([self.process.stdout], [], [], REPLY_TIMEOUT)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.close()
            tail = self.log.read_text(errors="replace").strip().splitlines()[-3:]
            state = "hung" if not ready else f"exited ({self.process.returncode})"
            raise WorkerError(f"{self.name} worker {state}: {' | '.join(tail)[-400:]}")
        return json.loads(line)

    def request(self, **message) -> dict:
        """Sends one request, returns the reply; a reply with an error raises `WorkerError`."""
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # dead: `_receive` says why
        reply = self._receive()
        if "error" in reply:
            raise WorkerError(f"{self.name}: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def samples_per_epoch(batch_size: int, samples: int) -> int:
    """An epoch's samples: `samples`, or 4 batches where that is more.

    Example:
    >>> samples_per_epoch(32, 8192), samples_per_epoch(2048, 2048)
    (8192, 8192)
    """
    return max(samples, 4 * batch_size)


def measure(workers: list[Worker], config: dict, after_group=lambda figures, skipped: None):
    """Figures (samples/s, `timing.summarize`) keyed by `figure_key`, and what was skipped.

    For each batch size: every worker prepares its candidates (with `config["warmup"]`, one
    untimed run each), then
    `config["repeats"]` rounds run every candidate of every worker once, in turn.
    """
    figures, skipped = {}, []
    for batch in config["batch_sizes"]:
        samples = samples_per_epoch(batch, config["samples"])
        candidates = []
        for worker in list(workers):
            request = {"batch_size": batch, "samples": samples, "seed": config["seed"]}
            request["warmup"] = config["warmup"]
            request["variants"] = worker_variants(worker.backend, config["variants"])
            try:
                reply = worker.request(op="prepare", **request)
            except WorkerError as error:
                skipped.append({"what": f"{worker.name} b{batch}", "reason": str(error)})
                workers.remove(worker)
                continue
            for variant, reason in reply["failed"].items():
                what = figure_key(worker.isa, worker.backend, variant, batch)
                skipped.append({"what": what, "reason": reason})
            candidates += [(worker, variant) for variant in reply["candidates"]]
        values = defaultdict(list)
        for _ in range(config["repeats"]):
            for worker, variant in list(candidates):
                key = figure_key(worker.isa, worker.backend, variant, batch)
                try:
                    reply = worker.request(op="run", name=variant)
                except WorkerError as error:
                    skipped.append({"what": key, "reason": str(error)})
                    candidates.remove((worker, variant))
                    continue
                values[key].append(reply["samples"] / max(reply["seconds"], 1e-9))
        figures.update({key: summarize(found) for key, found in values.items() if found})
        after_group(figures, skipped)
    return figures, skipped


def ratios(figures: dict) -> dict:
    """Each ratio of two figures of the same instruction set and batch size (naming both):
    each way of running the package over plain `fit` and over PyTorch eager, 32 steps per
    compiled call over the default, and the cosine schedule over a constant rate.

    Example:
    >>> figures = {"avx2/keras-jax/package/b32": {"median": 3.0},
    ...            "avx2/pytorch/eager/b32": {"median": 4.0}}
    >>> ratios(figures)["package_vs_pytorch_eager/avx2/keras-jax/b32"]["value"]
    0.75
    """
    found = {}
    for key in figures:
        f = key_fields(key)
        if f["variant"] not in PACKAGE_VARIANTS:
            continue
        isa, framework, batch, variant = f["isa"], f["framework"], f["batch_size"], f["variant"]
        pairs = {
            f"{variant}_vs_keras_fit": f"{isa}/{framework}/keras-fit/b{batch}",
            f"{variant}_vs_pytorch_eager": f"{isa}/pytorch/eager/b{batch}",
        }
        if variant == "package":
            pairs["package-spe32_vs_package"] = f"{isa}/{framework}/package-spe32/b{batch}"
            pairs["package-cosine_vs_package"] = f"{isa}/{framework}/package-cosine/b{batch}"
        for name, other in pairs.items():
            numerator, denominator = (other, key) if name.endswith("_vs_package") else (key, other)
            if numerator in figures and denominator in figures:
                value = figures[numerator]["median"] / figures[denominator]["median"]
                found[f"{name}/{isa}/{framework}/b{batch}"] = {
                    "numerator": numerator, "denominator": denominator, "value": value,
                }  # fmt: skip
    return found


def derive(result: dict) -> dict:
    """`result` with its `ratios` and `fastest` computed from its `figures`."""
    found = ratios(result["figures"])
    return {**result, "ratios": found, "fastest": fastest(result["figures"], found)}


def fastest(figures: dict, found_ratios: dict) -> list[dict]:
    """For each instruction set and batch size: the backend and way of running the package
    (`PACKAGE_VARIANTS`) with the highest median, its ratios to plain `fit` on the same backend
    and to PyTorch eager, the best figure of another backend (`runner_up`), and whether the
    two are `separated` (the fastest one's slowest repeat beat the runner-up's fastest).

    Example:
    >>> figures = {"avx2/keras-jax/package/b32": {"median": 3.0, "min": 2.5, "max": 3.5},
    ...            "avx2/keras-torch/package-spe32/b32": {"median": 2.0, "min": 1.0, "max": 2.6}}
    >>> [(row["backend"], row["runner_up"], row["separated"]) for row in fastest(figures, {})]
    [('jax', 'avx2/keras-torch/package-spe32/b32', False)]
    """
    groups = defaultdict(list)
    for key in figures:
        f = key_fields(key)
        if f["variant"] in PACKAGE_VARIANTS:
            groups[(f["isa"], f["batch_size"])].append(key)
    rows = []
    for (isa, batch), keys in sorted(groups.items()):
        best = max(keys, key=lambda key: figures[key]["median"])
        f = key_fields(best)
        row = {"isa": isa, "batch_size": batch, "backend": f["framework"].removeprefix("keras-")}
        row.update(variant=f["variant"], figure=best, samples_per_second=figures[best]["median"])
        others = [k for k in keys if key_fields(k)["framework"] != f["framework"]]
        runner_up = max(others, key=lambda key: figures[key]["median"], default=None)
        row["runner_up"] = runner_up
        row["separated"] = runner_up is not None and (
            figures[best]["min"] > figures[runner_up]["max"]
        )  # the two min-max ranges do not overlap
        for peer in ("keras_fit", "pytorch_eager"):
            ratio = found_ratios.get(f"{f['variant']}_vs_{peer}/{isa}/{f['framework']}/b{batch}")
            row[f"package_vs_{peer}"] = ratio["value"] if ratio else None
        rows.append(row)
    return rows
