"""Subprocess entry of a peer (`"pytorch"`, or `"keras-jax"` started with `KERAS_BACKEND=jax`).

Two ways to run it:

- `python -m bench_lib.peer_worker serve PEER`: a timing server. It answers one JSON line on
  stdout per JSON line on stdin: first `{"ready": true, "device": ..., "versions": ...}`,
  then for `{"op": "prepare", "name": ..., <candidate spec>, "warmup_calls": n}` the warm-up's
  `{"per_call": seconds}`, and for `{"op": "time", "name": ..., "calls": n}` the
  `{"seconds": ...}` those calls took (`{"error": ...}` when one fails). The parent times the
  peers this way interleaved with its own Keras candidates (`peers.RemoteCandidate`).
- `python -m bench_lib.peer_worker accuracy PEER SPEC.json RESULT.json`: one time-to-accuracy
  run (SPEC names the `variant`, the settings and an `.npz` file with the data).

Anything the libraries print goes to stderr; stdout carries only the answers.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

import numpy as np

MODULES = {"pytorch": "bench_lib.torch_peer", "keras-jax": "bench_lib.jax_peer"}


def serve(peer, answers) -> None:
    """Answers `prepare` and `time` requests from stdin until it closes."""

    def answer(message: dict) -> None:
        answers.write(json.dumps(message) + "\n")
        answers.flush()

    answer({"ready": True, **peer.describe()})
    candidates = {}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "prepare":
                candidates[request["name"]] = peer.candidate(request)
                answer({"per_call": candidates[request["name"]].warm_up(request["warmup_calls"])})
            else:
                answer({"seconds": candidates[request["name"]].timed(request["calls"])})
        except Exception as error:  # reported to the parent, which records the failure
            answer({"error": f"{type(error).__name__}: {str(error)[:300]}"})


def main(argv: list[str]) -> None:
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # library output goes to stderr
    mode, peer_name, *paths = argv
    peer = importlib.import_module(MODULES[peer_name])
    if mode == "serve":
        serve(peer, answers)
        return
    spec_path, result_path = paths
    with open(spec_path) as file:
        spec = json.load(file)
    with np.load(spec["data"]) as data:
        result = peer.time_to_accuracy(spec, dict(data))
    with open(result_path, "w") as file:
        json.dump({**result, **peer.describe()}, file)


if __name__ == "__main__":
    main(sys.argv[1:])
