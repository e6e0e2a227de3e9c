"""The output path of an export: no overwrite without `force`, and a directory put in place whole.

A file artifact goes through `lenet_blocks.artifacts.atomic_path`; a SavedModel is a directory,
which `artifacts` has no atomic write for, hence `atomic_directory` here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


def refuse_overwrite(path: Path, force: bool) -> None:
    """Raises `FileExistsError` if `path` exists (or is a dangling link) and `force` is false.

    Args:
        path: the output path.
        force: bool. Whether an existing `path` may be replaced.

    Example:
    >>> refuse_overwrite(Path("/"), force=False)
    Traceback (most recent call last):
    ...
    FileExistsError: '/' already exists; pass force=True (--force) to overwrite it.
    """
    if not force and (path.exists() or path.is_symlink()):
        raise FileExistsError(
            f"{str(path)!r} already exists; pass force=True (--force) to overwrite it."
        )


def make_room(path: Path, force: bool) -> None:
    """Right before the final rename: re-checks `path`, and removes a directory standing there.

    A file is replaced by the rename itself; a directory cannot be, so it goes first.

    Args:
        path: the output path.
        force: bool. Whether an existing `path` may be replaced.

    Example:
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp())
    >>> make_room(target, force=True)
    >>> target.exists()
    False
    """
    refuse_overwrite(path, force)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)


@contextlib.contextmanager
def atomic_directory(path: Path, force: bool) -> Iterator[Path]:
    """Yields a temporary sibling directory path; on success the directory takes `path`'s place.

    Its files are fsynced first. A directory cannot replace a non-empty one in one `rename`, so
    an existing `path` (with `force`) is first renamed aside, then the new directory renamed in,
    then the old one removed. On error the temporary is removed and `path` is left as it was.

    Args:
        path: the output directory.
        force: bool. Whether an existing `path` may be replaced.

    Example:
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out"
    >>> with atomic_directory(target, force=False) as tmp:
    ...     tmp.mkdir()
    ...     _ = (tmp / "saved_model.pb").write_bytes(b"x")
    >>> sorted(p.name for p in target.parent.iterdir()), tree_size(target)
    (['out'], 1)
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{uuid.uuid4().hex[:12]}-{path.name}"
    aside = path.parent / f".old-{uuid.uuid4().hex[:12]}-{path.name}"
    try:
        yield tmp
        for file in (f for f in tmp.rglob("*") if f.is_file()):
            with open(file, "rb") as written:
                os.fsync(written.fileno())
        refuse_overwrite(path, force)
        if path.exists() or path.is_symlink():
            os.replace(path, aside)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if aside.is_dir() and not aside.is_symlink():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            aside.unlink(missing_ok=True)


def tree_size(path: Path) -> int:
    """The total size in bytes of the files under the directory `path`.

    Args:
        path: a directory.

    Example:
    >>> import tempfile
    >>> tree_size(Path(tempfile.mkdtemp()))
    0
    """
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
