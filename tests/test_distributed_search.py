"""`lenet-blocks tune --workers N`: a chief and workers on 127.0.0.1, supervised.

Each search is a real `lenet-blocks tune` launcher in a subprocess (its chief and workers are
`python -m lenet_blocks.tuning.worker` processes), bounded by a timeout and stopped by process
group. Processes are killed with SIGKILL through the PIDs the launcher
records in `OUTPUT/logs/processes.json`.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from idx_helpers import make_dataset, write_dataset

from lenet_blocks import cli
from lenet_blocks.distributed_search import run_distributed_search, trial_statuses

pytestmark = pytest.mark.tensorflow_only

TIMEOUT_S = 300


@pytest.fixture
def launch():
    """Starts launchers; whatever the test asserted, none of their processes outlives it."""
    launchers = []

    def start_launcher(command, output):
        launchers.append(Launcher(command, output))
        return launchers[-1]

    yield start_launcher
    for launcher in launchers:
        launcher.kill_everything()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"), make_dataset(600, 40, seed=5))


def tune_command(output, data_dir, workers, max_trials, epochs=1, *extra):
    return [
        sys.executable,
        "-m",
        "lenet_blocks",
        "tune",
        *("--workers", str(workers), "--max-trials", str(max_trials), "--epochs", str(epochs)),
        *("--output", str(output), "--data-dir", str(data_dir), "--seed", "1"),
        *("--fixed", "batch_size=16", "--fixed", "blocks=2", "--fixed", "filters_2=16"),
        *("--fixed", "units_1=60", "--fixed", "augmentation=none"),
        *extra,
    ]


class Launcher:
    """A launcher subprocess in its own process group, with its output in a file."""

    def __init__(self, command, output):
        self.output = Path(output)
        self.stdout = self.output.parent / f"{self.output.name}-launcher.log"
        with open(self.stdout, "w") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill_everything(self):
        """SIGKILLs the launcher and every process group it recorded (they are not its group)."""
        groups = [self.process.pid]
        path = self.output / "logs" / "processes.json"
        if path.exists():
            groups += [p["pid"] for p in json.loads(path.read_text())["processes"].values()]
        for pid in groups:
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.killpg(pid, signal.SIGKILL)
        self.process.wait()

    def wait(self, timeout=TIMEOUT_S):
        try:
            self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode, self.stdout.read_text()

    def log_of(self, tuner_id):
        path = self.output / "logs" / f"{tuner_id}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def pid_of(self, tuner_id):
        processes = json.loads((self.output / "logs" / "processes.json").read_text())
        return processes["processes"][tuner_id]["pid"]

    def wait_for(self, tuner_id, text, timeout=TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while text not in self.log_of(tuner_id):
            assert self.process.poll() is None, self.stdout.read_text()
            assert time.monotonic() < deadline, f"{text!r} never appeared in {tuner_id}'s log"
            time.sleep(0.2)


def trainings_started(launcher, tuner_id, epochs):
    """How many trainings a worker started: Keras prints `Epoch 1/N` at each one's start."""
    return launcher.log_of(tuner_id).count(f"Epoch 1/{epochs}")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_chief_and_two_workers_complete_every_trial_exactly_once(tmp_path, data_dir, launch):
    output = tmp_path / "search"
    launcher = launch(tune_command(output, data_dir, 2, 4, 2), output)
    code, stdout = launcher.wait()
    assert code == 0, stdout
    statuses = trial_statuses(output / "tuner" / "lenet")
    assert sorted(statuses.values()) == ["COMPLETED"] * 4
    # Four trials, four trainings: no trial ran twice.
    assert sum(trainings_started(launcher, f"tuner{i}", 2) for i in range(2)) == 4
    assert "Distributed search finished" in stdout and "rank  trial" in stdout
    summary = json.loads((output / "best_hyperparameters.json").read_text())
    assert summary["search"]["completed_trials"] == 4
    # The report comes from the chief's files: every trial's row, then the best trial.
    report = stdout.split("Distributed search finished")[1].splitlines()[1:]
    assert report[0].startswith("  rank  trial") and len(report) == 1 + 4 + 1
    assert report[-1].startswith(f"Best trial {summary['trial_id']}: val accuracy")
    # keras-tuner 1.4.8's stray print (one word per condition) reaches no output.
    for text in (stdout, launcher.log_of("chief"), launcher.log_of("tuner0")):
        assert not {"sgd", "adam", "adamw", "3"} & set(text.splitlines())
    for name in ("best_model.keras", "leaderboard.csv", "search.png"):
        assert (output / name).exists()


def test_worker_killed_mid_trial_is_restarted_and_finishes_its_trial(tmp_path, data_dir, launch):
    output = tmp_path / "search"
    command = tune_command(output, data_dir, 2, 3, 3)
    launcher = launch(command, output)
    launcher.wait_for("tuner0", "Epoch 1/3")
    oracle = json.loads((output / "tuner" / "lenet" / "oracle.json").read_text())
    assert "tuner0" in oracle["ongoing_trials"]  # tuner0 is inside a trial
    os.killpg(launcher.pid_of("tuner0"), signal.SIGKILL)
    code, stdout = launcher.wait()
    assert code == 0, stdout
    assert "Worker tuner0" in stdout and "restarting it with the same tuner id (1/2)" in stdout
    assert sorted(trial_statuses(output / "tuner" / "lenet").values()) == ["COMPLETED"] * 3
    # Three trials, four trainings: the restarted tuner0 trained the trial it was killed in
    # again (the oracle handed it back), and no other trial ran twice.
    assert sum(trainings_started(launcher, f"tuner{i}", 3) for i in range(2)) == 4
    assert trainings_started(launcher, "tuner0", 3) >= 2


def test_killed_chief_is_a_clear_error_in_bounded_time(tmp_path, data_dir, launch):
    output = tmp_path / "search"
    launcher = launch(tune_command(output, data_dir, 2, 6, 3), output)
    launcher.wait_for("tuner0", "Epoch 1/3")
    workers = [launcher.pid_of("tuner0"), launcher.pid_of("tuner1")]
    os.killpg(launcher.pid_of("chief"), signal.SIGKILL)
    killed = time.monotonic()
    code, stdout = launcher.wait(timeout=60)
    assert code == 1, stdout
    assert time.monotonic() - killed < 30
    assert "The chief (oracle) exited with code -9 (killed by signal 9)" in stdout
    assert "the same command resumes the search" in stdout
    assert "Traceback" not in stdout.split("Chief's log")[0]
    assert not any(pid_alive(pid) for pid in workers)


def test_worker_failing_without_restarts_left_stops_the_search(tmp_path, data_dir, launch):
    output = tmp_path / "search"
    command = tune_command(output, data_dir, 1, 3, 3, "--max-restarts", "0")
    launcher = launch(command, output)
    launcher.wait_for("tuner0", "Epoch 1/3")
    chief = launcher.pid_of("chief")
    os.killpg(launcher.pid_of("tuner0"), signal.SIGKILL)
    code, stdout = launcher.wait(timeout=60)
    assert code == 1, stdout
    assert "No worker is left: tuner0 failed after 0 restart(s)" in stdout
    assert not pid_alive(chief)


@pytest.mark.parametrize(
    "kwargs, argument", [({"workers": 0}, "workers"), ({"workers": 1, "max_restarts": -1}, "max")]
)
def test_launcher_arguments_are_checked(tmp_path, kwargs, argument):
    with pytest.raises(ValueError, match=f"Received: {argument}"):
        run_distributed_search(tmp_path, **kwargs)


@pytest.mark.parametrize(
    "search, message",
    [
        ({"data": "arrays"}, r"Received: search with \['data'\]"),
        ({"fixed": {"colour": "red"}}, "colour"),
        ({"data_dir": "/nonexistent/lenet-blocks-data"}, "lenet-blocks-data"),
    ],
)
def test_search_arguments_are_checked_before_any_process_starts(tmp_path, search, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        run_distributed_search(tmp_path / "search", workers=1, search=search)
    assert not (tmp_path / "search" / "logs").exists()


def test_a_python_caller_on_another_backend_is_refused_before_any_process_starts(
    tmp_path, monkeypatch
):
    import keras

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ValueError, match=r"TensorFlow backend only .* Received: backend=jax$"):
        run_distributed_search(tmp_path / "search", workers=1)
    assert not (tmp_path / "search").exists()


def test_sigterm_to_the_launcher_stops_every_process(tmp_path, data_dir, launch):
    output = tmp_path / "search"
    launcher = launch(tune_command(output, data_dir, 1, 3, 3), output)
    launcher.wait_for("tuner0", "Epoch 1/3")
    children = [launcher.pid_of("chief"), launcher.pid_of("tuner0")]
    launcher.process.send_signal(signal.SIGTERM)
    code, stdout = launcher.wait(timeout=60)
    assert code == 130, stdout
    assert "interrupted" in stdout
    assert not any(pid_alive(pid) for pid in children)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--max-restarts", "1"], "`--max-restarts` only applies with `--workers N`"),
        (["--workers", "2", "--fixed", "colour=red"], "colour"),
        (["--workers", "2", "--timeout", "0"], "`--timeout` is out of range"),
    ],
)
def test_bad_launcher_arguments_fail_before_any_process_starts(
    tmp_path, data_dir, capsys, extra, message
):
    output = tmp_path / "search"
    code = cli.main(["tune", "--output", str(output), "--data-dir", str(data_dir), *extra])
    stderr = capsys.readouterr().err
    assert code == cli.EXIT_USAGE, stderr
    assert message in stderr and "Traceback" not in stderr
    assert not (output / "logs").exists()


def test_a_worker_may_not_overwrite_the_shared_project(tmp_path, data_dir):
    env = {
        **os.environ,
        "KERASTUNER_TUNER_ID": "tuner0",
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": "1",
    }
    command = [sys.executable, "-m", "lenet_blocks", "tune", "--output", str(tmp_path)]
    result = subprocess.run(
        [*command, "--data-dir", str(data_dir), "--overwrite"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
    )
    assert result.returncode == 2, result.stderr
    assert "must not overwrite the shared tuner project" in result.stderr
