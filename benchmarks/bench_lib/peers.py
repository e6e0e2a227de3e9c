"""Optional peers (PyTorch, Keras on JAX), each in its own subprocess; never a reason to fail.

For throughput, a `PeerServer` keeps the peer's worker running, and its `RemoteCandidate`s
join the Keras candidates in `timing.measure_interleaved`, so peers and Keras are timed
round-robin in the same minutes of the same run. Time to accuracy runs one worker per run
(`run_accuracy`). A peer that is not installed is reported as `"not installed"`; one that
fails is reported as `"failed"` with the reason, and the TensorFlow run goes on.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import select
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

BENCHMARKS_DIR = Path(__file__).resolve().parent.parent
PEERS = {"pytorch": ("torch",), "keras-jax": ("jax", "jaxlib")}
"""Each peer and the distributions it needs."""
PEER_ENVIRONMENT: dict[str, str] = {}
"""Extra environment variables of the peers' workers (e.g. `OMP_NUM_THREADS`)."""


def installed_version(peer: str) -> str | None:
    """The peer's main distribution version, or `None` when any of its needs is missing.

    Example:
    >>> installed_version("pytorch") is None or isinstance(installed_version("pytorch"), str)
    True
    """
    try:
        versions = [importlib.metadata.version(name) for name in PEERS[peer]]
    except importlib.metadata.PackageNotFoundError:
        return None
    return versions[0]


def _worker(peer: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "bench_lib.peer_worker", args[0], peer, *args[1:]]


def _environment(peer: str) -> dict:
    env = {**os.environ, **PEER_ENVIRONMENT}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCHMARKS_DIR), env.get("PYTHONPATH")]))
    if peer == "keras-jax":
        env["KERAS_BACKEND"] = "jax"
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # the TensorFlow process holds GPU memory
    return env


def _tail(file) -> str:
    file.seek(0)
    return " | ".join(file.read().strip().splitlines()[-5:])


class PeerServer:
    """A running `peer_worker serve` process (see its docstring for the protocol).

    Attributes:
        peer: `"pytorch"` or `"keras-jax"`.
        info: the worker's first answer: `device`, `versions` (and PyTorch's `threads`).

    Raises:
        RuntimeError: from the constructor or a request, when the worker exits, answers an
            error, or does not answer within `timeout` seconds.
    """

    def __init__(self, peer: str, timeout: float):
        self.peer, self.timeout = peer, timeout
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed by close())
        self._process = subprocess.Popen(
            _worker(peer, "serve"),
            env=_environment(peer),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.info = {key: value for key, value in self._receive().items() if key != "ready"}

    def request(self, message: dict) -> dict:
        """Sends one request and returns the answer."""
        self._process.stdin.write(json.dumps(message) + "\n")
        self._process.stdin.flush()
        answer = self._receive()
        if "error" in answer:
            raise RuntimeError(f"{self.peer}: {answer['error']}")
        return answer

    def _receive(self) -> dict:
        ready, _, _ = select.select([self._process.stdout], [], [], self.timeout)
        line = self._process.stdout.readline() if ready else ""
        if line:
            return json.loads(line)
        why = "worker exited" if ready else f"no answer within {self.timeout:.0f} s"
        message = f"{self.peer}: {why}: {_tail(self._stderr)}"
        self._process.kill()
        self.close()
        raise RuntimeError(message)

    def close(self) -> None:
        """Stops the worker."""
        if not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._stderr.close()


@dataclass
class RemoteCandidate:
    """A `timing` candidate that runs in a peer's worker; the worker times its own calls.

    Attributes:
        name: key of its figure.
        samples_per_call: samples one call processes (`steps_per_call * batch_size`).
        server: the peer's running worker.
        spec: the candidate spec the worker builds it from (`variant`, `mode`, `batch_size`,
            `steps_per_call`, `seed`).
    """

    name: str
    samples_per_call: int
    server: PeerServer
    spec: dict

    def warm_up(self, calls: int) -> float:
        message = {"op": "prepare", "name": self.name, "warmup_calls": calls, **self.spec}
        return self.server.request(message)["per_call"]

    def timed(self, calls: int) -> float:
        return self.server.request({"op": "time", "name": self.name, "calls": calls})["seconds"]


def start_servers(enabled: bool, timeout: float) -> tuple[dict[str, PeerServer], dict]:
    """Starts a worker for each installed peer when `enabled`.

    Returns:
        `(servers, status)`: the running servers by peer, and each peer's status:
        `"measured"` (with `device` and `versions`), `"not requested"`, `"not installed"` or
        `"failed"` (with the `reason`).
    """
    servers, status = {}, {}
    for peer in PEERS:
        version = installed_version(peer)
        if not enabled:
            status[peer] = {"status": "not requested", "version": version}
        elif version is None:
            status[peer] = {"status": "not installed", "version": None}
        else:
            try:
                servers[peer] = PeerServer(peer, timeout)
            except RuntimeError as error:
                status[peer] = {"status": "failed", "version": version, "reason": str(error)}
            else:
                status[peer] = {"status": "measured", "version": version, **servers[peer].info}
    return servers, status


def run_accuracy(peer: str, task: dict, timeout: float) -> dict:
    """One time-to-accuracy run in a fresh worker.

    Returns:
        The worker's result with `status: "measured"`, or `{"status": "failed", "reason":
        ...}` when it exits with an error or runs past `timeout` seconds.
    """
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as workdir:
        spec_path, result_path = Path(workdir, "spec.json"), Path(workdir, "result.json")
        spec_path.write_text(json.dumps(task))
        command = _worker(peer, "accuracy", str(spec_path), str(result_path))
        try:
            process = subprocess.run(
                command,
                env=_environment(peer),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"status": "failed", "reason": f"timed out after {timeout:.0f} s"}
        if process.returncode != 0 or not result_path.exists():
            tail = process.stderr.strip().splitlines()[-5:]
            return {
                "status": "failed",
                "reason": f"exit code {process.returncode}: " + " | ".join(tail),
            }
        return {**json.loads(result_path.read_text()), "status": "measured"}
