"""DAWNBench-style time to accuracy: a training clock that stops while the model is evaluated."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


class AccuracyClock:
    """Training seconds (evaluation excluded) and the test-accuracy curve of one run.

    Start it when training starts (so tracing and compilation count), `pause()` it before
    each evaluation and `record(...)` the evaluation's accuracy, which resumes it. It says when
    to stop: every threshold reached, or `max_seconds` of training spent.

    Example:
    >>> clock = AccuracyClock(thresholds=(0.5, 0.9), max_seconds=60)
    >>> clock.start(); clock.pause()
    >>> clock.record(samples=100, accuracy=0.6)
    False
    >>> clock.result()["time_to_accuracy"]["0.9"] is None
    True
    """

    def __init__(self, thresholds: tuple[float, ...], max_seconds: float):
        self.thresholds = tuple(thresholds)
        self.max_seconds = max_seconds
        self.curve: list[dict] = []
        self.time_to: dict[str, float | None] = {f"{t:g}": None for t in self.thresholds}
        self._spent = 0.0
        self._since: float | None = None

    @property
    def seconds(self) -> float:
        """Training seconds so far."""
        running = time.perf_counter() - self._since if self._since is not None else 0.0
        return self._spent + running

    def start(self) -> None:
        """Starts (or resumes) the clock."""
        self._since = time.perf_counter()

    def pause(self) -> None:
        """Stops the clock before an evaluation."""
        self._spent, self._since = self.seconds, None

    def record(self, samples: int, accuracy: float) -> bool:
        """Records an evaluation after `samples` training samples, resumes the clock and returns
        whether to stop (every threshold reached, or the time cap spent)."""
        seconds = self.seconds
        self.curve.append({"seconds": seconds, "samples": samples, "accuracy": float(accuracy)})
        for threshold in self.thresholds:
            key = f"{threshold:g}"
            if self.time_to[key] is None and accuracy >= threshold:
                self.time_to[key] = seconds
        self.start()
        reached = all(value is not None for value in self.time_to.values())
        return reached or seconds >= self.max_seconds

    def result(self) -> dict:
        """The run's outcome: time to each threshold (`None`: not reached within the cap)."""
        best = max((point["accuracy"] for point in self.curve), default=None)
        return {
            "time_to_accuracy": dict(self.time_to),
            "training_seconds": self.curve[-1]["seconds"] if self.curve else 0.0,
            "best_accuracy": best,
            "evaluations": len(self.curve),
            "curve": list(self.curve),
            "max_seconds": self.max_seconds,
        }


def train_until_accurate(
    train_step: Callable[[np.ndarray], object],
    evaluate: Callable[[], float],
    clock: AccuracyClock,
    *,
    samples: int,
    batch_size: int,
    eval_every: int,
    seed: int,
    sync: Callable[[object], None] = lambda result: None,
) -> dict:
    """A plain training loop for the peers: shuffled epochs of `train_step(batch_indices)`,
    `evaluate()` (test accuracy) every `eval_every` samples, until `clock` says stop.

    `sync(result)` waits for the last step's device work before the clock is paused.

    Example:
    >>> clock = AccuracyClock(thresholds=(0.5,), max_seconds=60)
    >>> result = train_until_accurate(lambda batch: None, lambda: 0.7, clock,
    ...                               samples=10, batch_size=4, eval_every=8, seed=0)
    >>> result["time_to_accuracy"]["0.5"] is not None, result["curve"][0]["samples"]
    (True, 8)
    """
    generator = np.random.default_rng(seed)
    seen = evaluated_at = 0
    clock.start()
    while True:
        order = generator.permutation(samples)
        for start in range(0, samples, batch_size):
            batch = order[start : start + batch_size]
            result = train_step(batch)
            seen += len(batch)
            if seen - evaluated_at >= eval_every:
                sync(result)
                clock.pause()
                if clock.record(seen, evaluate()):
                    return clock.result()
                evaluated_at = seen
