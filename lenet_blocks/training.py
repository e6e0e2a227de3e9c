"""Train and evaluate a preset as plain functions; every artifact is written atomically.

A run lives in one output directory:

- `model.keras`: the trained model (load with `lenet_blocks.load_model`);
- `metrics.json`: history, test loss/accuracy, per-class accuracy, timing, versions, settings;
- `training_curves.png`, `confusion_matrix.png`;
- `checkpoint/` while training: `state.json` (settings, epochs done, history) and the weights
  of the last completed epoch. A killed run started again on the same directory resumes from
  there; the directory is removed when the run completes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np

from lenet_blocks import artifacts, plots
from lenet_blocks.choices import OPTIMIZERS, check_choice
from lenet_blocks.compile import compile_lenet
from lenet_blocks.datasets import FASHION_MNIST_CLASS_NAMES, load_fashion_mnist
from lenet_blocks.distribution import fit_multi_worker, is_chief, make_strategy, parse_tf_config
from lenet_blocks.inspection import format_shape_walk, shape_walk
from lenet_blocks.locking import lock_directory
from lenet_blocks.objectives import class_probabilities, loss_and_metrics
from lenet_blocks.pipeline import make_dataset, split_validation
from lenet_blocks.presets import get_preset
from lenet_blocks.regularization import (
    augmented_lenet,
    check_augmentation,
    check_lr_schedule,
    schedule_callbacks,
)

SETTING_DEFAULTS = {"lr_schedule": "constant", "augmentation": "none"}
CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


def resolve_settings(
    preset: str = "notebook",
    epochs: int | None = None,
    batch_size: int | None = None,
    optimizer: str | None = None,
    learning_rate: float | None = None,
    momentum: float = 0.0,
    seed: int = 0,
    validation_split: float = 0.1,
    model_overrides: dict | None = None,
    *,
    augmentation: str | None = None,
    lr_schedule: str | None = None,
) -> dict:
    """The full settings of a run: the preset's training defaults, then what is given.

    Example:
    >>> settings = resolve_settings()
    >>> settings["optimizer"], settings["learning_rate"], settings["epochs"]
    ('sgd', 0.9, 5)
    """
    defaults = with_setting_defaults(get_preset(preset)["training"])
    given = {
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "learning_rate": learning_rate,
        "lr_schedule": lr_schedule,
        "augmentation": augmentation,
    }
    settings = {
        "preset": preset,
        **{name: defaults[name] if value is None else value for name, value in given.items()},
        "momentum": momentum,
        "seed": seed,
        "validation_split": validation_split,
        "model_overrides": dict(model_overrides or {}),
    }
    for arg in ("epochs", "batch_size"):
        value = settings[arg]
        if not _is_positive_int(value):
            raise ValueError(f"`{arg}` must be a positive int. Received: {arg}={value!r}")
    check_choice("optimizer", settings["optimizer"], OPTIMIZERS)
    check_lr_schedule(settings["lr_schedule"])
    check_augmentation(settings["augmentation"])
    if not settings["learning_rate"] > 0:
        raise ValueError(
            "`learning_rate` must be positive. "
            f"Received: learning_rate={settings['learning_rate']!r}"
        )
    if not 0 <= momentum < 1:
        raise ValueError(f"`momentum` must be in [0, 1). Received: momentum={momentum!r}")
    if not 0 < validation_split < 1:
        raise ValueError(
            f"`validation_split` must be in (0, 1). Received: validation_split={validation_split!r}"
        )
    return settings


def with_setting_defaults(settings: dict) -> dict:
    """`settings` with the defaults of settings added after a run may have been made.

    A run recorded before `lr_schedule` and `augmentation` existed used their defaults, so it
    is still the same run (and resumes) with this version.

    Example:
    >>> with_setting_defaults({"epochs": 5})
    {'lr_schedule': 'constant', 'augmentation': 'none', 'epochs': 5}
    """
    return {**SETTING_DEFAULTS, **settings}


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def build_compiled_model(settings: dict, steps_per_execution: int = 1) -> keras.Model:
    """The run's model, compiled with its optimizer and the loss that fits its output layer.

    `steps_per_execution` goes to `compile`: that many training steps run in one call of the
    compiled function (faster for a small network; callbacks and the progress bar see every
    `steps_per_execution`-th step).
    """
    overrides = dict(settings["model_overrides"])
    preset_shape = get_preset(settings["preset"])["model"]["input_shape"]
    input_shape = overrides.pop("input_shape", preset_shape)
    model = augmented_lenet(
        settings["augmentation"],
        settings["preset"],
        input_shape=input_shape,
        seed=settings["seed"],
        **overrides,
    )
    return compile_lenet(
        model,
        settings["optimizer"],
        settings["learning_rate"],
        momentum=settings["momentum"],
        steps_per_execution=steps_per_execution,
    )


def single_device_copy(model: keras.Model, settings: dict) -> keras.Model:
    """A copy of a model trained under a distribution strategy, outside any strategy.

    Same weights and optimizer state, built by `build_compiled_model(settings)`, so it saves,
    evaluates and reloads exactly like a model trained on one device.
    """
    copy = build_compiled_model(settings)
    copy.set_weights(model.get_weights())
    copy.optimizer.build(copy.trainable_variables)
    for target, source in zip(copy.optimizer.variables, model.optimizer.variables, strict=True):
        target.assign(keras.ops.convert_to_numpy(source))
    return copy


def evaluate_model(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int = 256,
    class_names: tuple[str, ...] = FASHION_MNIST_CLASS_NAMES,
) -> dict:
    """Loss, accuracy, per-class accuracy and confusion matrix of `model` on a labelled set.

    The loss is Keras' own (`model.evaluate`), as in training: note that on the TensorFlow
    backend, Keras computes the cross-entropy of a sigmoid or softmax output from the logits
    before the activation. An uncompiled model is compiled with `loss_and_metrics(model)`.

    Example:
    >>> from lenet_blocks import build_lenet
    >>> images, labels = np.zeros((4, 28, 28), "uint8"), np.array([0, 1, 2, 3])
    >>> sorted(evaluate_model(build_lenet(), images, labels))
    ['accuracy', 'confusion_matrix', 'loss', 'per_class_accuracy', 'samples']
    """
    if not model.compiled:
        loss, metrics = loss_and_metrics(model)
        model.compile(loss=loss, metrics=metrics)
    loss = model.evaluate(make_dataset(images, labels, batch_size), verbose=0, return_dict=True)
    outputs = model.predict(make_dataset(images, batch_size=batch_size), verbose=0)
    predicted = class_probabilities(model, outputs).argmax(axis=-1)
    labels = np.asarray(labels)
    classes = outputs.shape[-1]
    matrix = np.zeros((classes, classes), dtype=int)
    np.add.at(matrix, (labels, predicted), 1)
    per_class = {}
    for index in range(classes):
        total = matrix[index].sum()
        name = class_names[index] if index < len(class_names) else str(index)
        per_class[name] = float(matrix[index, index] / total) if total else None
    return {
        "loss": float(loss["loss"]),
        "accuracy": float(np.mean(predicted == labels)),
        "per_class_accuracy": per_class,
        "confusion_matrix": matrix.tolist(),
        "samples": len(labels),
    }


def train(
    output_dir: str | os.PathLike,
    *,
    preset: str = "notebook",
    epochs: int | None = None,
    batch_size: int | None = None,
    optimizer: str | None = None,
    learning_rate: float | None = None,
    lr_schedule: str | None = None,
    augmentation: str | None = None,
    momentum: float = 0.0,
    seed: int = 0,
    validation_split: float = 0.1,
    model_overrides: dict | None = None,
    data: tuple | None = None,
    data_dir: str | os.PathLike | None = None,
    tensorboard_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    verbose: int | str = "auto",
    callbacks: list[keras.callbacks.Callback] | None = None,
    distribution: str = "none",
    steps_per_execution: int = 1,
) -> dict:
    """Trains a preset on Fashion-MNIST (or `data`), evaluates it, writes the run's artifacts.

    Defaults reproduce the notebook: `notebook` preset, SGD lr 0.9, momentum 0, 5 epochs,
    batch 32, the last 10% of the training set held out for validation.

    Args:
        output_dir: directory of the run (see the module docstring for its files).
        preset: str. Model preset; its `training` entry gives the defaults below.
        epochs, batch_size, optimizer, learning_rate: override the preset's training defaults.
        lr_schedule: str. `"constant"` or `"cosine"` (decay to 0 over the epochs); default: the
            preset's, else constant.
        augmentation: str. `"none"`, `"translate"` or `"translate_zoom"`: training-only
            augmentation layers in front of the model (saved with it, inactive at inference);
            default: the preset's, else none.
        momentum: float. Momentum of SGD/RMSprop.
        seed: int. Seeds weights, dropout and shuffling.
        validation_split: float. Fraction of the training set held out (its end, as Keras does).
        model_overrides: dict of `build_lenet` arguments, e.g. `{"activation": "relu"}`.
        data: `((x_train, y_train), (x_test, y_test))` uint8 arrays; default: Fashion-MNIST
            found by `load_fashion_mnist(data_dir)`.
        data_dir: directory with the Fashion-MNIST IDX files.
        tensorboard_dir: if given, TensorBoard logs are written there.
        overwrite: bool. Start afresh even if `output_dir` holds a finished or partial run.
        verbose: Keras `fit` verbosity; with a non-zero value the summary and shape walk print.
        callbacks: extra Keras callbacks, called after the checkpointing ones.
        distribution: str. `"none"` (one device), `"mirrored"` (`tf.distribute.MirroredStrategy`
            over the local GPUs, or the logical CPU devices) or `"multi-worker"`
            (`MultiWorkerMirroredStrategy` from `TF_CONFIG`; every worker runs `train` with the
            same arguments and only the chief writes files). `batch_size` is the global batch,
            split across the replicas. See `lenet_blocks.distribution`.
        steps_per_execution: int. Training steps per call of Keras' compiled train function
            (`compile(steps_per_execution=...)`): faster on a CPU for this small network;
            batch-level callbacks and the progress bar then see every n-th step. It does not
            change what is computed, so it is not a setting of the run (a run may resume with
            another value). Not used by `distribution="multi-worker"`.

    Returns:
        The dict written to `metrics.json`.

    Raises:
        FileExistsError: `output_dir` holds a finished run with other settings and `overwrite`
            is false (a finished run with the same settings is returned as it is), or is a file.
        DirectoryLockedError: another process trains in `output_dir` (a `FileExistsError`
            naming its PID; see `lenet_blocks.locking`).
        ValueError: a bad setting, or a checkpoint made with other settings.
        NonFiniteLossError: the loss became NaN or infinite (the last good epoch is kept).
    """
    settings = resolve_settings(
        preset,
        epochs,
        batch_size,
        optimizer,
        learning_rate,
        momentum,
        seed,
        validation_split,
        model_overrides,
        augmentation=augmentation,
        lr_schedule=lr_schedule,
    )
    if not _is_positive_int(steps_per_execution):
        raise ValueError(
            "`steps_per_execution` must be a positive int. "
            f"Received: steps_per_execution={steps_per_execution!r}"
        )
    chief = distribution != "multi-worker" or is_chief()
    output_dir = Path(output_dir)
    # Every worker of a multi-worker run trains on one directory; only the chief writes there.
    with lock_directory(output_dir, "run") if chief else contextlib.nullcontext():
        return _train_locked(
            output_dir,
            settings,
            chief=chief,
            data=data,
            data_dir=data_dir,
            tensorboard_dir=tensorboard_dir,
            overwrite=overwrite,
            verbose=verbose,
            callbacks=callbacks,
            distribution=distribution,
            steps_per_execution=steps_per_execution,
        )


def _train_locked(
    output_dir: Path,
    settings: dict,
    *,
    chief: bool,
    data,
    data_dir,
    tensorboard_dir,
    overwrite: bool,
    verbose,
    callbacks,
    distribution: str,
    steps_per_execution: int,
) -> dict:
    preset, seed, validation_split = (
        settings["preset"],
        settings["seed"],
        settings["validation_split"],
    )
    checkpoint = EpochCheckpoint(output_dir / CHECKPOINT_DIR, settings, write=chief)
    if overwrite:
        shutil.rmtree(output_dir / CHECKPOINT_DIR, ignore_errors=True)
        (output_dir / "metrics.json").unlink(missing_ok=True)
    elif (output_dir / "metrics.json").exists():
        finished = json.loads((output_dir / "metrics.json").read_text())
        if with_setting_defaults(finished["settings"]) != json.loads(json.dumps(settings)):
            raise FileExistsError(
                f"{output_dir} holds a finished run with other settings: {finished['settings']}. "
                "Pass `overwrite=True` (`--overwrite`) to replace it, or choose another output "
                "directory."
            )
        if verbose not in (0, "0"):
            print(
                f"{output_dir} already holds this finished run: test accuracy "
                f"{finished['test_accuracy']:.4f} (metrics.json). Pass `overwrite=True` "
                "(`--overwrite`) to train again."
            )
        return finished
    strategy = make_strategy(distribution)  # before any TensorFlow op, as TensorFlow asks
    (x_train, y_train), (x_test, y_test) = (
        data if data is not None else load_fashion_mnist(data_dir)
    )
    (x_fit, y_fit), (x_val, y_val) = split_validation(x_train, y_train, validation_split)

    keras.utils.set_random_seed(seed)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = build_compiled_model(settings, steps_per_execution)
        initial_epoch = checkpoint.restore(model)
    show = verbose not in (0, "0")
    if show:
        model.summary()
        print(format_shape_walk(shape_walk(model)))
        if initial_epoch:
            print(f"Resuming from {checkpoint.directory} after epoch {initial_epoch}.")

    stop_on_non_finite = StopOnNonFiniteLoss()
    run_callbacks = [
        *schedule_callbacks(settings["lr_schedule"], settings["learning_rate"]),
        stop_on_non_finite,
        checkpoint,
    ]
    if tensorboard_dir is not None and chief:
        run_callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir)))
    run_callbacks.extend(callbacks or [])
    batch = settings["batch_size"]
    train_data = make_dataset(x_fit, y_fit, batch, shuffle=True, seed=seed + initial_epoch)
    validation_data = make_dataset(x_val, y_val, batch)
    if distribution == "multi-worker":
        fit_multi_worker(
            model,
            strategy,
            train_data,
            validation_data,
            epochs=settings["epochs"],
            initial_epoch=initial_epoch,
            callbacks=run_callbacks,
            verbose=verbose,
        )
    else:
        model.fit(
            train_data,
            validation_data=validation_data,
            epochs=settings["epochs"],
            initial_epoch=initial_epoch,
            shuffle=False,  # the dataset reshuffles itself each epoch
            callbacks=run_callbacks,
            verbose=verbose,
        )
    if stop_on_non_finite.stopped_at is not None:
        epoch, step = stop_on_non_finite.stopped_at
        raise NonFiniteLossError(
            f"The training loss became {stop_on_non_finite.value} at epoch {epoch + 1}, step "
            f"{step + 1}; stopped. Lower the learning rate (it is {settings['learning_rate']}). "
            f"The last completed epoch is kept in {checkpoint.directory}."
        )
    if checkpoint.epochs_done < settings["epochs"]:
        raise RuntimeError(f"Training stopped after {checkpoint.epochs_done} epochs.")

    if strategy is not None:
        model = single_device_copy(model, settings)
    test = evaluate_model(model, x_test, y_test)
    history = checkpoint.history
    train_seconds = sum(history["train_seconds"])
    metrics = {
        "settings": settings,
        "history": history,
        "epochs": checkpoint.epochs_done,
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "per_class_accuracy": test["per_class_accuracy"],
        "confusion_matrix": test["confusion_matrix"],
        "train_samples": len(x_fit),
        "validation_samples": len(x_val),
        "test_samples": test["samples"],
        "parameters": model.count_params(),
        "train_seconds": train_seconds,
        "train_samples_per_second": len(x_fit) * checkpoint.epochs_done / train_seconds,
        "distribution": {
            "strategy": distribution,
            "replicas": strategy.num_replicas_in_sync if strategy else 1,
            "workers": parse_tf_config()[2] if distribution == "multi-worker" else 1,
        },
        "versions": versions(),
    }
    if not chief:
        return metrics
    artifacts.save_model(model, output_dir / "model.keras")
    plots.plot_training_curves(history, output_dir / "training_curves.png")
    plots.plot_confusion_matrix(
        np.array(test["confusion_matrix"]),
        FASHION_MNIST_CLASS_NAMES[: model.output_shape[-1]],
        output_dir / "confusion_matrix.png",
        title=f"{preset}: test accuracy {test['accuracy']:.4f}",
    )
    artifacts.write_json(output_dir / "metrics.json", metrics)
    checkpoint.clear()
    if show:
        print(f"Test loss {test['loss']:.4f}, test accuracy {test['accuracy']:.4f}")
        print(
            f"Wrote {output_dir}/model.keras, metrics.json, training_curves.png, "
            "confusion_matrix.png"
        )
    return metrics


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite batch loss and remembers where."""

    def __init__(self):
        super().__init__()
        self.stopped_at: tuple[int, int] | None = None
        self.value: float | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.stopped_at, self.value = (self._epoch, batch), float(loss)
            self.model.stop_training = True


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves weights, settings and history after every epoch so that a killed run resumes.

    The weights go to `epoch-NNNN.weights.h5`; `state.json`, replaced atomically after them, names
    the file, so the state always points at complete weights. Timing of each epoch's training
    steps (without validation) is kept in the history as `train_seconds`. With `write=False`
    (a worker that is not the chief) it restores and counts epochs but writes nothing.
    """

    def __init__(self, directory: Path, settings: dict, write: bool = True):
        super().__init__()
        self.directory = Path(directory)
        self.settings = settings
        self.write = write
        self.history: dict[str, list[float]] = {}
        self.epochs_done = 0
        self._started = 0.0
        self._last_step = 0.0

    def restore(self, model: keras.Model) -> int:
        """Loads the last completed epoch into `model`; returns the number of epochs done."""
        state_path = self.directory / STATE_FILE
        if not state_path.exists():
            return 0
        state = json.loads(state_path.read_text())
        if with_setting_defaults(state["settings"]) != self.settings:
            raise ValueError(
                f"The checkpoint in {self.directory} was made with other settings: "
                f"{state['settings']} (now {self.settings}). Pass `overwrite=True` "
                "(`--overwrite`) to start afresh, or choose another output directory."
            )
        model.optimizer.build(model.trainable_variables)
        model.load_weights(self.directory / state["weights"])
        self.history, self.epochs_done = state["history"], state["epochs_done"]
        return self.epochs_done

    def on_epoch_begin(self, epoch, logs=None):
        self._started = self._last_step = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._last_step = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if not all(math.isfinite(float(value)) for value in logs.values()):
            return
        logs["train_seconds"] = self._last_step - self._started
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self.epochs_done = epoch + 1
        if not self.write:
            return
        weights = f"epoch-{self.epochs_done:04d}.weights.h5"
        self.directory.mkdir(parents=True, exist_ok=True)
        artifacts.write_with(self.directory / weights, self.model.save_weights)
        artifacts.write_json(
            self.directory / STATE_FILE,
            {
                "settings": self.settings,
                "epochs_done": self.epochs_done,
                "weights": weights,
                "history": self.history,
            },
        )
        for old in self.directory.glob("epoch-*.weights.h5"):
            if old.name != weights:
                old.unlink()

    def clear(self) -> None:
        """Removes the checkpoint directory (the run is complete)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def versions() -> dict[str, str]:
    """Versions of Python, the libraries and the machine, for the metrics file."""
    import tensorflow as tf

    import lenet_blocks

    return {
        "python": sys.version.split()[0],
        "lenet_blocks": lenet_blocks.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
    }
