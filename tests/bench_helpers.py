"""Runs a benchmark script's `--quick` sweep once, for the benchmark tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
BENCHMARKS = REPOSITORY / "benchmarks"


def run_quick(command: list[str], output: Path, env: dict) -> dict:
    """Runs `command --quick --output output` from the repository root (5 minutes at most).

    Returns:
        `output`, the parsed `throughput.json` as `result`, and the run's `stdout`.
    """
    process = subprocess.run(
        [*command, "--quick", "--output", str(output)],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads((output / "throughput.json").read_text())
    return {"output": output, "result": result, "stdout": process.stdout}
