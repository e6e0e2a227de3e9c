"""Tests of the directory lock: one holder at a time, the holder's PID, takeover after a kill."""

import os
import subprocess
import sys

import pytest

from lenet_blocks.locking import LOCK_FILE, DirectoryLockedError, lock_directory

HOLD_AND_REPORT = """
import sys
from lenet_blocks.locking import lock_directory

try:
    with lock_directory(sys.argv[1], what="tuner project"):
        print("acquired")
except FileExistsError as error:
    print(f"{type(error).__name__}: {error}")
"""
KILLED_WHILE_HOLDING = """
import os, signal, sys
from lenet_blocks.locking import lock_directory

with lock_directory(sys.argv[1]):
    os.kill(os.getpid(), signal.SIGKILL)
"""


def run_python(code, *args):
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_second_process_is_refused_with_the_holders_pid(tmp_path):
    with lock_directory(tmp_path / "project", what="tuner project"):
        other = run_python(HOLD_AND_REPORT, tmp_path / "project")
    assert other.stdout.strip() == (
        f"DirectoryLockedError: {tmp_path / 'project'} is in use by another tuner project "
        f"(PID {os.getpid()}); wait for it to end or choose another directory."
    )
    assert run_python(HOLD_AND_REPORT, tmp_path / "project").stdout.strip() == "acquired"


def test_second_lock_in_the_same_process_is_refused(tmp_path):
    refused = pytest.raises(DirectoryLockedError, match=f"PID {os.getpid()}")
    with lock_directory(tmp_path), refused, lock_directory(tmp_path):
        pass


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
    killed = subprocess.Popen([sys.executable, "-c", KILLED_WHILE_HOLDING, str(tmp_path / "run")])
    assert killed.wait(timeout=60) == -9
    assert (tmp_path / "run" / LOCK_FILE).read_text() == str(killed.pid)
    with lock_directory(tmp_path / "run"):
        assert (tmp_path / "run" / LOCK_FILE).read_text() == str(os.getpid())


def test_released_lock_leaves_no_file(tmp_path):
    with lock_directory(tmp_path / "run") as run:
        (run / "model.keras").write_text("")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["model.keras"]


def test_a_file_is_not_a_directory_to_lock(tmp_path):
    (tmp_path / "run").write_text("")
    with (
        pytest.raises(FileExistsError, match=r"run is a file, not a run directory"),
        lock_directory(tmp_path / "run"),
    ):
        pass


def test_uncreatable_directory_is_a_one_line_value_error(tmp_path):
    (tmp_path / "file").write_text("")
    with (
        pytest.raises(ValueError, match=r"The run directory .*file/run cannot be locked"),
        lock_directory(tmp_path / "file" / "run"),
    ):
        pass
