"""Atomic file writes: a killed process leaves the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import keras


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path`; on success it replaces `path` in one rename.

    The temporary name ends with `path`'s name, so writers that check extensions
    (`model.save` wants `.keras`, `savefig` reads `.png`) accept it. On error it is removed.

    Example:
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "note.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{uuid.uuid4().hex[:12]}-{path.name}"
    try:
        yield tmp
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_with(path: str | os.PathLike, writer: Callable[[Path], object]) -> Path:
    """Calls `writer(tmp_path)` and moves the result to `path` atomically; returns `path`.

    Example:
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "x.txt"
    >>> write_with(target, lambda tmp: tmp.write_text("x")).read_text()
    'x'
    """
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_json(path: str | os.PathLike, data: object) -> Path:
    """Writes `data` as indented JSON, atomically.

    Example:
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "metrics.json"
    >>> json.loads(write_json(target, {"accuracy": 0.8}).read_text())
    {'accuracy': 0.8}
    """
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return write_with(path, lambda tmp: tmp.write_text(text))


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """Saves `model` as a `.keras` file, atomically.

    Example:
    >>> import tempfile
    >>> from lenet_blocks import build_lenet
    >>> save_model(build_lenet(), Path(tempfile.mkdtemp()) / "m.keras").name
    'm.keras'
    """
    return write_with(path, model.save)
