"""Time to 0.80 / 0.90 test accuracy on the real Fashion-MNIST, DAWNBench style.

Rows: the notebook as written (its `keras.Sequential`, `fit` on NumPy arrays, its settings);
each `build_lenet` preset with its own training settings through the package's pipeline
(`make_dataset`, the chosen `jit_compile` and `steps_per_execution`); and the notebook's
network in each installed peer with the notebook's settings.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from bench_lib import keras_tf, peers
from bench_lib.accuracy_clock import AccuracyClock
from bench_lib.data import nearest_divisor
from bench_lib.networks import NOTEBOOK_TRAINING, SEQUENTIAL
from lenet_blocks.datasets import load_fashion_mnist
from lenet_blocks.pipeline import make_dataset, with_channel_axis
from lenet_blocks.regularization import schedule_callbacks

EVALUATION_BATCH = 1000
# torch.compile is left out here: its compilation (tens of seconds on CPU) would dominate a
# one-minute run; its step throughput is in the throughput run.
PEER_RUNS = (("pytorch", "eager", "PyTorch eager"), ("keras-jax", "jit", "Keras on JAX (jit)"))


@dataclass(frozen=True)
class KerasRun:
    """One Keras/TensorFlow row: which model, fed how, compiled how."""

    name: str
    model: str
    feed: str
    jit_compile: bool | str
    steps_per_execution: int
    package: bool


class _ClockCallback(keras.callbacks.Callback):
    """Pauses the clock for `fit`'s validation pass and records its accuracy."""

    def __init__(self, clock: AccuracyClock, samples_per_epoch: int):
        super().__init__()
        self.clock = clock
        self.samples_per_epoch = samples_per_epoch

    def on_test_begin(self, logs=None):
        self.clock.pause()

    def on_epoch_end(self, epoch, logs=None):
        samples = (epoch + 1) * self.samples_per_epoch
        if self.clock.record(samples, float(logs["val_accuracy"])):
            self.model.stop_training = True


def keras_runs(config: dict) -> list[KerasRun]:
    """The notebook as written, then each preset through the package's pipeline."""
    runs = [KerasRun("notebook as written", SEQUENTIAL, "numpy", "auto", 1, package=False)]
    for preset in config["models"]:
        if preset != SEQUENTIAL:
            runs.append(
                KerasRun(
                    f"{preset} (package pipeline)",
                    preset,
                    "pipeline",
                    config["jit_compile"],
                    config["steps_per_execution"],
                    package=True,
                )
            )
    return runs


def _keras_settings(run: KerasRun, jit: bool) -> str:
    training = keras_tf.training_settings(run.model)
    model = "keras.Sequential" if run.model == SEQUENTIAL else f"build_lenet('{run.model}')"
    feed = "NumPy uint8 arrays" if run.feed == "numpy" else "make_dataset (shuffled, prefetched)"
    schedule = ""
    if training.get("lr_schedule", "constant") != "constant":
        schedule = f" ({training['lr_schedule']} over {training['epochs']} epochs)"
    return (
        f"{model}; fit on {feed}, batch {training['batch_size']}; {training['optimizer']} "
        f"lr {training['learning_rate']}{schedule}; jit_compile={jit}, "
        f"steps_per_execution={run.steps_per_execution}"
    )


def chunked_schedule(training: dict, samples: int, samples_per_chunk: int) -> list:
    """The learning-rate schedule of a model's training settings, for a run whose `fit` epochs
    are evaluation chunks of `samples_per_chunk` samples: a cosine over the settings' `epochs`
    of `samples` samples each becomes a cosine over as many chunks.

    Example:
    >>> settings = {"learning_rate": 0.01, "lr_schedule": "cosine", "epochs": 2}
    >>> [c.epochs for c in chunked_schedule(settings, samples=60_000, samples_per_chunk=9_984)]
    [12]
    >>> chunked_schedule({"learning_rate": 0.9}, samples=60_000, samples_per_chunk=9_984)
    []
    """
    schedule = training.get("lr_schedule", "constant")
    chunks = None
    if schedule != "constant":  # the notebook's settings have no `epochs`
        chunks = max(1, round(training["epochs"] * samples / samples_per_chunk))
    return schedule_callbacks(schedule, training["learning_rate"], chunks)


def run_keras(run: KerasRun, data: tuple, config: dict) -> dict:
    """Trains one Keras row until every threshold or the time cap; evaluates with `fit`'s
    validation pass on the test set every `eval_every` samples (rounded to whole steps)."""
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(config["seed"])
    model = keras_tf.build_compiled(
        run.model, jit_compile=run.jit_compile, steps_per_execution=run.steps_per_execution
    )
    training = keras_tf.training_settings(run.model)
    batch = training["batch_size"]
    target_steps = max(1, round(config["eval_every"] / batch))
    if run.feed == "numpy":
        steps = nearest_divisor(math.ceil(len(x_train) / batch), target_steps)
        inputs = {"x": x_train, "y": y_train, "batch_size": batch}
        validation = {
            "validation_data": (x_test, y_test),
            "validation_batch_size": EVALUATION_BATCH,
        }
    else:
        spe = run.steps_per_execution
        steps = max(spe, round(target_steps / spe) * spe)
        train = make_dataset(x_train, y_train, batch, shuffle=True, seed=config["seed"])
        inputs = {"x": train.repeat(), "shuffle": False}
        validation = {"validation_data": make_dataset(x_test, y_test, EVALUATION_BATCH)}
    clock = AccuracyClock(tuple(config["thresholds"]), config["max_seconds"])
    clock.start()
    model.fit(
        **inputs,
        **validation,
        steps_per_epoch=steps,
        epochs=1_000_000,  # the clock stops the run
        verbose=0,
        callbacks=[
            *chunked_schedule(training, len(x_train), steps * batch),
            _ClockCallback(clock, steps * batch),
        ],
    )
    return {
        "name": run.name,
        "framework": keras_tf.FRAMEWORK,
        "model": run.model,
        "package": run.package,
        "settings": _keras_settings(run, bool(model.jit_compile)),
        "status": "measured",
        **clock.result(),
    }


def _peer_row(peer: str, variant: str, label: str, data_path: Path, config: dict) -> dict:
    row = {
        "name": f"{label} (notebook network)",
        "framework": peer,
        "model": "notebook",
        "package": False,
        "settings": (
            f"{label}; the notebook's network and settings: SGD lr "
            f"{NOTEBOOK_TRAINING['learning_rate']}, batch {NOTEBOOK_TRAINING['batch_size']}, "
            "raw pixels, device tensors"
        ),
    }
    version = peers.installed_version(peer)
    if not config["peers"]:
        return {**row, "status": "not requested"}
    if version is None:
        return {**row, "status": "not installed"}
    task = {
        "task": "time_to_accuracy",
        "variant": variant,
        "thresholds": list(config["thresholds"]),
        "max_seconds": config["max_seconds"],
        "eval_every": config["eval_every"],
        "seed": config["seed"],
        "data": str(data_path),
    }
    result = peers.run_accuracy(peer, task, timeout=config["peer_timeout"])
    return {**row, "version": version, **result}


def time_to_accuracy(config: dict) -> list[dict]:
    """Every row, one after the other (each alone on the machine); returns their results."""
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(config["data_dir"])
    data = ((with_channel_axis(x_train), y_train), (with_channel_axis(x_test), y_test))
    runs = keras_runs(config)
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-data-") as workdir,
        tqdm(total=len(runs) + len(PEER_RUNS), desc="time to accuracy", unit="run") as progress,
    ):
        data_path = Path(workdir, "fashion_mnist.npz")
        np.savez(
            data_path, x_train=data[0][0], y_train=data[0][1], x_test=data[1][0], y_test=data[1][1]
        )
        for run in runs:
            progress.set_postfix_str(run.name)
            rows.append(run_keras(run, data, config))
            progress.update()
        for peer, variant, label in PEER_RUNS:
            progress.set_postfix_str(label)
            rows.append(_peer_row(peer, variant, label, data_path, config))
            progress.update()
    return rows
