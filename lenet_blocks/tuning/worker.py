"""`python -m lenet_blocks.tuning.worker SEARCH_JSON`: one process of a distributed search.

`SEARCH_JSON` is a JSON object of `run_search` keyword arguments (`output_dir` included). The
process's role comes from KerasTuner's variables (`KERASTUNER_TUNER_ID`, `..._ORACLE_IP`,
`..._ORACLE_PORT`): the chief runs the oracle and writes the results, a worker trains the trials
it is given. `lenet_blocks.distributed_search` starts these processes; a failure ends the process
with its traceback in the process's log and exit status 1.

Example:
>>> search_arguments('{"output_dir": "runs/tune", "max_trials": 4}')
{'output_dir': 'runs/tune', 'max_trials': 4}
"""

from __future__ import annotations

import json
import sys

from lenet_blocks.tuning.search import run_search


def search_arguments(text: str) -> dict:
    """The `run_search` keyword arguments that `text` (a JSON object) holds.

    Raises:
        ValueError: if `text` is not a JSON object.
    """
    arguments = json.loads(text)
    if not isinstance(arguments, dict):
        raise ValueError(f"The search arguments must be a JSON object. Received: {text!r}")
    return arguments


def main(argv: list[str]) -> None:
    """Runs `run_search(**search_arguments(argv[0]))`."""
    if len(argv) != 1:
        raise SystemExit("usage: python -m lenet_blocks.tuning.worker SEARCH_JSON")
    run_search(**search_arguments(argv[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
