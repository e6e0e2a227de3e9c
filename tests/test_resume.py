"""Exact resume: a run stopped or killed and started again ends as the run never interrupted.

The kill points run `train` in a real subprocess that kills itself (SIGKILL) at a named point
where the run writes files: every one of them leaves a directory that the next start either
resumes or reports finished, with the history and the weights of the run never killed.
"""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from idx_helpers import make_dataset, write_dataset

import lenet_blocks as lb
from lenet_blocks.training import train

# Every piece of state a resume must restore: the optimizer's moments (Adam), the schedule
# (cosine), the random generators of dropout and augmentation, the data order; and a sequence
# override, which JSON records as a list.
SETTINGS = {
    "epochs": 3,
    "optimizer": "adam",
    "learning_rate": 0.003,
    "lr_schedule": "cosine",
    "augmentation": "translate",
    "model_overrides": {"units": (120, 84), "dropout": 0.2, "activation": "relu"},
    "seed": 4,
}
ARTIFACTS = ["confusion_matrix.png", "metrics.json", "model.keras", "training_curves.png"]
KILLED_EPOCHS = 3
# Runs `train` and kills itself with SIGKILL at the kill point named by argv[3].
KILL_AT = """
import os, signal, sys
from pathlib import Path
import keras
from lenet_blocks import artifacts, checkpoint
from lenet_blocks.training import train

run, data_dir, point, epochs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
write_json = artifacts.write_json


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def write_json_or_die(path, data):
    if point == "state-write" and Path(path).name == "state.json" and data["epochs_done"] == 2:
        # epoch 2's weights are written; its state file is half written
        (Path(path).parent / ".tmp-0123456789ab-state.json").write_text('{"settings": {')
        die()
    written = write_json(path, data)
    if point == "after-metrics" and Path(path).name == "metrics.json":
        die()
    return written


def save_and_die(model, path, *args, **kwargs):
    Path(path).write_bytes(b"")  # the final model file, killed before its first byte
    die()


def clear_and_die(self):
    for weights in self.directory.glob("*.weights.h5"):  # removal killed halfway
        weights.unlink()
    die()


artifacts.write_json = write_json_or_die
if point == "model-save":
    keras.Model.save = save_and_die
if point == "checkpoint-clear":
    checkpoint.EpochCheckpoint.clear = clear_and_die
train(run, data_dir=data_dir, epochs=epochs, verbose=0)
"""


class StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


@pytest.fixture(scope="module")
def data():
    return make_dataset(num_train=150, num_test=30, seed=6)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data):
    run = tmp_path_factory.mktemp("uninterrupted")
    train(run, data=data, verbose=0, **SETTINGS)
    return run


def without_timing(history):
    return {key: values for key, values in history.items() if key != "train_seconds"}


def assert_same_run(run, reference):
    metrics, expected = (json.loads((r / "metrics.json").read_text()) for r in (run, reference))
    assert without_timing(metrics["history"]) == without_timing(expected["history"])
    assert metrics["test_loss"] == expected["test_loss"]
    weights, wanted = (lb.load_model(r / "model.keras").get_weights() for r in (run, reference))
    for actual, expected_weights in zip(weights, wanted, strict=True):
        np.testing.assert_array_equal(actual, expected_weights)


def test_stopped_and_resumed_run_equals_the_uninterrupted_run(tmp_path, data, uninterrupted):
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="stopped after 1 epochs"):
        train(run, data=data, verbose=0, callbacks=[StopAfterFirstEpoch()], **SETTINGS)
    train(run, data=data, verbose=0, **SETTINGS)  # the same call: not "other settings"
    assert_same_run(run, uninterrupted)


def test_finished_run_with_sequence_overrides_is_returned_as_it_is(data, uninterrupted):
    metrics = train(uninterrupted, data=data, verbose=0, **SETTINGS)
    assert metrics["settings"]["model_overrides"]["units"] == [120, 84]


@pytest.fixture(scope="module")
def never_killed(tmp_path_factory):
    """A data directory, and the run on it that was never killed."""
    root = tmp_path_factory.mktemp("kill_points")
    data_dir = write_dataset(root / "data", make_dataset(120, 30, seed=8))
    train(root / "run", data_dir=data_dir, epochs=KILLED_EPOCHS, verbose=0)
    return data_dir, root / "run"


@pytest.mark.parametrize(
    ("point", "left"),
    [
        ("state-write", ["checkpoint"]),
        ("model-save", ["checkpoint"]),
        ("after-metrics", ["checkpoint", "metrics.json"]),
        ("checkpoint-clear", ["checkpoint", "metrics.json"]),
    ],
)
def test_killed_run_resumes_or_is_finished_and_equals_the_run_never_killed(
    tmp_path, never_killed, point, left
):
    data_dir, reference = never_killed
    run = tmp_path / "run"
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AT, str(run), str(data_dir), point, str(KILLED_EPOCHS)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr
    assert set(left) <= {path.name for path in run.iterdir()}
    if point in ("state-write", "model-save"):
        assert any(path.name.startswith(".tmp-") for path in run.rglob("*"))

    train(run, data_dir=data_dir, epochs=KILLED_EPOCHS, verbose=0)

    assert sorted(path.name for path in run.iterdir()) == ARTIFACTS
    assert_same_run(run, reference)
