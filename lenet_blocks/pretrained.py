"""Shipped trained weights: the manifest, hash-checked files, and loading them into a model.

`lenet_blocks/weights/manifest.json` lists, for each preset, its trained weight sets (today
`"fashion_mnist"`): the file, its SHA256 and size, the command, seed and date of the training
run that produced it, the parameter count and the test accuracy that run measured. The run
records (`weights/records/PRESET.json`, the runs' `metrics.json`) lie beside it. All of it is
written by `scripts/build_pretrained_weights.py`; docs/pretrained.md has the table.

Example:
>>> sorted(pretrained_presets()["notebook"])
['fashion_mnist']
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from lenet_blocks.datasets import FASHION_MNIST_CLASS_NAMES

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST_FILE = WEIGHTS_DIR / "manifest.json"
WEIGHT_SETS = ("fashion_mnist",)
# What a named weight set was trained for: `build_lenet(weights=...)` requires it of the head.
WEIGHT_SET_CLASSES = {"fashion_mnist": 10}
WEIGHT_SET_CLASS_NAMES = {"fashion_mnist": FASHION_MNIST_CLASS_NAMES}
WEIGHTS_SUFFIX = ".weights.h5"

__all__ = ["load_weights", "pretrained_presets", "weights_file", "weights_table"]


@functools.cache
def _manifest() -> dict:
    if not MANIFEST_FILE.exists():
        return {}
    try:
        return json.loads(MANIFEST_FILE.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{MANIFEST_FILE} is not valid JSON: {error}") from None


def pretrained_presets() -> dict[str, dict[str, dict]]:
    """Presets with shipped weights: `{preset: {weight set: manifest entry}}`.

    Each entry has `file`, `sha256`, `bytes`, `command`, `seed`, `date`, `parameters`,
    `test_accuracy`, `train_seconds`, `record` and `versions`.
    """
    return json.loads(json.dumps(_manifest()))  # a copy


def weights_file(preset: str, weights: str = "fashion_mnist") -> Path:
    """The verified path of a shipped weight file.

    Raises:
        ValueError: no such weight set for `preset`, or the file is missing or does not match
            the SHA256 of the manifest (it is then never loaded).
    """
    entry = _manifest().get(preset, {}).get(weights)
    if entry is None:
        available = sorted(_manifest().get(preset, {}))
        raise ValueError(
            f"`weights` must be None, a path to a {WEIGHTS_SUFFIX} file, or one of the weight sets "
            f"shipped for preset {preset!r}: {available}. Received: weights={weights!r}"
        )
    path = WEIGHTS_DIR / entry["file"]
    if not path.is_file():
        raise ValueError(f"The shipped weight file {path} is missing; reinstall lenet_blocks.")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != entry["sha256"]:
        raise ValueError(
            f"The weight file {path} does not match its manifest (SHA256 {digest}, expected "
            f"{entry['sha256']}); it was not loaded. Reinstall lenet_blocks, or rebuild the "
            "weights with scripts/build_pretrained_weights.py."
        )
    return path


def named_weight_set(weights) -> bool:
    """Whether `weights` names a shipped weight set (rather than a file path)."""
    return isinstance(weights, str) and weights in WEIGHT_SETS


def load_weights(model, weights: str | os.PathLike, *, preset: str, full_model=None) -> None:
    """Loads `weights` (a shipped set of `preset`, or a `.weights.h5` path) into `model`.

    Args:
        model: the built `keras.Model`.
        weights: `"fashion_mnist"` or a path.
        preset: the preset `model` was built from.
        full_model: for a headless `model` and a shipped set, the preset's full model: the set
            is loaded into it, and every layer `model` shares with it (by name) takes its
            weights.

    Raises:
        ValueError: a missing, mismatching or corrupt file; the message names it.
    """
    if named_weight_set(weights):
        path = weights_file(preset, weights)
    else:
        path = Path(weights) if isinstance(weights, str | os.PathLike) else None
        if path is None or not path.name.endswith(WEIGHTS_SUFFIX) or not path.is_file():
            raise ValueError(
                f"`weights` must be None, one of {WEIGHT_SETS}, or the path of an existing "
                f"{WEIGHTS_SUFFIX} file. Received: weights={weights!r}"
            )
    target = model if full_model is None else full_model
    try:
        target.load_weights(path)
    except (ValueError, KeyError, OSError) as error:
        message = " ".join(str(error).split())
        raise ValueError(
            f"The weights in {path} do not fit model {target.name!r}: {message}"
        ) from None
    if full_model is not None:
        names = {layer.name for layer in full_model.layers}
        for layer in model.layers:
            if layer.weights and layer.name in names:
                layer.set_weights(full_model.get_layer(layer.name).get_weights())


def weights_table() -> str:
    """The Markdown table of the shipped weights, from the manifest (docs/pretrained.md has it).

    Example:
    >>> weights_table().splitlines()[0]
    '| preset | weights | parameters | test accuracy | file size | training time | command |'
    """
    lines = [
        "| preset | weights | parameters | test accuracy | file size | training time | command |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for preset, sets in _manifest().items():
        for name, entry in sets.items():
            lines.append(
                f"| `{preset}` | `{name}` | {entry['parameters']:,} | "
                f"{entry['test_accuracy']:.4f} | {entry['bytes'] / 1024:.0f} KiB | "
                f"{entry['train_seconds']:.0f} s ({entry['epochs']} epochs) | "
                f"`{entry['command']}` |"
            )
    return "\n".join(lines)
