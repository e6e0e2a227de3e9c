"""Framework-agnostic throughput timing: warm-up excluded, repeats interleaved.

Every framework (Keras on TensorFlow, PyTorch, Keras on JAX) is measured with the same
`measure_interleaved`, so their figures mean the same thing: samples per second over whole
calls, each call ending only once its device work is done (`sync`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench_lib.stats import summarize


def _no_sync(result: object) -> None:
    """For calls that return only when their work is done (eager CPU work, `fit`)."""


@dataclass
class Candidate:
    """One thing to time.

    Attributes:
        name: key of its figure.
        run: does one call (one training step, one forward pass, one `fit` epoch ...).
        samples_per_call: samples one call processes.
        sync: waits until the device work of `run`'s result is done (GPU work is queued
            asynchronously); the default does nothing.
    """

    name: str
    run: Callable[[], object]
    samples_per_call: int
    sync: Callable[[object], None] = field(default=_no_sync)

    def warm_up(self, calls: int) -> float:
        """Makes one untimed call (tracing, compilation), then `calls` more; returns their
        mean seconds per call."""
        self.sync(self.run())
        return self.timed(calls) / calls

    def timed(self, calls: int) -> float:
        """Seconds taken by `calls` calls, their device work included."""
        started = time.perf_counter()
        for _ in range(calls):
            result = self.run()
        self.sync(result)
        return time.perf_counter() - started


def repeated_step(
    name: str,
    step: Callable[[object, object], object],
    x: object,
    y: object,
    steps: int,
    batch_size: int,
    sync: Callable[[object], None] = _no_sync,
) -> Candidate:
    """A `Candidate` whose call runs `step(x, y)` `steps` times on one batch of `batch_size`."""

    def run():
        for _ in range(steps):
            result = step(x, y)
        return result

    return Candidate(name, run, steps * batch_size, sync)


def measure_interleaved(
    candidates: list,
    *,
    warmup_calls: int,
    repeats: int,
    min_seconds: float,
    max_calls: int = 100_000,
) -> tuple[dict[str, dict], dict[str, str]]:
    """Throughput of each candidate in samples/s: median and spread over `repeats`.

    Each candidate makes one untimed first call (tracing, compilation) and `warmup_calls`
    more, whose timing sets how many calls one repeat makes (enough to last `min_seconds`,
    at least one). The repeats then run round-robin (A B C, A B C, ...) so that a change of
    load on a shared machine hits every candidate alike, which keeps their ratios fair.
    A candidate is anything with `name`, `samples_per_call`, `warm_up(calls)` and
    `timed(calls)`, such as a `Candidate` or a peer's `peers.RemoteCandidate`.

    Returns:
        `(figures, failures)`: figures by candidate name (the `summarize` keys plus `unit`,
        `calls_per_repeat` and `warmup_calls`), and the error message of each candidate
        whose warm-up or a repeat raised (it is then left out).

    Example:
    >>> figures, failures = measure_interleaved(
    ...     [Candidate("sleep", lambda: time.sleep(0.001), samples_per_call=10)],
    ...     warmup_calls=1, repeats=3, min_seconds=0.01)
    >>> figures["sleep"]["repeats"], failures
    (3, {})
    """
    if warmup_calls < 1 or repeats < 1:
        raise ValueError(
            "`warmup_calls` and `repeats` must be at least 1. "
            f"Received: warmup_calls={warmup_calls}, repeats={repeats}"
        )
    calls, failures = {}, {}
    for candidate in candidates:
        try:
            per_call = max(candidate.warm_up(warmup_calls), 1e-9)
        except Exception as error:  # a configuration the device or library cannot run
            failures[candidate.name] = f"{type(error).__name__}: {str(error)[:300]}"
            continue
        calls[candidate.name] = min(max_calls, max(1, math.ceil(min_seconds / per_call)))
    values = {name: [] for name in calls}
    for _ in range(repeats):
        for candidate in candidates:
            if candidate.name not in calls:
                continue
            count = calls[candidate.name]
            try:
                elapsed = candidate.timed(count)
            except Exception as error:  # e.g. a peer's worker that died
                failures[candidate.name] = f"{type(error).__name__}: {str(error)[:300]}"
                del calls[candidate.name], values[candidate.name]
                continue
            values[candidate.name].append(count * candidate.samples_per_call / elapsed)
    figures = {
        name: {
            **summarize(samples_per_second),
            "unit": "samples/s",
            "calls_per_repeat": calls[name],
            "warmup_calls": 1 + warmup_calls,
        }
        for name, samples_per_second in values.items()
    }
    return figures, failures
