"""Atomic file writes: a killed process leaves the old file or the new one, never half of one.

A write goes to a temporary file beside its target, is flushed to disk, renamed over the target
in one step, and the directory is flushed too. A process killed mid-write leaves only a
temporary file (`.tmp-...`), which `remove_temporaries` clears at the next start.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import keras

TEMPORARY_PREFIX = ".tmp-"  # `atomic_path`'s temporary files: `.tmp-<12 hex digits>-<name>`


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
    tmp = path.parent / f"{TEMPORARY_PREFIX}{uuid.uuid4().hex[:12]}-{path.name}"
    try:
        yield tmp
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
        _fsync_directory(path.parent)  # the rename itself survives a power loss
    finally:
        tmp.unlink(missing_ok=True)


def remove_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Removes the temporary files a killed writer left in `directory`; returns them.

    Only safe while no one else writes there: under the directory's lock
    (`lenet_blocks.locking.lock_directory`).

    Example:
    >>> import tempfile
    >>> directory = Path(tempfile.mkdtemp())
    >>> _ = (directory / ".tmp-0123456789ab-model.keras").write_bytes(b"")
    >>> [path.name for path in remove_temporaries(directory)], list(directory.iterdir())
    (['.tmp-0123456789ab-model.keras'], [])
    """
    left = sorted(Path(directory).glob(f"{TEMPORARY_PREFIX}*"))
    for path in left:
        path.unlink(missing_ok=True)
    return left


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


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


def read_json(path: str | os.PathLike) -> object:
    """The JSON value in `path`; a damaged file is a `ValueError` that names it.

    Example:
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "state.json"
    >>> _ = target.write_text('{"epochs_done": 2')
    >>> read_json(target)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: .../state.json is damaged: not JSON (Expecting ',' delimiter: ...).
    """
    try:
        return json.loads(Path(path).read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is damaged: not JSON ({error}).") from None


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """Saves `model` as a `.keras` file, atomically.

    Example:
    >>> import tempfile
    >>> from lenet_blocks import build_lenet
    >>> save_model(build_lenet(), Path(tempfile.mkdtemp()) / "m.keras").name
    'm.keras'
    """
    return write_with(path, model.save)
