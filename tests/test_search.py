"""End-to-end tests of `lenet-blocks tune`: every tuner kind, budget, kill and resume."""

import csv
import json
import subprocess
import sys

import pytest
from cli_helpers import run_cli
from idx_helpers import make_dataset, write_dataset

KILL_IN_SECOND_TRIAL = """
import os, signal, sys
import keras
from lenet_blocks.search import run_search

class KillInSecondTrial(keras.callbacks.Callback):
    trainings = 0
    def on_train_begin(self, logs=None):
        KillInSecondTrial.trainings += 1
    def on_train_batch_end(self, batch, logs=None):
        if KillInSecondTrial.trainings == 2:
            os.kill(os.getpid(), signal.SIGKILL)

run_search(sys.argv[1], data_dir=sys.argv[2], max_trials=3, epochs=1, verbose=0,
           callbacks=[KillInSecondTrial()])
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("search-data")
    return write_dataset(root, make_dataset(num_train=96, num_test=24, seed=2))


def tune(*args):
    return run_cli("tune", *args)


def read_leaderboard(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.parametrize("kind", ["random", "bayesian", "hyperband"])
def test_each_tuner_kind_runs_end_to_end_and_writes_results(kind, data_dir, tmp_path):
    result = tune(
        "--tuner", kind, "--data-dir", data_dir, "--output", tmp_path, "--max-trials", "2",
        "--epochs", "2" if kind == "hyperband" else "1", "--fixed", "batch_size=32",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rank  trial  val_acc" in result.stdout and "Best trial" in result.stdout
    names = {path.name for path in tmp_path.iterdir()}
    assert {"best_model.keras", "best_hyperparameters.json", "leaderboard.csv", "search.png"} <= (
        names
    )
    best = json.loads((tmp_path / "best_hyperparameters.json").read_text())
    assert best["search"]["kind"] == kind and best["hyperparameters"]["batch_size"] == 32
    assert 0.0 <= best["test_accuracy"] <= 1.0
    rows = read_leaderboard(tmp_path / "leaderboard.csv")
    assert rows[0]["rank"] == "1" and rows[0]["trial_id"] == best["trial_id"]


def test_a_budget_no_configuration_fits_starts_no_trial(data_dir, tmp_path):
    from lenet_blocks.tuning import HYPERPARAMETERS

    held = {name: row.default for name, row in HYPERPARAMETERS.items() if name != "units_1"}
    fixed = [arg for name, v in held.items() for arg in ("--fixed", f"{name}={json.dumps(v)}")]
    result = tune(
        "--data-dir", data_dir, "--output", tmp_path, "--max-trials", "2", "--epochs", "1",
        "--max-params", "1000", *fixed,
    )  # fmt: skip
    assert result.returncode == 1
    assert "started: no configuration drawn" in result.stderr
    assert "max_params=1,000" in result.stderr and "Traceback" not in result.stderr
    assert not list((tmp_path / "tuner").glob("*/trial_*"))


def test_killed_search_resumes_without_losing_or_repeating_trials(data_dir, tmp_path):
    killed = subprocess.run(
        [sys.executable, "-c", KILL_IN_SECOND_TRIAL, str(tmp_path), str(data_dir)],
        capture_output=True,
        timeout=600,
    )
    assert killed.returncode == -9
    project = tmp_path / "tuner" / "lenet"
    completed_before = {
        path.parent.name: path.read_text()
        for path in project.glob("trial_*/trial.json")
        if json.loads(path.read_text())["status"] == "COMPLETED"
    }
    assert len(completed_before) == 1

    resumed = tune("--data-dir", data_dir, "--output", tmp_path, "--max-trials", "3",
                   "--epochs", "1", "--verbose", "0")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = read_leaderboard(tmp_path / "leaderboard.csv")
    assert len(rows) == 3 and all(row["status"] == "COMPLETED" for row in rows)
    for trial_dir, content in completed_before.items():
        assert (project / trial_dir / "trial.json").read_text() == content


def test_bad_fixed_value_is_a_clear_error(data_dir, tmp_path):
    result = tune("--data-dir", data_dir, "--output", tmp_path, "--fixed", "activation")
    assert result.returncode == 2
    assert "`--fixed` must be NAME=VALUE" in result.stderr and "Traceback" not in result.stderr


def test_a_second_search_on_the_same_folder_is_refused(tmp_path, data_dir):
    from lenet_blocks.locking import DirectoryLockedError, lock_directory
    from lenet_blocks.tuning import run_search

    with lock_directory(tmp_path, "search"), pytest.raises(DirectoryLockedError, match="PID"):
        run_search(tmp_path, data_dir=data_dir, max_trials=1, epochs=1, verbose=0)
