"""`TrialCheckpoint`: the epoch checkpoint that lets a killed search continue its trial mid-way.

keras-tuner reruns the trial that was running when a search stopped (same trial id, same
hyperparameters), but from its first epoch. With this callback in the trial's `fit` (the tuners
of `make_tuner` add it), `trial_dir/resume/` holds after every completed epoch:

- `epoch-NNNN.weights.h5`: the model's weights and the optimizer's state (its step, so the
  learning-rate schedule continues, and its moments and moving averages);
- `state.json`, replaced atomically after the weights: the epochs done, the weights file, the
  history so far and the states of the model's random seed generators (dropout, augmentation).

`HyperLeNet.fit` restores it and trains the remaining epochs only; the data order and the
mixing of each epoch are functions of the seed and the epoch, so the trial ends with the
history of the trial never interrupted. The directory is removed when the trial's `fit` ends.

Example:
>>> import tempfile
>>> from lenet_blocks import build_lenet
>>> TrialCheckpoint(tempfile.mkdtemp()).restore(build_lenet())
(0, {})
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import keras

from lenet_blocks import artifacts
from lenet_blocks.checkpoint import STATE_FILE, load_epoch, save_epoch

__all__ = ["TrialCheckpoint"]


class TrialCheckpoint(keras.callbacks.Callback):
    """Saves weights, optimizer state, history and seed states after every epoch of a trial.

    Args:
        directory: the trial's checkpoint folder (`trial_dir/resume`).
    """

    def __init__(self, directory: str | os.PathLike):
        super().__init__()
        self.directory = Path(directory)
        self.history: dict[str, list[float]] = {}
        self.epochs_done = 0

    def restore(self, model: keras.Model) -> tuple[int, dict]:
        """Loads the last completed epoch into `model` (its optimizer built first).

        Returns:
            `(epochs done, history of those epochs)`; `(0, {})` without a checkpoint.

        Raises:
            ValueError: the state file or its weights file is damaged (named).
        """
        state_path = self.directory / STATE_FILE
        if not state_path.exists():
            return 0, {}
        state = artifacts.read_json(state_path)
        if not isinstance(state, dict) or not {"epochs_done", "weights", "history"} <= set(state):
            raise ValueError(
                f"{state_path} is damaged; delete {self.directory} to rerun the trial."
            )
        load_epoch(model, self.directory, state, f"Delete {self.directory} to rerun the trial.")
        self.history, self.epochs_done = state["history"], int(state["epochs_done"])
        return self.epochs_done, {key: list(values) for key, values in self.history.items()}

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if not all(math.isfinite(float(value)) for value in logs.values()):
            return
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self.epochs_done = epoch + 1
        state = {"epochs_done": self.epochs_done, "history": self.history}
        save_epoch(self.model, self.directory, state)

    def on_train_end(self, logs=None):
        (self.directory / STATE_FILE).unlink(missing_ok=True)
        shutil.rmtree(self.directory, ignore_errors=True)
