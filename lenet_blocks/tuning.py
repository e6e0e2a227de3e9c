"""Hyperparameter search around the notebook's LeNet: `HyperLeNet`, tuners and the leaderboard.

`HyperLeNet` is a `keras_tuner.HyperModel` in the style of keras-tuner's `HyperResNet`. Its search
space is centred on the reference: every hyperparameter's default is the notebook's value, so
building from an empty `keras_tuner.HyperParameters()` gives exactly the notebook's model
(`build_lenet()`), optimizer (SGD, learning rate 0.9) and batch size (32). `HYPERPARAMETERS`
names and documents every dimension; docs/tuning.md has the same table.

The search runner is plain functions: `make_tuner` (random, bayesian or hyperband; objective
`val_accuracy`, max; resumes an existing project unless `overwrite=True`), `leaderboard` and
`write_leaderboard_csv`.

Example:
>>> import keras_tuner
>>> hp = keras_tuner.HyperParameters()
>>> model = HyperLeNet().build(hp)
>>> model.count_params(), type(model.optimizer).__name__, hp.get("batch_size")
(44426, 'SGD', 32)
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Mapping
from typing import NamedTuple

import keras
import keras_tuner
import tensorflow as tf

from lenet_blocks.artifacts import atomic_path
from lenet_blocks.compile import make_optimizer
from lenet_blocks.objectives import loss_and_metrics
from lenet_blocks.regularization import (
    AUGMENTATION_FACTOR,
    AUGMENTATIONS,
    LR_SCHEDULES,
    augmented_lenet,
    schedule_callbacks,
)

__all__ = [
    "HYPERPARAMETERS",
    "LEADERBOARD_COLUMNS",
    "TUNER_KINDS",
    "HyperLeNet",
    "Hyperparameter",
    "diff_from_reference",
    "leaderboard",
    "make_tuner",
    "reference_hyperparameters",
    "write_leaderboard_csv",
]

# The choices of each searched dimension. The first-listed default of each is the notebook's value.
BLOCKS = (2, 3)
FILTERS = {"filters_1": (6, 12, 24, 48), "filters_2": (16, 32, 64, 128), "filters_3": (32, 64, 128)}
KERNEL_SIZES = (3, 5, 7)
PADDINGS = ("valid", "same")
BLOCK_POOLINGS = ("max", "avg")
GLOBAL_POOLINGS = ("none", "avg")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "elu", "gelu")
CLASSIFIER_ACTIVATIONS = ("sigmoid", "softmax")
UNITS = {"units_1": (60, 120, 240, 480), "units_2": (42, 84, 168, 336)}
DROPOUTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
OPTIMIZERS = ("sgd", "adam", "adamw")
# name -> (optimizer it belongs to, min, max, default); log sampling.
LEARNING_RATES = {
    "sgd_learning_rate": ("sgd", 1e-3, 1.0, 0.9),
    "adam_learning_rate": ("adam", 1e-4, 1e-2, 1e-3),
    "adamw_learning_rate": ("adamw", 1e-4, 1e-2, 1e-3),
}
MOMENTUMS = (0.0, 0.5, 0.9, 0.99)
WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)
BATCH_SIZES = (16, 32, 64, 128, 256)

TUNER_KINDS = ("random", "bayesian", "hyperband")
OBJECTIVE = "val_accuracy"


class Hyperparameter(NamedTuple):
    """One dimension of `HyperLeNet`'s search space.

    Attributes:
        default: the notebook's (reference) value, which is also the keras-tuner default.
        search_space: the values searched, in words.
        active_when: `None` (always active) or `(parent name, parent values)`.
        description: what it changes.
    """

    default: object
    search_space: str
    active_when: tuple[str, tuple] | None
    description: str


def _listed(values) -> str:
    return ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values)


def _learning_rate(name: str) -> Hyperparameter:
    optimizer, low, high, default = LEARNING_RATES[name]
    return Hyperparameter(
        default,
        f"{low:g} to {high:g}, log scale",
        ("optimizer", (optimizer,)),
        f"Learning rate of {optimizer}.",
    )


HYPERPARAMETERS: dict[str, Hyperparameter] = {
    "blocks": Hyperparameter(
        2,
        _listed(BLOCKS),
        None,
        "Convolution blocks. A third block always pads 'same', so every point of the space "
        "fits 28x28 images.",
    ),
    "filters_1": Hyperparameter(6, _listed(FILTERS["filters_1"]), None, "Filters of block 1."),
    "filters_2": Hyperparameter(16, _listed(FILTERS["filters_2"]), None, "Filters of block 2."),
    "filters_3": Hyperparameter(
        64, _listed(FILTERS["filters_3"]), ("blocks", (3,)), "Filters of block 3."
    ),
    "kernel_size": Hyperparameter(5, _listed(KERNEL_SIZES), None, "Convolution kernel side."),
    "padding": Hyperparameter(
        "valid", _listed(PADDINGS), None, "Convolution padding of blocks 1 and 2."
    ),
    "block_pooling": Hyperparameter(
        "max", _listed(BLOCK_POOLINGS), None, "Subsampling in each block (2x2, stride 2)."
    ),
    "global_pooling": Hyperparameter(
        "none",
        _listed(GLOBAL_POOLINGS),
        None,
        "Global pooling of the last block's feature maps before the dense head (`'avg'`: "
        "`build_lenet(pooling='avg')`, the head then sees one value per filter).",
    ),
    "batch_norm": Hyperparameter(
        False, "True, False", None, "Batch normalization after each convolution."
    ),
    "activation": Hyperparameter(
        "sigmoid", _listed(ACTIVATIONS), None, "Activation of every hidden layer."
    ),
    "classifier_activation": Hyperparameter(
        "sigmoid",
        _listed(CLASSIFIER_ACTIVATIONS),
        None,
        "Activation of the output layer (the loss normalizes sigmoid outputs).",
    ),
    "units_1": Hyperparameter(120, _listed(UNITS["units_1"]), None, "Units of dense layer 1."),
    "units_2": Hyperparameter(84, _listed(UNITS["units_2"]), None, "Units of dense layer 2."),
    "dropout": Hyperparameter(
        0.0, _listed(DROPOUTS), None, "Dropout rate after each hidden dense layer."
    ),
    "include_rescaling": Hyperparameter(
        False, "True, False", None, "Scale pixels by 1/255 in the model (the notebook does not)."
    ),
    "augmentation": Hyperparameter(
        "none",
        _listed(AUGMENTATIONS),
        None,
        f"Training-only RandomTranslation (and RandomZoom) by up to {AUGMENTATION_FACTOR:g} "
        "of the image side, zero fill, before the LeNet.",
    ),
    "optimizer": Hyperparameter("sgd", _listed(OPTIMIZERS), None, "Keras optimizer."),
    **{name: _learning_rate(name) for name in LEARNING_RATES},
    "lr_schedule": Hyperparameter(
        "constant",
        _listed(LR_SCHEDULES),
        None,
        "Learning rate over training: constant, or cosine decay to 0 over the epochs of `fit` "
        "(`lenet_blocks.regularization.CosineLearningRate`).",
    ),
    "momentum": Hyperparameter(0.0, _listed(MOMENTUMS), ("optimizer", ("sgd",)), "SGD momentum."),
    "nesterov": Hyperparameter(
        False, "True, False", ("optimizer", ("sgd",)), "SGD Nesterov momentum."
    ),
    "weight_decay": Hyperparameter(
        0.0,
        _listed(WEIGHT_DECAYS),
        None,
        "Decoupled weight decay of all weights (the optimizer's `weight_decay`, scaled by the "
        "learning rate); 0 is none. adamw with 0 is adam.",
    ),
    "batch_size": Hyperparameter(
        32, _listed(BATCH_SIZES), None, "Training batch size (set in `HyperLeNet.fit`)."
    ),
}

_CATEGORICAL = {
    "blocks": BLOCKS,
    "padding": PADDINGS,
    "block_pooling": BLOCK_POOLINGS,
    "global_pooling": GLOBAL_POOLINGS,
    "augmentation": AUGMENTATIONS,
    "optimizer": OPTIMIZERS,
    "lr_schedule": LR_SCHEDULES,
}
_BOOLEAN = ("batch_norm", "include_rescaling", "nesterov")
_POSITIVE_INT = (
    "filters_1",
    "filters_2",
    "filters_3",
    "kernel_size",
    "units_1",
    "units_2",
    "batch_size",
)


def reference_hyperparameters() -> dict:
    """The notebook's value of every hyperparameter active in the reference configuration.

    These are the values `HyperLeNet().build(keras_tuner.HyperParameters())` picks.

    Example:
    >>> reference = reference_hyperparameters()
    >>> reference["optimizer"], reference["sgd_learning_rate"], reference["batch_size"]
    ('sgd', 0.9, 32)
    >>> "adam_learning_rate" in reference
    False
    """
    reference = {}
    for name, spec in HYPERPARAMETERS.items():
        if spec.active_when is None or reference.get(spec.active_when[0]) in spec.active_when[1]:
            reference[name] = spec.default
    return reference


def diff_from_reference(values: Mapping | keras_tuner.HyperParameters) -> dict:
    """The hyperparameters whose value differs from the notebook's, in search-space order.

    A name counts as different when its value is not the reference value, or when it is not
    active in the reference at all (e.g. `adam_learning_rate`, `filters_3`). keras-tuner's own
    bookkeeping entries (`tuner/epochs`, ...) are left out.

    Args:
        values: a dict of hyperparameter values (`HyperParameters.values`) or a
            `keras_tuner.HyperParameters`.

    Example:
    >>> diff_from_reference({"optimizer": "adam", "adam_learning_rate": 0.001, "blocks": 2})
    {'optimizer': 'adam', 'adam_learning_rate': 0.001}
    """
    if isinstance(values, keras_tuner.HyperParameters):
        values = values.values
    reference = reference_hyperparameters()
    order = {name: index for index, name in enumerate(HYPERPARAMETERS)}
    changed = {}
    for name in sorted(values, key=lambda n: (order.get(n, len(order)), n)):
        if name.startswith("tuner/"):
            continue
        value = values[name]
        if name not in reference or not _same_value(value, reference[name]):
            changed[name] = value
    return changed


def _same_value(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


class HyperLeNet(keras_tuner.HyperModel):
    """A LeNet hypermodel whose defaults are the notebook's LeNet and training setup.

    `build(hp)` returns a compiled `build_lenet` model (preceded by augmentation layers when
    `augmentation` is not `"none"`), compiled with the optimizer the hyperparameters pick and
    the loss and metric of `lenet_blocks.objectives.loss_and_metrics`. `fit(hp, model, ...)`
    trains it with the `batch_size` hyperparameter. See `HYPERPARAMETERS` for the space.

    Args:
        input_shape: `(height, width, channels)` of the images; all of the search space fits
            images of at least 26x26.
        classes: int. Number of classes.
        fixed: optional dict of hyperparameter name -> value to hold fixed (registered as
            `hp.Fixed`), e.g. `{"optimizer": "adam", "batch_size": 128}`.
        max_params: optional int. Parameter budget (`model.count_params()`, non-trainable
            included); `fit` rejects a larger model with `keras_tuner.errors.FailedTrialError`
            before training, so the tuner records the trial as failed.
        seed: optional int. If set, `build` calls `keras.utils.set_random_seed(seed)` first, so
            that initial weights, augmentation and shuffling are reproducible per trial.
        **kwargs: `keras_tuner.HyperModel` arguments (`name`, `tunable`).

    Raises:
        ValueError: for an invalid argument, an unknown name in `fixed`, or a fixed value of
            the wrong kind.

    Example:
    >>> import keras_tuner
    >>> hp = keras_tuner.HyperParameters()
    >>> model = HyperLeNet(fixed={"activation": "relu", "optimizer": "adam"}).build(hp)
    >>> model.get_layer("block1").activation, type(model.optimizer).__name__
    ('relu', 'Adam')
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int] = (28, 28, 1),
        classes: int = 10,
        *,
        fixed: Mapping[str, object] | None = None,
        max_params: int | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        shape = tuple(input_shape) if isinstance(input_shape, list | tuple) else None
        if shape is None or len(shape) != 3 or not all(_is_positive_int(d) for d in shape):
            raise ValueError(
                "`input_shape` must be a tuple (height, width, channels) of positive ints. "
                f"Received: input_shape={input_shape!r}"
            )
        if not _is_positive_int(classes):
            raise ValueError(f"`classes` must be a positive int. Received: classes={classes!r}")
        if max_params is not None and not _is_positive_int(max_params):
            raise ValueError(
                f"`max_params` must be a positive int or None. Received: max_params={max_params!r}"
            )
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"`seed` must be an int or None. Received: seed={seed!r}")
        self.input_shape = shape
        self.classes = classes
        self.fixed = _validate_fixed(fixed)
        self.max_params = max_params
        self.seed = seed

    # -- hyperparameter registration -------------------------------------------------------

    def _choice(self, hp, name, values):
        if name in self.fixed:
            return hp.Fixed(name, self.fixed[name])
        return hp.Choice(name, list(values), default=HYPERPARAMETERS[name].default)

    def _boolean(self, hp, name):
        if name in self.fixed:
            return hp.Fixed(name, self.fixed[name])
        return hp.Boolean(name, default=HYPERPARAMETERS[name].default)

    def _learning_rates(self, hp) -> dict:
        rates = {}
        for name, (optimizer, low, high, default) in LEARNING_RATES.items():
            with hp.conditional_scope("optimizer", [optimizer]):
                if name in self.fixed:
                    rates[optimizer] = hp.Fixed(name, self.fixed[name])
                else:
                    rates[optimizer] = hp.Float(name, low, high, sampling="log", default=default)
        return rates

    def batch_size(self, hp) -> int:
        """The `batch_size` hyperparameter (registering it in `hp` if needed)."""
        return self._choice(hp, "batch_size", BATCH_SIZES)

    # -- build -----------------------------------------------------------------------------

    def build(self, hp):
        """Builds and compiles the LeNet that `hp` describes (defaults: the notebook's)."""
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)
        blocks = self._choice(hp, "blocks", BLOCKS)
        filters = [self._choice(hp, name, FILTERS[name]) for name in ("filters_1", "filters_2")]
        with hp.conditional_scope("blocks", [3]):
            filters_3 = self._choice(hp, "filters_3", FILTERS["filters_3"])
        kernel_size = self._choice(hp, "kernel_size", KERNEL_SIZES)
        padding = self._choice(hp, "padding", PADDINGS)
        block_pooling = self._choice(hp, "block_pooling", BLOCK_POOLINGS)
        global_pooling = self._choice(hp, "global_pooling", GLOBAL_POOLINGS)
        batch_norm = self._boolean(hp, "batch_norm")
        activation = self._choice(hp, "activation", ACTIVATIONS)
        classifier_activation = self._choice(hp, "classifier_activation", CLASSIFIER_ACTIVATIONS)
        units = [self._choice(hp, name, UNITS[name]) for name in UNITS]
        dropout = self._choice(hp, "dropout", DROPOUTS)
        include_rescaling = self._boolean(hp, "include_rescaling")
        augmentation = self._choice(hp, "augmentation", AUGMENTATIONS)
        optimizer_name = self._choice(hp, "optimizer", OPTIMIZERS)
        learning_rates = self._learning_rates(hp)
        self._choice(hp, "lr_schedule", LR_SCHEDULES)  # applied by `fit`
        with hp.conditional_scope("optimizer", ["sgd"]):
            momentum = self._choice(hp, "momentum", MOMENTUMS)
            nesterov = self._boolean(hp, "nesterov")
        weight_decay = self._choice(hp, "weight_decay", WEIGHT_DECAYS)
        self.batch_size(hp)  # registered here too, so the whole space is known before `fit`

        paddings = [padding, padding]
        if blocks == 3:
            filters.append(filters_3)
            paddings.append("same")
        architecture = {
            "classes": self.classes,
            "activation": activation,
            "classifier_activation": classifier_activation,
            "filters": tuple(filters),
            "kernel_size": kernel_size,
            "padding": tuple(paddings),
            "block_pooling": block_pooling,
            "pooling": None if global_pooling == "none" else global_pooling,
            "units": tuple(units),
            "dropout": dropout,
            "batch_norm": batch_norm,
            "include_rescaling": include_rescaling,
        }
        model = augmented_lenet(
            augmentation, input_shape=self.input_shape, seed=self.seed, **architecture
        )

        optimizer = make_optimizer(
            optimizer_name,
            learning_rates[optimizer_name],
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
        )
        loss, metrics = loss_and_metrics(model)
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
        # Built now, so that a checkpoint restores the optimizer state too (Hyperband continues
        # trials from their checkpoints; an unbuilt optimizer skips the saved variables).
        optimizer.build(model.trainable_variables)
        return model

    # -- budget and fit --------------------------------------------------------------------

    def check_budget(self, model: keras.Model) -> None:
        """Raises `keras_tuner.errors.FailedTrialError` if `model` is over `max_params`.

        Example:
        >>> from lenet_blocks import build_lenet
        >>> try:
        ...     HyperLeNet(max_params=1000).check_budget(build_lenet())
        ... except keras_tuner.errors.FailedTrialError as error:
        ...     print(error)
        The model has 44,426 parameters, over the budget max_params=1,000;
        the trial is skipped before training.
        """
        if self.max_params is None:
            return
        count = model.count_params()
        if count > self.max_params:
            raise keras_tuner.errors.FailedTrialError(
                f"The model has {count:,} parameters, over the budget "
                f"max_params={self.max_params:,}; the trial is skipped before training."
            )

    def fit(self, hp, model, x=None, y=None, **kwargs):
        """Trains `model` with the `batch_size` hyperparameter; returns the `History`.

        Checks the parameter budget first (`check_budget`). Every keyword argument, the
        tuner's `callbacks` included, goes to `model.fit`; with `lr_schedule="cosine"`, a
        `CosineLearningRate` callback is added after them.

        Data: NumPy arrays `x, y` (and `validation_data=(x_val, y_val)`) are fed with
        `batch_size=` the hyperparameter; images of shape `(n, height, width)` get a channel
        axis when the model takes one channel. An *unbatched* `tf.data.Dataset` of
        `(image, label)` is batched here (and so is an unbatched validation dataset); an
        already batched one cannot be rebatched and raises `keras_tuner.errors.FatalValueError`
        (hold the batch size with `fixed={"batch_size": n}` and pass unbatched data instead).

        The returned `History` has two extra entries per epoch, recorded by the tuner with the
        trial's metrics: `num_params` (`model.count_params()`) and `epochs_trained` (epochs run
        by this call).

        Raises:
            keras_tuner.errors.FailedTrialError: if the model is over `max_params`.
            keras_tuner.errors.FatalValueError: for `batch_size=` in `kwargs`, or a batched or
                misshapen dataset.
        """
        self.check_budget(model)
        if "batch_size" in kwargs:
            raise keras_tuner.errors.FatalValueError(
                "`batch_size` is a hyperparameter of HyperLeNet; hold it with "
                "`HyperLeNet(fixed={'batch_size': n})` instead of passing it to `search`/`fit`. "
                f"Received: batch_size={kwargs['batch_size']!r}"
            )
        batch_size = self.batch_size(hp)
        validation_data = kwargs.pop("validation_data", None)
        if isinstance(x, tf.data.Dataset):
            if y is not None:
                raise keras_tuner.errors.FatalValueError(
                    "`y` must be None when `x` is a tf.data.Dataset of (image, label) pairs."
                )
            x = self._batched(x, batch_size, "x")
            # Keras cannot shuffle a dataset (and warns if asked to): that is the dataset's job.
            kwargs.setdefault("shuffle", False)
        else:
            x = self._with_channel_axis(x)
            kwargs["batch_size"] = batch_size
        if isinstance(validation_data, tf.data.Dataset):
            if self._is_batched(validation_data, "validation_data") is False:
                validation_data = validation_data.batch(batch_size)
        elif isinstance(validation_data, tuple | list) and validation_data:
            validation_data = (
                self._with_channel_axis(validation_data[0]),
                *validation_data[1:],
            )
        if validation_data is not None:
            kwargs["validation_data"] = validation_data
        optimizer_name = hp.get("optimizer")
        kwargs["callbacks"] = [
            *(kwargs.get("callbacks") or []),
            *schedule_callbacks(hp.get("lr_schedule"), hp.get(f"{optimizer_name}_learning_rate")),
        ]
        history = model.fit(x, y, **kwargs)
        if isinstance(history, keras.callbacks.History) and history.history:
            epochs = len(next(iter(history.history.values())))
            history.history["num_params"] = [model.count_params()] * epochs
            history.history["epochs_trained"] = [epochs] * epochs
        return history

    def _is_batched(self, dataset: tf.data.Dataset, arg: str) -> bool:
        images = tf.nest.flatten(dataset.element_spec)[0]
        rank = images.shape.rank
        if rank == len(self.input_shape):
            return False
        if rank == len(self.input_shape) + 1:
            return True
        raise keras_tuner.errors.FatalValueError(
            f"`{arg}` must yield (image, label) with images of shape {self.input_shape}. "
            f"Received: {arg} with element_spec={dataset.element_spec}"
        )

    def _batched(self, dataset: tf.data.Dataset, batch_size: int, arg: str) -> tf.data.Dataset:
        if self._is_batched(dataset, arg):
            raise keras_tuner.errors.FatalValueError(
                f"`{arg}` is already batched, so HyperLeNet cannot apply its `batch_size` "
                "hyperparameter. Pass NumPy arrays or an unbatched dataset. "
                f"Received: {arg} with element_spec={dataset.element_spec}"
            )
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def _with_channel_axis(self, images):
        shape = getattr(images, "shape", None)
        if shape is not None and len(shape) == len(self.input_shape) and self.input_shape[-1] == 1:
            return images[..., None]
        return images


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _validate_fixed(fixed) -> dict:
    if fixed is None:
        return {}
    if not isinstance(fixed, Mapping):
        raise ValueError(
            f"`fixed` must be a dict of hyperparameter name -> value. Received: fixed={fixed!r}"
        )
    for name, value in fixed.items():
        if name not in HYPERPARAMETERS:
            raise ValueError(
                f"`fixed` names must be HyperLeNet hyperparameters, one of "
                f"{list(HYPERPARAMETERS)}. Received: fixed={{{name!r}: {value!r}}}"
            )
        rule = None
        if name in _CATEGORICAL:
            if value not in _CATEGORICAL[name] or isinstance(value, bool):
                rule = f"one of {_CATEGORICAL[name]}"
        elif name in _BOOLEAN:
            if not isinstance(value, bool):
                rule = "a bool"
        elif name in _POSITIVE_INT:
            if not _is_positive_int(value):
                rule = "a positive int"
        elif name in ("activation", "classifier_activation"):
            try:
                valid = isinstance(value, str) and keras.activations.get(value) is not None
            except ValueError:
                valid = False
            if not valid:
                rule = "the name of a Keras activation"
        elif name == "dropout":
            if not _is_number(value) or not 0 <= value < 1:
                rule = "a float in [0, 1)"
        elif name == "momentum":
            if not _is_number(value) or not 0 <= value <= 1:
                rule = "a float in [0, 1]"
        elif name == "weight_decay":
            if not _is_number(value) or value < 0:
                rule = "a float >= 0"
        elif not _is_number(value) or value <= 0:  # learning rates
            rule = "a float > 0"
        if rule is not None:
            raise ValueError(
                f"`fixed[{name!r}]` must be {rule}. Received: fixed={{{name!r}: {value!r}}}"
            )
    return dict(fixed)


# -- search runner --------------------------------------------------------------------------


def make_tuner(
    kind: str,
    hypermodel: keras_tuner.HyperModel,
    directory,
    project_name: str,
    max_trials: int | None = None,
    executions_per_trial: int = 1,
    max_epochs: int | None = None,
    seed: int | None = None,
    overwrite: bool = False,
    **tuner_kwargs,
) -> keras_tuner.Tuner:
    """A keras-tuner `Tuner` maximizing `val_accuracy`, resuming `directory/project_name`.

    With `overwrite=False` (the default) and an existing project, the tuner reloads it:
    completed trials are kept and not rerun, a trial that was running when the process
    stopped is run again, and `search` runs trials until the project holds `max_trials`
    (so raising `max_trials` continues a finished search).

    Args:
        kind: `"random"`, `"bayesian"` or `"hyperband"`.
        hypermodel: the `HyperModel`, e.g. `HyperLeNet()`.
        directory: folder of the tuner's projects.
        project_name: sub-folder of this search.
        max_trials: int. Trials in total (failed ones included); required for random and
            bayesian. For hyperband, an optional cap on its schedule.
        executions_per_trial: int. Trainings per trial, their objective averaged.
        max_epochs: int. Hyperband's most epochs for one model (required for hyperband). Other
            kinds train for the `epochs` given to `search`.
        seed: optional int seeding the oracle's choices.
        overwrite: bool. Whether to delete an existing project and start afresh.
        **tuner_kwargs: passed to the keras-tuner class (`factor`, `num_initial_points`,
            `max_consecutive_failed_trials`, `distribution_strategy`, ...).

    Returns:
        A `keras_tuner.RandomSearch`, `BayesianOptimization` or `Hyperband`.

    Raises:
        ValueError: for an unknown `kind` or a missing or invalid count.
    """
    if kind not in TUNER_KINDS:
        raise ValueError(f"`kind` must be one of {TUNER_KINDS}. Received: kind={kind!r}")
    if kind == "hyperband":
        if not _is_positive_int(max_epochs):
            raise ValueError(
                "`max_epochs` must be a positive int for kind='hyperband'. "
                f"Received: max_epochs={max_epochs!r}"
            )
        if max_trials is not None and not _is_positive_int(max_trials):
            raise ValueError(
                f"`max_trials` must be a positive int or None. Received: max_trials={max_trials!r}"
            )
    elif not _is_positive_int(max_trials):
        raise ValueError(
            f"`max_trials` must be a positive int for kind={kind!r}. "
            f"Received: max_trials={max_trials!r}"
        )
    if not _is_positive_int(executions_per_trial):
        raise ValueError(
            "`executions_per_trial` must be a positive int. "
            f"Received: executions_per_trial={executions_per_trial!r}"
        )
    common = {
        "hypermodel": hypermodel,
        "objective": keras_tuner.Objective(OBJECTIVE, direction="max"),
        "executions_per_trial": executions_per_trial,
        "seed": seed,
        "directory": os.fspath(directory),
        "project_name": project_name,
        "overwrite": overwrite,
        **tuner_kwargs,
    }
    if kind == "random":
        return keras_tuner.RandomSearch(max_trials=max_trials, **common)
    if kind == "bayesian":
        return keras_tuner.BayesianOptimization(max_trials=max_trials, **common)
    tuner = keras_tuner.Hyperband(max_epochs=max_epochs, **common)
    # Hyperband has no `max_trials` argument, but its oracle honours the attribute (it is not
    # part of the saved state, so it is set again on every resume).
    tuner.oracle.max_trials = max_trials
    return tuner


LEADERBOARD_COLUMNS = (
    "rank",
    "trial_id",
    "status",
    "val_accuracy",
    "num_params",
    "epochs",
    "changed_hyperparameters",
    "message",
)


def leaderboard(tuner: keras_tuner.Tuner) -> list[dict]:
    """One row per trial of `tuner`, best `val_accuracy` first.

    Completed trials come first, ranked 1, 2, ... by their best `val_accuracy`; the others
    (failed, invalid, running) follow by trial id with `rank` `None`.

    Each row has `LEADERBOARD_COLUMNS`: `rank`, `trial_id`, `status`, `val_accuracy` (best
    epoch), `num_params`, `epochs` (epochs of training the weights received; for Hyperband
    this includes the epochs of the trial it continued), `changed_hyperparameters`
    (`diff_from_reference` of the trial's values) and `message` (last line of the error of a
    trial that did not complete, else `None`). `num_params` of a trial that did not train is
    counted by rebuilding its model; it is `None` if that fails.
    """
    rows = []
    for trial in tuner.oracle.trials.values():
        metrics = trial.metrics
        completed = trial.status == "COMPLETED"
        values = trial.hyperparameters.values
        val_accuracy = metrics.get_best_value(OBJECTIVE) if metrics.exists(OBJECTIVE) else None
        num_params = (
            int(metrics.get_last_value("num_params")) if metrics.exists("num_params") else None
        )
        if num_params is None:
            num_params = _count_params(tuner, trial)
        epochs = None
        if metrics.exists("epochs_trained"):
            trained = round(metrics.get_last_value("epochs_trained"))
            epochs = int(values.get("tuner/initial_epoch", 0)) + trained
        rows.append(
            {
                "rank": None,
                "trial_id": trial.trial_id,
                "status": trial.status,
                "val_accuracy": None if val_accuracy is None else float(val_accuracy),
                "num_params": num_params,
                "epochs": epochs,
                "changed_hyperparameters": diff_from_reference(values),
                "message": None if completed else last_error_line(trial.message),
            }
        )
    ranked = sorted(
        (row for row in rows if row["status"] == "COMPLETED" and row["val_accuracy"] is not None),
        key=lambda row: (-row["val_accuracy"], row["trial_id"]),
    )
    for rank, row in enumerate(ranked, start=1):
        row["rank"] = rank
    others = sorted((row for row in rows if row["rank"] is None), key=lambda row: row["trial_id"])
    return ranked + others


def _count_params(tuner, trial) -> int | None:
    if tuner.hypermodel is None:
        return None
    try:
        return int(tuner.hypermodel.build(trial.hyperparameters.copy()).count_params())
    except Exception:  # a model that cannot be built has no count to show
        return None


def last_error_line(message) -> str | None:
    if not message:
        return None
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    if not lines:
        return None
    # "keras_tuner.src.errors.FailedTrialError: ..." -> "FailedTrialError: ..."
    return re.sub(r"^(?:\w+\.)+(?=\w+: )", "", lines[-1])


def write_leaderboard_csv(rows: list[dict], path) -> None:
    """Writes leaderboard `rows` to a CSV file atomically (temporary file + `os.replace`).

    Columns are `LEADERBOARD_COLUMNS`; `changed_hyperparameters` is written as JSON and `None`
    as an empty cell. The parent folder is created if needed.

    Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "leaderboard.csv"
    >>> write_leaderboard_csv([{"rank": 1, "trial_id": "0", "status": "COMPLETED",
    ...     "val_accuracy": 0.9, "num_params": 44426, "epochs": 5,
    ...     "changed_hyperparameters": {"optimizer": "adam"}, "message": None}], path)
    >>> print(path.read_text().splitlines()[1])
    1,0,COMPLETED,0.9,44426,5,"{""optimizer"": ""adam""}",
    """
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=LEADERBOARD_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            cells = {key: row.get(key) for key in LEADERBOARD_COLUMNS}
            cells["changed_hyperparameters"] = json.dumps(
                cells["changed_hyperparameters"] or {}, sort_keys=True
            )
            writer.writerow({k: "" if v is None else v for k, v in cells.items()})


def _search_space_markdown() -> str:
    """The search-space table of docs/tuning.md, generated from `HYPERPARAMETERS`."""
    lines = [
        "| name | default (reference) | searched values | active when | description |",
        "|---|---|---|---|---|",
    ]
    for name, spec in HYPERPARAMETERS.items():
        when = "always"
        if spec.active_when is not None:
            parent, parent_values = spec.active_when
            when = f"`{parent}` is " + " or ".join(f"`{v!r}`" for v in parent_values)
        lines.append(
            f"| `{name}` | `{spec.default!r}` | {spec.search_space} | {when} | {spec.description} |"
        )
    return "\n".join(lines)
