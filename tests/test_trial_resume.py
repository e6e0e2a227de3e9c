"""Mid-trial resume: a search SIGKILLed in the middle of a trial continues that trial after its
last completed epoch and ends with the history of the search never interrupted.

Real subprocesses (the kill is a real SIGKILL), tiny data, one trial of four epochs; the trial
uses every piece of state a resume must restore: Adam's moments and step (one-cycle schedule),
the weight average, batch-norm statistics, dropout, augmentation and mixing generators, the
data order.
"""

import json
import subprocess
import sys

import pytest

SEARCH = """
import json, os, signal, sys
import keras
import numpy as np
from lenet_blocks.tuning import run_search

rng = np.random.default_rng(0)
images, labels = rng.integers(0, 256, (160, 28, 28)).astype("uint8"), rng.integers(0, 10, 160)
data = ((images[:128], labels[:128]), (images[128:], labels[128:]))
FIXED = {
    "filters_1": 6, "filters_2": 16, "units_1": 60, "units_2": 42, "kernel_size": 5,
    "padding": "valid", "convolutions": 1, "blocks": 2, "global_pooling": "none",
    "block_pooling": "max",
    "activation": "relu", "classifier_activation": "softmax", "include_rescaling": True,
    "batch_norm": True, "dropout": 0.2, "augmentation": "translate", "horizontal_flip": True,
    "random_erasing": 0.25, "mixing": "mixup", "label_smoothing": 0.1, "optimizer": "adam",
    "adam_learning_rate": 0.003, "lr_schedule": "one_cycle", "use_ema": True,
    "weight_decay": 0.0, "batch_size": 32,
}


class Record(keras.callbacks.Callback):
    def __init__(self, output, kill):
        super().__init__()
        self.output, self.kill = output, kill

    def on_epoch_begin(self, epoch, logs=None):
        if self.kill and epoch == 2:  # epochs 0 and 1 are complete and checkpointed
            os.kill(os.getpid(), signal.SIGKILL)

    def on_epoch_end(self, epoch, logs=None):
        with open(self.output + ".epochs.jsonl", "a") as file:
            file.write(json.dumps({"epoch": epoch, **logs}) + "\\n")


def search(output, kill):
    run_search(output, max_trials=1, epochs=4, seed=0, data=data, fixed=FIXED, verbose=0,
               callbacks=[Record(output, kill)])


# "first": the search never interrupted, then the one killed in its trial; "resume": go on.
uninterrupted, killed, mode = sys.argv[1:]
if mode == "first":
    search(uninterrupted, kill=False)
search(killed, kill=mode == "first")
"""


def search(uninterrupted, killed, mode):
    return subprocess.run(
        [sys.executable, "-c", SEARCH, str(uninterrupted), str(killed), mode],
        capture_output=True,
        text=True,
        timeout=600,
    )


def epochs(output):
    lines = (output.parent / f"{output.name}.epochs.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.tensorflow_only
def test_a_killed_trial_resumes_mid_trial_with_the_uninterrupted_history(tmp_path):
    uninterrupted, killed = tmp_path / "uninterrupted", tmp_path / "killed"
    died = search(uninterrupted, killed, "first")
    assert died.returncode == -9, died.stderr[-3000:]
    assert (uninterrupted / "best_hyperparameters.json").is_file()
    (state,) = killed.glob("tuner/lenet/trial_*/resume/state.json")
    assert json.loads(state.read_text())["epochs_done"] == 2

    resumed = search(uninterrupted, killed, "resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [record["epoch"] for record in epochs(killed)] == [0, 1, 2, 3]  # 2 and 3 rerun only
    assert epochs(killed) == epochs(uninterrupted)  # every loss and accuracy, exactly
    best = [
        json.loads((run / "best_hyperparameters.json").read_text())
        for run in (killed, uninterrupted)
    ]
    for key in ("val_accuracy", "test_accuracy", "test_loss", "epochs"):
        assert best[0][key] == best[1][key]
    assert (killed / "leaderboard.csv").read_text() == (
        uninterrupted / "leaderboard.csv"
    ).read_text()
    assert not list(killed.glob("tuner/lenet/trial_*/resume"))  # removed once the trial ended
