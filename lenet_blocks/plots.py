"""Every PNG the package writes: training curves and confusion matrices."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lenet_blocks.artifacts import write_with


def plot_training_curves(history: dict[str, list[float]], path: str | os.PathLike) -> None:
    """Loss and accuracy per epoch, training vs validation, side by side, as a PNG.

    Args:
        history: per-epoch lists keyed `loss`, `accuracy`, `val_loss`, `val_accuracy` (the
            validation keys are optional).
        path: the PNG file to write (atomically).

    Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "curves.png"
    >>> plot_training_curves({"loss": [1.0, 0.5], "accuracy": [0.5, 0.8]}, path)
    >>> path.read_bytes()[:4] == b"\\x89PNG"
    True
    """
    figure = Figure(figsize=(10, 4))
    axes = figure.subplots(1, 2)
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = history.get(prefix + metric)
            if values:
                axis.plot(range(1, len(values) + 1), values, marker="o", label=label)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle("Training curves")
    figure.tight_layout()
    _save(figure, path)


def plot_confusion_matrix(
    matrix: np.ndarray, class_names: Sequence[str], path: str | os.PathLike, title: str = ""
) -> None:
    """A confusion matrix (rows: true class, columns: predicted), counts in the cells, as a PNG.

    Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cm.png"
    >>> plot_confusion_matrix(np.eye(2, dtype=int), ["a", "b"], path)
    >>> path.exists()
    True
    """
    matrix = np.asarray(matrix)
    size = max(4.0, 0.6 * len(class_names) + 2)
    figure = Figure(figsize=(size + 1, size))
    axis = figure.subplots()
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis)
    ticks = np.arange(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=45, ha="right")
    axis.set_yticks(ticks, class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        color = "white" if count > threshold else "black"
        axis.text(column, row, str(count), ha="center", va="center", color=color, fontsize=8)
    axis.set_title(title or "Confusion matrix")
    figure.tight_layout()
    _save(figure, path)


def _save(figure: Figure, path: str | os.PathLike) -> None:
    write_with(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110))


def plot_search(rows: list[dict], path: str | os.PathLike, objective: str = "val_accuracy") -> None:
    """A search at a glance: the objective of each trial in trial order, and the best so far.

    Args:
        rows: leaderboard rows (`trial_id`, `status`, `val_accuracy`), any order.
        path: the PNG file to write (atomically).
        objective: name of the objective, for the axis label.

    Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "search.png"
    >>> plot_search([{"trial_id": "0", "status": "COMPLETED", "val_accuracy": 0.8},
    ...              {"trial_id": "1", "status": "FAILED", "val_accuracy": None}], path)
    >>> path.exists()
    True
    """
    ordered = sorted(rows, key=lambda row: int(row["trial_id"]))
    numbers = np.arange(1, len(ordered) + 1)
    scores = np.array([np.nan if r["val_accuracy"] is None else r["val_accuracy"] for r in ordered])
    best_so_far = np.fmax.accumulate(scores) if len(scores) else scores
    figure = Figure(figsize=(8, 4))
    axis = figure.subplots()
    completed = ~np.isnan(scores)
    axis.scatter(numbers[completed], scores[completed], label="trial", zorder=3)
    axis.step(numbers, best_so_far, where="post", color="tab:orange", label="best so far")
    for number, row in zip(numbers, ordered, strict=True):
        if row["val_accuracy"] is None:
            axis.axvline(number, color="tab:red", alpha=0.3, linestyle=":")
    axis.set_xlabel("trial")
    axis.set_xlim(0.5, max(len(ordered), 1) + 0.5)  # whole trial numbers, even for one trial
    axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    axis.set_ylabel(objective)
    axis.set_title(f"Search: {int(completed.sum())} completed of {len(ordered)} trials")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    _save(figure, path)
