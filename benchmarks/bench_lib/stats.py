"""Summaries of repeated measurements, the ids of figures, and ratios computed from them."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence


def summarize(values: Sequence[float]) -> dict:
    """Median and spread (min, max, quartiles) of repeated measurements.

    Example:
    >>> summary = summarize([3.0, 1.0, 2.0, 4.0])
    >>> summary["median"], summary["min"], summary["max"], summary["repeats"]
    (2.5, 1.0, 4.0, 4)
    """
    if not values:
        raise ValueError("`values` must hold at least one measurement. Received: values=[]")
    ordered = sorted(float(value) for value in values)
    if len(ordered) > 1:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "q1": q1,
        "q3": q3,
        "repeats": len(ordered),
        "values": [float(value) for value in values],
    }


def ratio(figures: Mapping[str, dict], numerator: str, denominator: str, description: str) -> dict:
    """A ratio of two stored figures' medians, naming both so that it can be re-checked.

    Example:
    >>> figures = {"a": {"median": 6.0}, "b": {"median": 3.0}}
    >>> ratio(figures, "a", "b", "a over b")["value"]
    2.0
    """
    return {
        "numerator": numerator,
        "denominator": denominator,
        "value": figures[numerator]["median"] / figures[denominator]["median"],
        "description": description,
    }


def ranges_overlap(first: dict, second: dict) -> bool:
    """Whether two figures' min-max ranges overlap (their difference is within the noise).

    Example:
    >>> ranges_overlap({"min": 1, "max": 3}, {"min": 2, "max": 5})
    True
    """
    return first["min"] <= second["max"] and second["min"] <= first["max"]


def figure_id(
    mode: str, framework: str, model: str, precision: str, compiler: str, feed: str, batch: int
) -> str:
    """The key of one throughput figure.

    Example:
    >>> figure_id("train", "keras-tensorflow", "notebook", "float32", "xla", "tensor", 32)
    'train/keras-tensorflow/notebook/float32/xla/tensor/b32'
    """
    return f"{mode}/{framework}/{model}/{precision}/{compiler}/{feed}/b{batch}"


def figure_fields(mode, framework, model, precision, compiler, feed, batch) -> tuple[str, dict]:
    """A figure's id (`figure_id`) and the fields stored with it, by the same names.

    Example:
    >>> figure_fields("infer", "pytorch", "notebook", "float32", "eager", "tensor", 32)[1]["feed"]
    'tensor'
    """
    key = figure_id(mode, framework, model, precision, compiler, feed, batch)
    return key, {
        "mode": mode,
        "framework": framework,
        "model": model,
        "precision": precision,
        "compiler": compiler,
        "feed": feed,
        "batch_size": batch,
    }
