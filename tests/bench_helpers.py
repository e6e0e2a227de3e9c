"""For the benchmark tests: run a script's `--quick` sweep, or a script without TensorFlow."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

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


def run_quick(command: list[str], output: Path, env: dict) -> dict:
    """Runs `command --quick --output output` from the repository root (10 minutes at most).

    Returns:
        `output`, the parsed `throughput.json` as `result`, and the run's `stdout`.
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
    result = json.loads((output / "throughput.json").read_text())
    return {"output": output, "result": result, "stdout": process.stdout}
