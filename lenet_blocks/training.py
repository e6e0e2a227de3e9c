"""Train and evaluate a preset as plain functions; every artifact is written atomically.

A run lives in one output directory, locked for the whole run (`lenet_blocks.locking`):

- `model.keras`: the trained model (load with `lenet_blocks.load_model`);
- `metrics.json`: history, test loss/accuracy, per-class accuracy, timing, versions, settings.
  Written last, it marks the run finished: a start that finds it returns the run as it is
  (and removes what a kill may have left behind);
- `training_curves.png`, `confusion_matrix.png`;
- `checkpoint/` while training (`lenet_blocks.checkpoint`): a killed run started again on the
  same directory resumes after its last completed epoch, computing what the run that was never
  interrupted computes; the directory is removed when the run completes.

The settings of a run are one `lenet_blocks.settings.RunSettings`.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shutil
import sys
import threading
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from lenet_blocks import artifacts, plots
from lenet_blocks.arrays import split_validation
from lenet_blocks.checkpoint import CHECKPOINT_DIR, STATE_FILE, EpochCheckpoint, read_run_file
from lenet_blocks.choices import DISTRIBUTIONS, check_choice
from lenet_blocks.compile import check_use_ema, compile_lenet
from lenet_blocks.data_sources import LoadedData, from_arrays, load_dataset
from lenet_blocks.distribution import fit_multi_worker, is_chief, make_strategy, parse_tf_config
from lenet_blocks.image_folders import folder_datasets
from lenet_blocks.inference import head_classes, model_class_names
from lenet_blocks.inspection import format_shape_walk, shape_walk
from lenet_blocks.locking import lock_directory
from lenet_blocks.objectives import class_probabilities, is_rbf_model, loss_and_metrics
from lenet_blocks.pipeline import EpochCounter, make_batches
from lenet_blocks.presets import get_preset
from lenet_blocks.regularization import (
    TorchEpochSeed,
    augmented_lenet,
    learning_rate_schedule,
    mix_and_average,
)
from lenet_blocks.settings import RunSettings
from lenet_blocks.validation import is_positive_int

__all__ = [
    "CHECKPOINT_DIR",
    "STATE_FILE",
    "EpochCheckpoint",
    "NonFiniteLossError",
    "RunSettings",
    "StopOnNonFiniteLoss",
    "build_compiled_model",
    "evaluate_model",
    "single_device_copy",
    "train",
    "versions",
]

METRICS_FILE = "metrics.json"


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


def build_compiled_model(
    settings: RunSettings,
    steps_per_execution: int = 1,
    class_names=None,
    steps_per_epoch: int = 1,
    *,
    input_shape: tuple[int, int, int] | None = None,
    classes: int | None = None,
) -> keras.Model:
    """The run's model, compiled with its optimizer and the loss that fits its output layer.

    `steps_per_execution` goes to `compile`: that many training steps run in one call of the
    compiled function (faster for a small network; callbacks and the progress bar see every
    `steps_per_execution`-th step). `class_names`, if given, are saved with the model (its
    head carries them). `steps_per_epoch` (training batches per epoch) sets the length of the
    learning-rate schedule: `settings.epochs * steps_per_epoch` optimizer steps. `input_shape`
    and `classes` (the data set's) replace the preset's; `settings.model_overrides` wins.

    The training recipes of `settings` go in too: `horizontal_flip` and `random_erasing` as
    augmentation layers (`regularization.augmented_lenet`), `label_smoothing`, `use_ema` and
    the soft labels of `mixing` in the compile (`compile.compile_lenet`); the batches and
    callbacks of `mixing` and `use_ema` are `train`'s (`regularization.mix_and_average`).

    Raises:
        ValueError: `label_smoothing` or `mixing` for a model with an RBF output (the
            `lenet5_1998` preset), whose loss takes integer labels only.

    Example:
    >>> type(build_compiled_model(RunSettings()).optimizer).__name__
    'SGD'
    """
    overrides = dict(settings.model_overrides)
    if class_names is not None:
        overrides["class_names"] = class_names
    if input_shape is None:
        input_shape = get_preset(settings.preset)["model"]["input_shape"]
    input_shape = overrides.pop("input_shape", input_shape)
    if classes is not None:
        overrides.setdefault("classes", classes)
    model = augmented_lenet(
        settings.augmentation,
        settings.preset,
        input_shape=input_shape,
        seed=settings.seed,
        horizontal_flip=settings.horizontal_flip,
        random_erasing=settings.random_erasing,
        **overrides,
    )
    if is_rbf_model(model) and (settings.label_smoothing or settings.mixing != "none"):
        raise ValueError(
            "`label_smoothing` and `mixing` need a softmax, sigmoid or logits output; an RBF "
            "output's loss takes integer labels only. Received: "
            f"label_smoothing={settings.label_smoothing!r}, mixing={settings.mixing!r}"
        )
    return compile_lenet(
        model,
        settings.optimizer,
        learning_rate_schedule(
            settings.lr_schedule, settings.learning_rate, settings.epochs * steps_per_epoch
        ),
        momentum=settings.momentum,
        use_ema=settings.use_ema,
        label_smoothing=settings.label_smoothing,
        soft_labels=settings.mixing != "none",
        steps_per_execution=steps_per_execution,
    )


def single_device_copy(
    model: keras.Model, settings: RunSettings, steps_per_epoch: int = 1
) -> keras.Model:
    """A copy of a model trained under a distribution strategy, outside any strategy.

    Same weights and optimizer state, built by `build_compiled_model(settings)`, so it saves,
    evaluates and reloads exactly like a model trained on one device.
    """
    copy = build_compiled_model(
        settings,
        class_names=model_class_names(model),
        steps_per_epoch=steps_per_epoch,
        input_shape=model.input_shape[1:],
        classes=head_classes(model),
    )
    copy.set_weights(model.get_weights())
    copy.optimizer.build(copy.trainable_variables)
    for target, source in zip(copy.optimizer.variables, model.optimizer.variables, strict=True):
        target.assign(keras.ops.convert_to_numpy(source))
    return copy


def evaluate_model(
    model: keras.Model,
    images,
    labels: np.ndarray | None = None,
    batch_size: int = 256,
    class_names: tuple[str, ...] | None = None,
) -> dict:
    """Loss, accuracy, per-class accuracy and confusion matrix of `model` on a labelled set.

    The loss is Keras' own (`model.evaluate`), as in training: note that on the TensorFlow
    backend, Keras computes the cross-entropy of a sigmoid or softmax output from the logits
    before the activation. An uncompiled model is compiled with `loss_and_metrics(model)`.
    Works for every output a `build_lenet` model can have (softmax, sigmoid, logits, LeNet-5's
    RBF distances) and any spatial size the model accepts.

    Args:
        model: a `keras.Model` with a classification head.
        images, labels: the labelled set (uint8 images, integer labels); or, with `labels`
            left out, `images` is a `tf.data.Dataset` of `(images, labels)` batches (an image
            folder's, streamed from disk, read once for the predictions).
        batch_size: int. Evaluation batch size (of arrays).
        class_names: names of the model's classes; default: the model's own
            (`model_class_names`), else the class indices.

    Raises:
        ValueError: a headless model, or labels the model's head has no class for (the
            message names both numbers).

    Example:
    >>> from lenet_blocks import build_lenet
    >>> images, labels = np.zeros((4, 28, 28), "uint8"), np.array([0, 1, 2, 3])
    >>> sorted(evaluate_model(build_lenet(), images, labels))
    ['accuracy', 'confusion_matrix', 'loss', 'per_class_accuracy', 'samples']
    """
    classes = head_classes(model)
    if not model.compiled:
        loss, metrics = loss_and_metrics(model)
        model.compile(loss=loss, metrics=metrics)
    if labels is None:
        predicted, labels = _predictions_of_stream(model, images)
    else:
        labels = np.asarray(labels)
    if len(labels) and int(labels.max()) >= classes:
        raise ValueError(
            f"The data set has labels up to {int(labels.max())} ({int(labels.max()) + 1} "
            f"classes) but the model's head has {classes} classes; evaluate it on data with "
            f"labels 0-{classes - 1}, or build the model with classes={int(labels.max()) + 1}."
        )
    names = class_names if class_names is not None else model_class_names(model)
    if names is None:
        names = tuple(str(index) for index in range(classes))
    elif len(names) != classes:
        raise ValueError(
            f"`class_names` must name the model's {classes} classes. "
            f"Received: {len(names)} class names"
        )
    if isinstance(images, np.ndarray) or not hasattr(images, "element_spec"):
        loss = model.evaluate(make_batches(images, labels, batch_size), verbose=0, return_dict=True)
        outputs = model.predict(make_batches(images, batch_size=batch_size), verbose=0)
        predicted = class_probabilities(model, outputs).argmax(axis=-1)
    else:
        loss = model.evaluate(images, verbose=0, return_dict=True)
    matrix = np.zeros((classes, classes), dtype=int)
    np.add.at(matrix, (labels, predicted), 1)
    per_class = {}
    for index, name in enumerate(names):
        total = matrix[index].sum()
        per_class[name] = float(matrix[index, index] / total) if total else None
    return {
        "loss": float(loss["loss"]),
        "accuracy": float(np.mean(predicted == labels)),
        "per_class_accuracy": per_class,
        "confusion_matrix": matrix.tolist(),
        "samples": len(labels),
    }


def _predictions_of_stream(model: keras.Model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """The predicted classes and the labels of a dataset of `(images, labels)` batches, one pass."""
    predicted, labels = [], []
    for images, batch_labels in dataset:
        outputs = model.predict_on_batch(images.numpy())
        predicted.append(class_probabilities(model, outputs).argmax(axis=-1))
        labels.append(batch_labels.numpy())
    return np.concatenate(predicted), np.concatenate(labels)


def train(
    output_dir: str | os.PathLike,
    settings: RunSettings | None = None,
    *,
    data: tuple | None = None,
    data_dir: str | os.PathLike | None = None,
    class_names=None,
    tensorboard_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    verbose: int | str = "auto",
    callbacks: list[keras.callbacks.Callback] | None = None,
    distribution: str = "none",
    steps_per_execution: int = 1,
    **setting_args,
) -> dict:
    """Trains a preset on a data set (Fashion-MNIST by default), evaluates it, writes the run.

    Defaults reproduce the notebook: `notebook` preset, SGD lr 0.9, momentum 0, 5 epochs,
    batch 32, the last 10% of the training set held out for validation.

    Args:
        output_dir: directory of the run (see the module docstring for its files).
        settings: `RunSettings` of the run; or give its fields as keyword arguments instead
            (`preset`, `epochs`, `batch_size`, `optimizer`, `learning_rate`, `lr_schedule`,
            `augmentation`, `momentum`, `seed`, `validation_split`, `model_overrides`,
            `dataset`, `image_size`, `color_mode`, `skip_bad_files`, and the training recipes
            `label_smoothing`, `mixing`, `use_ema`, `horizontal_flip`, `random_erasing`, as
            documented there), e.g.
            `train("runs/d2l", preset="d2l", epochs=3)` or `train("runs/mine",
            dataset="my_images/")`. The model's input shape and classes follow the data set.
        data: `((x_train, y_train), (x_test, y_test))` uint8 arrays (checked like an `.npz`
            archive); default: the settings' `dataset`, found by
            `lenet_blocks.data_sources.load_dataset(dataset, data_dir)`.
        data_dir: directory with the files of a named data set (`fashion_mnist`, `mnist`,
            `cifar10`).
        class_names: names of the classes, saved with the model (default: the data set's:
            Keras' known names, an image folder's folder names; none for `data`).
        tensorboard_dir: if given, TensorBoard logs are written there.
        overwrite: bool. Start afresh even if `output_dir` holds a finished or partial run.
        verbose: Keras `fit` verbosity; with a non-zero value the summary and shape walk print.
        callbacks: extra Keras callbacks, called after the checkpointing ones.
        distribution: str. `"none"` (one device), `"mirrored"` (`tf.distribute.MirroredStrategy`
            over the local GPUs, or the logical CPU devices) or `"multi-worker"`
            (`MultiWorkerMirroredStrategy` from `TF_CONFIG`; every worker runs `train` with the
            same arguments and only the chief writes files; not with `mixing` or `use_ema`).
            `batch_size` is the global batch, split across the replicas. See
            `lenet_blocks.distribution`.
        steps_per_execution: int. Training steps per call of Keras' compiled train function
            (`compile(steps_per_execution=...)`): faster on a CPU for this small network;
            batch-level callbacks and the progress bar then see every n-th step. It does not
            change what is computed, so it is not a setting of the run (a run may resume with
            another value). Not used by `distribution="multi-worker"`.
        **setting_args: the fields of `RunSettings`, when `settings` is not given.

    Returns:
        The dict written to `metrics.json`.

    Raises:
        FileExistsError: `output_dir` holds a finished run with other settings and `overwrite`
            is false (a finished run with the same settings is returned as it is), or is a file.
        DirectoryLockedError: another process trains in `output_dir` (a `FileExistsError`
            naming its PID; see `lenet_blocks.locking`).
        ValueError: a bad setting, empty data, an unwritable `output_dir`, a checkpoint made
            with other settings, a damaged file in `output_dir` (named), `mixing`/`use_ema`
            with `distribution="multi-worker"`, or `use_ema` on the JAX backend.
        NonFiniteLossError: the loss became NaN or infinite (the last good epoch is kept).
    """
    if settings is None:
        settings = RunSettings(**setting_args)
    elif setting_args:
        raise ValueError(
            "Pass either `settings` or its fields, not both. "
            f"Received: settings={settings!r} and {setting_args!r}"
        )
    if not is_positive_int(steps_per_execution):
        raise ValueError(
            "`steps_per_execution` must be a positive int. "
            f"Received: steps_per_execution={steps_per_execution!r}"
        )
    check_choice("distribution", distribution, DISTRIBUTIONS)
    check_use_ema(settings.use_ema)  # refused before anything is written, as in the compile
    if distribution == "multi-worker":
        # Its own training loop (`distribution.fit_multi_worker`) has integer-label metrics and
        # no test callbacks, which `mixing` and Keras' `SwapEMAWeights` need.
        if settings.mixing != "none" or settings.use_ema:
            raise ValueError(
                "`mixing` and `use_ema` are not supported with distribution='multi-worker'. "
                f"Received: mixing={settings.mixing!r}, use_ema={settings.use_ema!r}"
            )
        parse_tf_config()  # a missing or bad TF_CONFIG is refused before anything is written
    chief = distribution != "multi-worker" or is_chief()
    output_dir = Path(output_dir)
    # Every worker of a multi-worker run trains on one directory; only the chief writes there.
    with lock_directory(output_dir, "run") if chief else contextlib.nullcontext():
        finished = _finished_run(output_dir, settings, overwrite=overwrite, chief=chief)
        if finished is not None:
            if verbose not in (0, "0"):
                print(
                    f"{output_dir} already holds this finished run: test accuracy "
                    f"{finished.get('test_accuracy', float('nan')):.4f} ({METRICS_FILE}). Pass "
                    "`overwrite=True` (`--overwrite`) to train again."
                )
            return finished
        return _train_locked(
            output_dir,
            settings,
            chief=chief,
            data=data,
            data_dir=data_dir,
            class_names=class_names,
            tensorboard_dir=tensorboard_dir,
            verbose=verbose,
            callbacks=callbacks,
            distribution=distribution,
            steps_per_execution=steps_per_execution,
        )


def _finished_run(
    output_dir: Path, settings: RunSettings, *, overwrite: bool, chief: bool
) -> dict | None:
    """The finished run in `output_dir` (its metrics), or None when there is none to return.

    A finished run is one whose `metrics.json` exists, since it is written last. The chief
    also clears what a killed run may have left: the checkpoint of a finished run, half-written
    temporary files.
    """
    metrics_path = output_dir / METRICS_FILE
    if chief:
        artifacts.remove_temporaries(output_dir)
        artifacts.remove_temporaries(output_dir / CHECKPOINT_DIR)
    if overwrite:
        if chief:
            shutil.rmtree(output_dir / CHECKPOINT_DIR, ignore_errors=True)
            metrics_path.unlink(missing_ok=True)
        return None
    if not metrics_path.exists():
        return None
    finished, recorded = read_run_file(metrics_path, ("settings",))
    if recorded != settings:
        raise FileExistsError(
            f"{output_dir} holds a finished run with other settings: {finished['settings']}. "
            "Pass `overwrite=True` (`--overwrite`) to replace it, or choose another output "
            "directory."
        )
    if chief:
        shutil.rmtree(output_dir / CHECKPOINT_DIR, ignore_errors=True)
    return finished


def _train_locked(
    output_dir: Path,
    settings: RunSettings,
    *,
    chief: bool,
    data,
    data_dir,
    class_names,
    tensorboard_dir,
    verbose,
    callbacks,
    distribution: str,
    steps_per_execution: int,
) -> dict:
    strategy = make_strategy(distribution)  # before any TensorFlow op, as TensorFlow asks
    loaded = _run_data(settings, data, data_dir, class_names)
    geometry = _model_geometry(settings, loaded)
    # The data set's class names travel with the model (a `.keras` file then names them).
    if class_names is None and data is not None:
        names = None
    else:
        names = loaded.class_names if geometry["classes"] == loaded.classes else None
    epoch_counter = EpochCounter()
    splits = _training_splits(loaded, settings, epoch_counter)
    checkpoint = EpochCheckpoint(output_dir / CHECKPOINT_DIR, settings, write=chief)
    keras.utils.set_random_seed(settings.seed)
    with strategy.scope() if strategy else contextlib.nullcontext():
        steps_per_epoch = math.ceil(splits.train_samples / settings.batch_size)
        try:
            model = build_compiled_model(
                settings, steps_per_execution, names, steps_per_epoch, **geometry
            )
        except ValueError as error:
            raise ValueError(
                f"The {settings.preset} preset cannot take the images of {loaded.name} "
                f"({'x'.join(map(str, loaded.image_shape))}): {error}"
            ) from None
        initial_epoch = checkpoint.restore(model)
        if settings.use_ema and initial_epoch >= settings.epochs:
            # Killed after its last epoch: end with the averaged weights, as `fit` ends.
            model.optimizer.finalize_variable_values(model.trainable_variables)
    show = verbose not in (0, "0")
    if show:
        model.summary()
        print(format_shape_walk(shape_walk(model)))
        if initial_epoch:
            print(f"Resuming from {checkpoint.directory} after epoch {initial_epoch}.")

    stop_on_non_finite = StopOnNonFiniteLoss()
    run_callbacks = [
        epoch_counter,
        TorchEpochSeed(settings.seed),
        stop_on_non_finite,
        checkpoint,
    ]
    if tensorboard_dir is not None and chief:
        run_callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir)))
    run_callbacks.extend(callbacks or [])
    # The checkpoint keeps the trained weights (training goes on from them); the callbacks
    # after it, like validation, see the averaged ones of `use_ema`.
    train_data, run_callbacks = mix_and_average(
        splits.train,
        run_callbacks,
        mixing=settings.mixing,
        use_ema=settings.use_ema,
        classes=head_classes(model),
        seed=settings.seed,
        averaged_from=run_callbacks.index(checkpoint) + 1,
    )
    validation_data = splits.validation
    fit_args = {
        "epochs": settings.epochs,
        "initial_epoch": initial_epoch,
        "callbacks": run_callbacks,
        "verbose": verbose,
    }
    if initial_epoch >= settings.epochs:
        pass  # killed after its last epoch, before metrics.json: only the results are missing
    elif distribution == "multi-worker":
        fit_multi_worker(model, strategy, train_data, validation_data, **fit_args)
    else:
        # shuffle=False: the dataset orders each epoch itself.
        model.fit(train_data, validation_data=validation_data, shuffle=False, **fit_args)
    if stop_on_non_finite.stopped_at is not None:
        epoch, step = stop_on_non_finite.stopped_at
        kept = (
            f"The last completed epoch ({checkpoint.epochs_done}) is kept in "
            f"{checkpoint.directory}."
            if checkpoint.epochs_done and chief
            else "No epoch completed, so there is no checkpoint to resume from."
        )
        raise NonFiniteLossError(
            f"The training loss became {stop_on_non_finite.value} at epoch {epoch + 1}, step "
            f"{step + 1}; stopped. Lower the learning rate (it is {settings.learning_rate}). "
            f"{kept}"
        )
    if checkpoint.epochs_done < settings.epochs:
        raise RuntimeError(f"Training stopped after {checkpoint.epochs_done} epochs.")

    if strategy is not None:
        model = single_device_copy(model, settings, steps_per_epoch)
    test = evaluate_model(model, *splits.test)
    history = checkpoint.history
    train_seconds = sum(history["train_seconds"])
    metrics = {
        "settings": settings.to_dict(),
        "history": history,
        "epochs": checkpoint.epochs_done,
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "per_class_accuracy": test["per_class_accuracy"],
        "confusion_matrix": test["confusion_matrix"],
        "train_samples": splits.train_samples,
        "validation_samples": splits.validation_samples,
        "test_samples": test["samples"],
        "parameters": model.count_params(),
        "train_seconds": train_seconds,
        "train_samples_per_second": splits.train_samples * checkpoint.epochs_done / train_seconds,
        "distribution": {
            "strategy": distribution,
            "replicas": strategy.num_replicas_in_sync if strategy else 1,
            "workers": parse_tf_config()[2] if distribution == "multi-worker" else 1,
        },
        "versions": versions(),
        **splits.notes,
    }
    if not chief:
        return metrics
    artifacts.save_model(model, output_dir / "model.keras")
    plots.plot_training_curves(history, output_dir / "training_curves.png")
    plots.plot_confusion_matrix(
        np.array(test["confusion_matrix"]),
        tuple(test["per_class_accuracy"]),
        output_dir / "confusion_matrix.png",
        title=f"{settings.preset}: test accuracy {test['accuracy']:.4f}",
    )
    artifacts.write_json(output_dir / METRICS_FILE, metrics)  # last: the run is finished
    checkpoint.clear()
    if show:
        print(f"Test loss {test['loss']:.4f}, test accuracy {test['accuracy']:.4f}")
        print(
            f"Wrote {output_dir}/model.keras, {METRICS_FILE}, training_curves.png, "
            "confusion_matrix.png"
        )
    return metrics


def _run_data(settings: RunSettings, data, data_dir, class_names) -> LoadedData:
    """The run's data set: `data` (checked like an `.npz` archive), else `settings.dataset`."""
    if data is None:
        return load_dataset(
            settings.dataset,
            data_dir,
            class_names=class_names,
            image_size=settings.image_size,
            color_mode=settings.color_mode,
            skip_bad_files=settings.skip_bad_files,
        )
    return from_arrays(data, class_names)


def _model_geometry(settings: RunSettings, loaded: LoadedData) -> dict:
    """`input_shape` and `classes` of the run's model: the data set's, unless overridden."""
    classes = settings.model_overrides.get("classes", loaded.classes)
    if isinstance(classes, int) and classes < loaded.classes:
        raise ValueError(
            f"`classes` must cover the data set's {loaded.classes} classes ({loaded.name}). "
            f"Received: classes={classes}"
        )
    return {"input_shape": loaded.image_shape, "classes": classes}


class _Splits(NamedTuple):
    """The datasets of a run: batches to fit, to validate on and to test on, and their sizes."""

    train: object
    validation: object
    test: tuple  # `evaluate_model`'s data arguments
    train_samples: int
    validation_samples: int
    notes: dict  # extra entries of metrics.json


def _training_splits(loaded: LoadedData, settings: RunSettings, epoch_counter) -> _Splits:
    """Arrays: the last `validation_split` of the training set validates, each epoch's order is
    drawn from (seed, epoch) so a resumed run sees the same order. Image folders: Keras' seeded
    split, streamed from disk."""
    batch, fraction = settings.batch_size, settings.validation_split
    if loaded.folder is not None:
        folder = loaded.folder
        train_samples, validation_samples = folder.split_sizes(fraction)
        if not train_samples or not validation_samples:
            raise ValueError(
                "`validation_split` must leave training and validation images: of the "
                f"{folder.train_files} training images it leaves {train_samples} for training "
                f"and {validation_samples} for validation. Received: validation_split={fraction!r}"
            )
        train, validation, test = folder_datasets(folder, batch, fraction, settings.seed)
        notes = {
            "test_split": "test" if folder.test_dir is not None else "validation",
            "skipped_files": list(folder.skipped),
        }
        return _Splits(train, validation, (test,), train_samples, validation_samples, notes)
    (x_train, y_train), (x_test, y_test) = loaded.train, loaded.test
    (x_fit, y_fit), (x_val, y_val) = split_validation(x_train, y_train, fraction)
    if not len(x_fit) or not len(x_val):
        raise ValueError(
            "`validation_split` must leave training and validation images: of the "
            f"{len(x_train)} training images it leaves {len(x_fit)} for training and "
            f"{len(x_val)} for validation. Received: validation_split={fraction!r}"
        )
    train = make_batches(
        x_fit, y_fit, batch, shuffle=True, seed=settings.seed, epoch=epoch_counter.epoch
    )
    validation = make_batches(x_val, y_val, batch)
    return _Splits(train, validation, (x_test, y_test), len(x_fit), len(x_val), {})


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite batch loss and remembers where.

    It is `async_safe`: on the backends whose `fit` dispatches batch callbacks to threads
    (JAX, PyTorch), checking a loss does not hold up the next training step. The check only
    records the bad step; training is stopped from `fit`'s own thread, at the next step or at
    the epoch's end (on JAX, `self.model` syncs the training state, which only that thread may
    do). Training may run a few steps past the bad one; `stopped_at` is still the first.
    """

    async_safe = True

    def __init__(self):
        super().__init__()
        self.stopped_at: tuple[int, int] | None = None
        self.value: float | None = None
        self._epoch = 0
        self._lock = threading.Lock()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        with self._lock:  # batches may be checked out of order
            if self.stopped_at is None or (self._epoch, batch) < self.stopped_at:
                self.stopped_at, self.value = (self._epoch, batch), float(loss)

    def on_train_batch_begin(self, batch, logs=None):
        if self.stopped_at is not None:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.stopped_at is not None:
            self.model.stop_training = True


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
