"""The one timing core, for every framework: samples/s over whole calls (device work included),
warm-up excluded, repeats interleaved round-robin, medians and spread."""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

STATS = ("median", "min", "q1", "q3", "max")


def positive(text: str) -> int:
    """A count given on the command line (repeats, samples, batch sizes): an int of 1 or more.

    Example:
    >>> positive("3")
    3
    """
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1. Received: {value}")
    return value


def summarize(values: Sequence[float]) -> dict:
    """Median, min, max and quartiles of repeated measurements, to 6 significant digits.

    Example:
    >>> summary = summarize([3.0, 1.0, 2.0, 4.0])
    >>> summary["median"], summary["min"], summary["max"], summary["repeats"]
    (2.5, 1.0, 4.0, 4)
    """
    if not values:
        raise ValueError("`values` must hold at least one measurement. Received: values=[]")
    ordered = sorted(float(value) for value in values)
    quartiles = statistics.quantiles(ordered, n=4, method="inclusive") if ordered[1:] else ordered
    stats = (statistics.median(ordered), ordered[0], quartiles[0], quartiles[-1], ordered[-1])
    summary = {key: float(f"{value:.6g}") for key, value in zip(STATS, stats, strict=True)}
    return {**summary, "repeats": len(values)}


@dataclass
class Candidate:
    """One thing to time: `run` makes one call of `samples_per_call` samples (a step, a
    forward pass, a `fit` epoch ...), `sync` waits for its result's device work."""

    name: str
    run: Callable[[], object]
    samples_per_call: int
    sync: Callable[[object], object] = lambda result: None

    def timed(self, calls: int) -> float:
        """Seconds taken by `calls` calls, their device work included."""
        started = time.perf_counter()
        for _ in range(calls):
            result = self.run()
        self.sync(result)
        return time.perf_counter() - started


def measure_interleaved(
    candidates: list[Candidate], *, warmup_calls: int, repeats: int, min_seconds: float
) -> tuple[dict[str, dict], dict[str, str]]:
    """Throughput of each candidate in samples/s: `summarize` over `repeats` repeats.

    Each candidate makes one untimed call (tracing, compilation) and `warmup_calls` more,
    whose timing sets how many calls one repeat makes (enough to last `min_seconds`). The
    repeats then run round-robin (A B C, A B C, ...) so that a change of load on a shared
    machine hits every candidate alike, which keeps their ratios fair.

    Returns:
        `(figures, failures)`: figures by candidate name (with `calls_per_repeat`), and the
        error of each candidate whose warm-up or a repeat raised (it is then left out).

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
    calls, values, failures = {}, {}, {}

    def attempt(candidate: Candidate, count: int) -> float | None:
        try:
            return max(candidate.timed(count), 1e-9)
        except Exception as error:  # a setting the device or library cannot run
            failures[candidate.name] = f"{type(error).__name__}: {str(error)[:300]}"
            calls.pop(candidate.name, None)
            return None

    for candidate in candidates:
        if attempt(candidate, 1) is not None and (seconds := attempt(candidate, warmup_calls)):
            calls[candidate.name] = max(1, math.ceil(min_seconds * warmup_calls / seconds))
            values[candidate.name] = []
    for _ in range(repeats):
        for candidate in candidates:
            if candidate.name in calls and (seconds := attempt(candidate, calls[candidate.name])):
                values[candidate.name].append(
                    calls[candidate.name] * candidate.samples_per_call / seconds
                )
    figures = {
        name: {**summarize(values[name]), "calls_per_repeat": count}
        for name, count in calls.items()
    }
    return figures, failures
