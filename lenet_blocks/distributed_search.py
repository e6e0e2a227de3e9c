"""Distributed tuning with KerasTuner's chief/worker mode, started and supervised on one machine.

KerasTuner distributes a search with three environment variables: `KERASTUNER_ORACLE_IP` and
`KERASTUNER_ORACLE_PORT` (where the chief's oracle serves) and `KERASTUNER_TUNER_ID` (`chief`,
or a unique id per worker), all processes sharing the tuner directory. The chief runs the
oracle and hands out trials; each worker asks for a trial, trains it, reports, and asks again.

`run_distributed_search` (`lenet-blocks tune --workers N`) starts the chief and `N` workers as
`python -m lenet_blocks.tuning.worker SEARCH_JSON` processes, each running
`lenet_blocks.tuning.run_search` with the same arguments, and watches them, turning KerasTuner's
hangs into recovery or errors (seen with keras-tuner 1.4.8):

- a worker that dies (any non-zero exit, a kill) leaves its trial RUNNING and the chief waiting
  for it forever: the launcher restarts it with the same tuner id, which hands it the orphaned
  trial, up to `max_restarts` times per worker;
- a chief whose workers are all gone waits forever: once no worker is left (restarts spent)
  while the search has trials to run, or a dead worker's trial is still running, the launcher
  stops the chief and raises `DistributedSearchError` (a worker that failed without holding a
  trial, while the others finished the search, lets the chief finish);
- workers of a dead chief wait up to an hour for it: when the chief exits with an error or is
  killed, the launcher stops the workers and raises `DistributedSearchError`;
- `timeout` bounds the whole search; Ctrl-C or SIGTERM to the launcher stops every process.

Completed trials are never lost: they are in the tuner directory, and the same command resumes
the search there (the chief reloads its oracle). Processes are stopped by PID (process group),
SIGTERM first, then SIGKILL. Each process logs to `OUTPUT/logs/<tuner id>.log`; their PIDs are in
`OUTPUT/logs/processes.json`. When the chief has finished, the results are read from the files it
wrote (`leaderboard.csv`, `best_hyperparameters.json`).

Example:
>>> worker_environment("tuner0", 8000)["KERASTUNER_TUNER_ID"]
'tuner0'
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lenet_blocks import artifacts

__all__ = [
    "DistributedSearchError",
    "free_ports",
    "run_distributed_search",
    "trial_statuses",
    "worker_environment",
]

ORACLE_IP = "127.0.0.1"
STOP_GRACE_S = 10.0


class DistributedSearchError(RuntimeError):
    """The distributed search cannot finish: its chief failed, or every worker did."""


def free_ports(count: int = 1) -> list[int]:
    """`count` different TCP ports on 127.0.0.1 that are free now.

    Example:
    >>> len(set(free_ports(3)))
    3
    """
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((ORACLE_IP, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def worker_environment(tuner_id: str, port: int, ip: str = ORACLE_IP) -> dict[str, str]:
    """The environment of one search process: KerasTuner's three variables on top of ours.

    The processes share the machine's GPUs: each allocates GPU memory as it needs it
    (`TF_FORCE_GPU_ALLOW_GROWTH`), and the chief, which trains nothing, sees no GPU.
    """
    gpu = {"CUDA_VISIBLE_DEVICES": ""} if "chief" in tuner_id else {}
    return {
        **os.environ,
        **gpu,
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
        "KERASTUNER_TUNER_ID": tuner_id,
        "KERASTUNER_ORACLE_IP": ip,
        "KERASTUNER_ORACLE_PORT": str(port),
        "PYTHONUNBUFFERED": "1",  # logs follow the process as it goes
    }


def trial_statuses(project_dir: str | os.PathLike) -> dict[str, str]:
    """`{trial id: status}` of the trials saved in a KerasTuner project directory."""
    statuses = {}
    for path in sorted(Path(project_dir).glob("trial_*/trial.json")):
        try:
            trial = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # being written
        statuses[trial["trial_id"]] = trial["status"]
    return statuses


@dataclass
class _Process:
    tuner_id: str
    command: list[str]
    environment: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None
    restarts: int = 0
    state: str = "running"  # "finished" after exit code 0, "failed" with its restarts spent

    def start(self) -> None:
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment,
                start_new_session=True,  # its own process group, stopped as one
            )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def poll(self) -> int | None:
        return self.process.poll() if self.process else None

    def signal_group(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.killpg(self.process.pid, sig)


def stop_processes(processes: Sequence[_Process], grace: float = STOP_GRACE_S) -> None:
    """Stops every process group: SIGTERM to all, then SIGKILL to those alive after `grace` s.

    Ctrl-C and SIGTERM are ignored meanwhile, so a second interrupt cannot leave processes
    running.
    """
    ignored = _ignore_interrupts()
    try:
        for process in processes:
            process.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in processes:
            if process.process is None:
                continue
            try:
                process.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.signal_group(signal.SIGKILL)
                process.process.wait()
    finally:
        for sig, handler in ignored.items():
            signal.signal(sig, handler)


def _ignore_interrupts() -> dict:
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread: signals stay as they are
            previous[sig] = signal.signal(sig, signal.SIG_IGN)
    return previous


def run_distributed_search(
    output_dir: str | os.PathLike,
    *,
    workers: int,
    search: Mapping[str, object] | None = None,
    max_restarts: int = 2,
    port: int | None = None,
    timeout: float | None = None,
    poll_interval: float = 0.5,
    log=print,
) -> dict:
    """Runs `run_search(output_dir, **search)` as a chief and `workers` workers, supervised.

    Before any process starts, the launcher checks the hyperparameters held fixed, finds (or
    downloads) the data once for every process, and applies `overwrite` once (a process
    deleting the shared project would lose the others' trials). The processes log one line
    per epoch when `verbose` is on. At the end it logs the leaderboard and the best trial.

    Args:
        output_dir: the search's output folder (logs go to `output_dir/logs`).
        workers: int. Number of worker processes (tuner ids `tuner0`, `tuner1`, ...).
        search: `run_search` keyword arguments of every process (JSON values: `data_dir`, not
            `data`; no `callbacks`), e.g. `{"max_trials": 20, "epochs": 5}`.
        max_restarts: int. Restarts allowed per worker after it dies.
        port: the oracle's port on 127.0.0.1 (default: a free one).
        timeout: seconds for the whole search (default: none).
        poll_interval: seconds between checks of the processes.
        log: where progress lines go.

    Returns:
        The summary the chief wrote to `output_dir/best_hyperparameters.json`.

    Raises:
        DistributedSearchError: the chief exited with an error or was killed, every worker
            died with its restarts spent, or the timeout passed. The search's completed trials
            are kept; the same command resumes it.
        ValueError: bad `workers`, `max_restarts` or `search`, or a Keras backend other than
            TensorFlow.
    """
    for name, value, low in (("workers", workers, 1), ("max_restarts", max_restarts, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"`{name}` must be an int >= {low}. Received: {name}={value!r}")
    import keras  # every process runs on this one's Keras backend (they inherit its settings)

    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "The distributed search runs on the TensorFlow backend only "
            f"(KERAS_BACKEND=tensorflow). Received: backend={keras.backend.backend()}"
        )
    output_dir = Path(output_dir)
    arguments = _process_arguments(output_dir, dict(search or {}))
    project_name = arguments["project_name"]
    logs = output_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    port = port or free_ports()[0]
    command = [sys.executable, "-m", "lenet_blocks.tuning.worker", json.dumps(arguments)]
    chief = _Process("chief", command, worker_environment("chief", port), logs / "chief.log")
    tuners = [
        _Process(
            f"tuner{i}", command, worker_environment(f"tuner{i}", port), logs / f"tuner{i}.log"
        )
        for i in range(workers)
    ]
    project_dir = output_dir / "tuner" / project_name
    started = time.monotonic()
    previous_handler = _stop_on_sigterm()
    try:
        chief.start()
        for tuner in tuners:
            tuner.start()
        _write_processes(logs, port, [chief, *tuners])
        log(
            f"Distributed search: chief (oracle on {ORACLE_IP}:{port}, pid {chief.pid}) and "
            f"{workers} worker(s) ({', '.join(f'{t.tuner_id} pid {t.pid}' for t in tuners)}); "
            f"logs in {logs}"
        )
        _supervise(
            chief,
            tuners,
            project_dir,
            logs,
            port,
            max_restarts,
            timeout,
            started,
            poll_interval,
            log,
        )
    finally:
        stop_processes([*tuners, chief])
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
    log(f"Distributed search finished in {time.monotonic() - started:.0f} s.")
    return _report(output_dir, log)


def _process_arguments(output_dir: Path, search: dict) -> dict:
    """The `run_search` arguments of every process, checked before any starts."""
    # Imported here: the launcher's own helpers (`free_ports`, ...) import no Keras.
    from lenet_blocks.data_sources import load_dataset
    from lenet_blocks.tuning import HyperLeNet

    unsupported = sorted({"output_dir", "data", "callbacks"} & set(search))
    if unsupported:
        raise ValueError(
            "`search` holds the arguments every process gets as JSON: no `output_dir` (an "
            f"argument of its own), `data` or `callbacks`. Received: search with {unsupported}"
        )
    search.setdefault("project_name", "lenet")
    HyperLeNet(
        fixed=search.get("fixed"), max_params=search.get("max_params"), seed=search.get("seed")
    )  # checks the names and values every process would fail on
    # Finds (or downloads) and checks the data once (an image folder is scanned, not read).
    load_dataset(
        search.get("dataset", "fashion_mnist"),
        search.get("data_dir"),
        image_size=search.get("image_size"),
        color_mode=search.get("color_mode"),
        skip_bad_files=search.get("skip_bad_files", False),
    )
    if search.pop("overwrite", False):
        shutil.rmtree(output_dir / "tuner" / search["project_name"], ignore_errors=True)
    verbose = 2 if search.get("verbose", 1) else 0  # logs: one line per epoch, no progress bars
    return {**search, "output_dir": str(output_dir), "verbose": verbose}


def _report(output_dir: Path, log) -> dict:
    """Logs the leaderboard and the best trial from the files the chief wrote; returns the best."""
    from lenet_blocks.tuning.leaderboard import format_leaderboard, read_leaderboard_csv
    from lenet_blocks.tuning.search import format_summary

    summary = json.loads((output_dir / "best_hyperparameters.json").read_text())
    log(format_leaderboard(read_leaderboard_csv(output_dir / "leaderboard.csv")))
    log(format_summary(summary, output_dir))
    return summary


def _stop_on_sigterm():
    """Makes SIGTERM stop the launcher like Ctrl-C, so its processes are stopped too."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        return None


def _supervise(
    chief, tuners, project_dir, logs, port, max_restarts, timeout, started, poll_interval, log
) -> None:
    reported: dict[str, str] = {}
    while True:
        _report_trials(project_dir, reported, log)
        chief_code = chief.poll()
        if chief_code is not None:
            if chief_code == 0:
                _report_trials(project_dir, reported, log)
                return
            raise DistributedSearchError(
                f"The chief (oracle) exited with code {chief_code}"
                f"{' (killed by signal ' + str(-chief_code) + ')' if chief_code < 0 else ''}; "
                f"the workers were stopped. Completed trials are kept in {project_dir}; the same "
                f"command resumes the search. Chief's log ({chief.log_path}):\n"
                f"{_tail(chief.log_path)}"
            )
        for tuner in tuners:
            code = tuner.poll() if tuner.state == "running" else None
            if code is None:
                continue
            if code == 0:
                tuner.state = "finished"
            elif tuner.restarts < max_restarts:
                tuner.restarts += 1
                log(
                    f"Worker {tuner.tuner_id} (pid {tuner.pid}) exited with code {code}; "
                    f"restarting it with the same tuner id ({tuner.restarts}/{max_restarts}): "
                    "it takes over its unfinished trial."
                )
                tuner.start()
                _write_processes(logs, port, [chief, *tuners])
            else:
                tuner.state = "failed"
                log(
                    f"Worker {tuner.tuner_id} (pid {tuner.pid}) exited with code {code}, "
                    f"no restart left (max_restarts={max_restarts}); log: {tuner.log_path}"
                )
        failed = [tuner for tuner in tuners if tuner.state == "failed"]
        if failed and not any(tuner.state == "running" for tuner in tuners):
            stranded = _stranded_trials(project_dir, tuners)
            if stranded is not None:
                raise DistributedSearchError(
                    f"No worker is left: {', '.join(t.tuner_id for t in failed)} failed after "
                    f"{max_restarts} restart(s) each, and {stranded}; the chief, which would "
                    f"wait forever, was stopped. Completed trials are kept in {project_dir}; "
                    f"the same command resumes the search. Log of {failed[-1].tuner_id} "
                    f"({failed[-1].log_path}):\n{_tail(failed[-1].log_path)}"
                )
        if timeout is not None and time.monotonic() - started > timeout:
            raise DistributedSearchError(
                f"The distributed search did not finish within timeout={timeout:g} s; its "
                f"processes were stopped. Completed trials are kept in {project_dir}; the same "
                "command resumes the search."
            )
        time.sleep(poll_interval)


def _stranded_trials(project_dir: Path, tuners: Sequence[_Process]) -> str | None:
    """Why the chief cannot finish now that no worker runs, or `None` if it is finishing.

    A worker exits with 0 only once the oracle has no trial left to give; after that the chief
    only waits for the trials still running. The oracle records them per tuner id in
    `oracle.json` (saved just before a finished trial is dropped from it, so a finished trial
    may still be listed: its own status says it is done).
    """
    if not any(tuner.state == "finished" for tuner in tuners):
        return "the search still has trials to run"
    failed = {tuner.tuner_id for tuner in tuners if tuner.state == "failed"}
    try:
        ongoing = json.loads((project_dir / "oracle.json").read_text())["ongoing_trials"]
    except (OSError, ValueError, KeyError):
        ongoing = {}
    statuses = trial_statuses(project_dir)
    held = sorted(
        f"trial {trial} ({tuner_id})"
        for tuner_id, trial in ongoing.items()
        if tuner_id in failed and statuses.get(trial) not in ("COMPLETED", "FAILED", "INVALID")
    )
    return f"{', '.join(held)} will never finish" if held else None


def _report_trials(project_dir: Path, reported: dict[str, str], log) -> None:
    for trial_id, status in trial_statuses(project_dir).items():
        if status in ("COMPLETED", "FAILED", "INVALID") and reported.get(trial_id) != status:
            reported[trial_id] = status
            done = sum(1 for s in reported.values() if s == "COMPLETED")
            log(f"Trial {trial_id} {status.lower()} ({done} completed so far)")


def _write_processes(logs: Path, port: int, processes: list[_Process]) -> None:
    artifacts.write_json(
        logs / "processes.json",
        {
            "oracle": f"{ORACLE_IP}:{port}",
            "launcher_pid": os.getpid(),
            "processes": {
                p.tuner_id: {"pid": p.pid, "restarts": p.restarts, "log": str(p.log_path)}
                for p in processes
            },
        },
    )


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:])
