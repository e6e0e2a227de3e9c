"""For the benchmark tests: run a script's `--quick` sweep, or a script without TensorFlow."""

from __future__ import annotations

import importlib
import json
import subprocess
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
BENCHMARKS = REPOSITORY / "benchmarks"
# `python -c WITHOUT_TENSORFLOW script.py ARGS...` runs the script with TensorFlow unimportable.
WITHOUT_TENSORFLOW = """
import importlib.abc, runpy, sys

class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError(f"TensorFlow is blocked in this test: {name}")

sys.meta_path.insert(0, NoTensorFlow())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_quick(command: list[str], output: Path, env: dict, kind: str = "throughput") -> dict:
    """Runs `command --quick --output output` from the repository root (10 minutes at most).

    Returns:
        `output`, the parsed `<kind>.json` as `result`, and the run's `stdout`.
    """
    process = subprocess.run(
        [*command, "--quick", "--output", str(output)],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads((output / f"{kind}.json").read_text())
    return {"output": output, "result": result, "stdout": process.stdout}


@pytest.fixture(name="bench_lib")
def bench_lib_fixture(monkeypatch):
    """`bench_lib(name)` imports a module of `benchmarks/bench_lib` (a fixture: a test module
    imports `bench_lib_fixture` to use it)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return lambda name: importlib.import_module(f"bench_lib.{name}")
