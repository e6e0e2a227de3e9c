"""The checkpoint of a training run: what a killed run needs to go on exactly where it stopped.

`output_dir/checkpoint/` holds, after every completed epoch:

- `epoch-NNNN.weights.h5`: the model's weights and the optimizer's state (Keras'
  `save_weights` writes both);
- `state.json`, replaced atomically after the weights: the run's settings, the epochs done, the
  name of the weights file, the history, and the states of the model's random seed generators
  (dropout, augmentation), which Keras does not save with the weights.

The data order is a function of the seed and the epoch (`pipeline.EpochCounter`) and the
learning-rate schedule a function of the epoch, so with these a resumed run computes what the
uninterrupted run computes.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from lenet_blocks import artifacts
from lenet_blocks.settings import RunSettings

__all__ = [
    "CHECKPOINT_DIR",
    "START_AFRESH",
    "STATE_FILE",
    "EpochCheckpoint",
    "load_epoch",
    "read_run_file",
    "save_epoch",
    "seed_generator_states",
]

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
START_AFRESH = (
    "Pass `overwrite=True` (`--overwrite`) to start afresh, or choose another output directory."
)
_STATE_KEYS = ("settings", "epochs_done", "weights", "history")


def read_run_file(path: Path, keys: tuple[str, ...]) -> tuple[dict, RunSettings]:
    """A run's JSON file (`state.json`, `metrics.json`) and the `RunSettings` it records.

    Raises:
        ValueError: the file is damaged (not JSON, an entry of `keys` missing, bad settings),
            naming it, with `--overwrite` as the way out.
    """
    try:
        content = artifacts.read_json(path)
        missing = [key for key in keys if not isinstance(content, dict) or key not in content]
        if missing:
            raise ValueError(f"{path} is damaged: it has no {missing[0]!r} entry.")
        try:
            settings = RunSettings.from_dict(content["settings"])
        except ValueError as error:
            raise ValueError(f"{path} is damaged: {error}") from None
    except ValueError as error:
        raise ValueError(f"{error} {START_AFRESH}") from None
    return content, settings


def seed_generator_states(model: keras.Model) -> list:
    """The state variables of the model's `keras.random.SeedGenerator`s, in a stable order.

    Example:
    >>> from lenet_blocks import build_lenet
    >>> len(seed_generator_states(build_lenet(dropout=0.5)))
    2
    """
    return [v for v in model.variables if v.name == "seed_generator_state"]


def save_epoch(model: keras.Model, directory: Path, state: dict) -> None:
    """Writes the epoch checkpoint `state` describes (`state["epochs_done"]` epochs done).

    First `epoch-NNNN.weights.h5` (the weights and the optimizer's state), then `state.json`:
    `state` with the name of that file and the model's seed-generator states, replaced
    atomically, so it always names complete weights; older weight files are removed last.
    """
    weights = f"epoch-{state['epochs_done']:04d}.weights.h5"
    directory.mkdir(parents=True, exist_ok=True)
    artifacts.write_with(directory / weights, model.save_weights)
    seed_states = [keras.ops.convert_to_numpy(v).tolist() for v in seed_generator_states(model)]
    artifacts.write_json(
        directory / STATE_FILE, {**state, "weights": weights, "seed_states": seed_states}
    )
    for old in directory.glob("epoch-*.weights.h5"):
        if old.name != weights:
            old.unlink()


def load_epoch(model: keras.Model, directory: Path, state: dict, remedy: str) -> None:
    """Loads the checkpoint that `state` (a `save_epoch` state) names into `model`.

    The optimizer is built first, so its saved state is restored too; then the seed-generator
    states. Raises `ValueError` naming a missing or damaged weights file, followed by `remedy`.
    """
    weights = directory / str(state["weights"])
    model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(weights)
    except (OSError, ValueError, KeyError) as error:
        reason = "missing" if not weights.exists() else f"damaged ({type(error).__name__})"
        raise ValueError(f"{weights} is {reason}. {remedy}") from None
    for variable, value in zip(
        seed_generator_states(model), state.get("seed_states", []), strict=False
    ):
        variable.assign(np.asarray(value, dtype=variable.dtype))


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves weights, settings, history and seed states after every epoch; a killed run resumes.

    The weights go to `epoch-NNNN.weights.h5`; `state.json`, replaced atomically after them, names
    the file, so the state always points at complete weights. Timing of each epoch's training
    steps (without validation) is kept in the history as `train_seconds`. With `write=False`
    (a worker that is not the chief) it restores and counts epochs but writes nothing.

    Args:
        directory: the checkpoint directory (`output_dir/checkpoint`).
        settings: `RunSettings` of the run; a checkpoint made with others is refused.
        write: bool. Whether to write files.
    """

    def __init__(self, directory: Path, settings: RunSettings, write: bool = True):
        super().__init__()
        self.directory = Path(directory)
        self.settings = settings
        self.write = write
        self.history: dict[str, list[float]] = {}
        self.epochs_done = 0
        self._started = 0.0
        self._steps_ended: float | None = None

    def restore(self, model: keras.Model) -> int:
        """Loads the last completed epoch into `model`; returns the number of epochs done.

        Raises:
            ValueError: the checkpoint was made with other settings, or a file of it is damaged
                or missing (named).
        """
        state_path = self.directory / STATE_FILE
        if not state_path.exists():
            return 0
        state, recorded = read_run_file(state_path, _STATE_KEYS)
        if recorded != self.settings:
            raise ValueError(
                f"The checkpoint in {self.directory} was made with other settings: "
                f"{state['settings']} (now {self.settings.to_dict()}). {START_AFRESH}"
            )
        load_epoch(model, self.directory, state, START_AFRESH)
        self.history, self.epochs_done = state["history"], state["epochs_done"]
        return self.epochs_done

    def on_epoch_begin(self, epoch, logs=None):
        self._started, self._steps_ended = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        # The epoch's validation starts: its training steps have ended once the device has
        # computed them (JAX dispatches steps ahead), so wait for one weight.
        if self._steps_ended is None:
            keras.ops.convert_to_numpy(self.model.trainable_variables[0])
            self._steps_ended = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if not all(math.isfinite(float(value)) for value in logs.values()):
            return
        logs["train_seconds"] = (self._steps_ended or time.perf_counter()) - self._started
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self.epochs_done = epoch + 1
        if not self.write:
            return
        state = {"settings": self.settings.to_dict(), "epochs_done": self.epochs_done}
        save_epoch(self.model, self.directory, {**state, "history": self.history})

    def clear(self) -> None:
        """Removes the checkpoint directory (the run is complete), its state file first."""
        (self.directory / STATE_FILE).unlink(missing_ok=True)
        shutil.rmtree(self.directory, ignore_errors=True)
