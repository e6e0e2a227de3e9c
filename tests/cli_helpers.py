"""One way for tests to run `lenet-blocks` in a real subprocess."""

from __future__ import annotations

import subprocess
import sys


def run_cli(*args, python: str = sys.executable, env=None, timeout: float = 600):
    """Runs `python -m lenet_blocks ARGS...`; returns the `CompletedProcess` (text output).

    Args:
        *args: command-line arguments (paths and numbers are turned into strings).
        python: the interpreter (another virtual environment's, for another backend).
        env: the environment of the process (default: this one's).
        timeout: seconds before the process is killed and the test fails.
    """
    return subprocess.run(
        [python, "-m", "lenet_blocks", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
