"""An exclusive lock on a directory (a training run, a tuner project) for the whole of a run.

`lock_directory(path)` takes `filelock`'s OS-level lock (`flock` on Unix) on `path/.lock`,
without waiting: a second process gets `DirectoryLockedError`, naming the PID written into the
lock file by the holder. The kernel releases the lock when its process dies, however it dies, so
a lock left by a killed run is taken over by the next start with no stale-lock check. On a
filesystem without `flock` the lock cannot be taken, and `lock_directory` says so (`ValueError`)
rather than run unlocked.

Example:
>>> import tempfile
>>> run = Path(tempfile.mkdtemp()) / "run"
>>> with lock_directory(run):  # doctest: +ELLIPSIS
...     with lock_directory(run):
...         pass
Traceback (most recent call last):
...
lenet_blocks.locking.DirectoryLockedError: ...run is in use by another run (PID ...); ...
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import filelock

__all__ = ["LOCK_FILE", "DirectoryLockedError", "lock_directory"]

LOCK_FILE = ".lock"


class DirectoryLockedError(FileExistsError):
    """Another process holds the lock on the directory (a run or search is in progress there)."""


@contextlib.contextmanager
def lock_directory(path: str | os.PathLike, what: str = "run") -> Iterator[Path]:
    """Holds an exclusive lock on directory `path` (created if missing) while the block runs.

    Args:
        path: the directory to lock.
        what: str. What the directory holds, for the messages (`"run"`, `"tuner project"`).

    Yields:
        `path` as a `Path`.

    Raises:
        DirectoryLockedError: another process holds the lock (a `FileExistsError`).
        FileExistsError: `path` exists and is not a directory.
        ValueError: the directory or its lock file cannot be created (e.g. not writable).

    Example:
    >>> import tempfile
    >>> with lock_directory(Path(tempfile.mkdtemp()) / "run") as run:
    ...     sorted(p.name for p in run.iterdir())
    ['.lock']
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file, not a {what} directory; choose another path.")
    lock_path = path / LOCK_FILE
    lock = filelock.FileLock(lock_path, timeout=0, on_acquired=_write_pid)
    try:
        path.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except filelock.Timeout:
        raise DirectoryLockedError(
            f"{path} is in use by another {what} ({_holder(lock_path)}); wait for it to end or "
            "choose another directory."
        ) from None
    except OSError as error:
        raise ValueError(
            f"The {what} directory {path} cannot be locked: {error.strerror or error}."
        ) from None
    try:
        yield path
    finally:
        # Removed while still held, so that a finished directory holds only its results; a
        # process that opened the old file meanwhile finds it unlinked and does not take it.
        lock_path.unlink(missing_ok=True)
        lock.release()


def _write_pid(descriptor: int) -> None:
    os.ftruncate(descriptor, 0)
    os.write(descriptor, str(os.getpid()).encode())


def _holder(lock_path: Path) -> str:
    try:
        pid = lock_path.read_text().strip()
    except OSError:
        pid = ""
    return f"PID {pid}" if pid.isdigit() else "PID unknown"
