"""The settings of a training run, in one frozen object: `RunSettings`.

`lenet_blocks.training.train` and `lenet-blocks train` both take their settings from it; a
run's `metrics.json` and its checkpoint record `RunSettings.to_dict()`, and a run resumes or is
returned as finished only when the recorded settings equal the live ones after a JSON round trip
(`RunSettings.from_dict`), so `units=(120, 84)` is the same run as the recorded `[120, 84]`.
No Keras or TensorFlow is imported here.

Example:
>>> settings = RunSettings(preset="d2l", epochs=3)
>>> settings.optimizer, settings.learning_rate, settings.epochs
('sgd', 0.9, 3)
>>> RunSettings.from_dict(settings.to_dict()) == settings
True
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from numbers import Real

from lenet_blocks.choices import (
    AUGMENTATIONS,
    COLOR_MODES,
    LR_SCHEDULES,
    MIXINGS,
    OPTIMIZERS,
    check_choice,
)
from lenet_blocks.presets import get_preset

__all__ = ["RECORDED_DEFAULTS", "RunSettings"]

# Settings added after runs were first recorded: an older run used these values.
RECORDED_DEFAULTS = {
    "lr_schedule": "constant",
    "augmentation": "none",
    "dataset": "fashion_mnist",
    "image_size": None,
    "color_mode": None,
    "skip_bad_files": False,
    "label_smoothing": 0.0,
    "mixing": "none",
    "use_ema": False,
    "horizontal_flip": False,
    "random_erasing": 0.0,
}
_MAX_SEED = 2**32  # NumPy's `np.random.seed`, called by `keras.utils.set_random_seed`, wants less
# Fields whose `None` means "the preset's `training` entry (else RECORDED_DEFAULTS)".
_PRESET_FIELDS = (
    "epochs",
    "batch_size",
    "optimizer",
    "learning_rate",
    "lr_schedule",
    "augmentation",
    "label_smoothing",
    "mixing",
    "use_ema",
    "horizontal_flip",
    "random_erasing",
)


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Everything that decides what a training run computes; validated when made.

    The fields left as `None` take the preset's training defaults (the notebook's for the
    `notebook` preset: SGD lr 0.9, momentum 0, 5 epochs, batch 32).

    Args:
        preset: str. Model preset; its `training` entry gives the defaults.
        epochs: int. Epochs to train.
        batch_size: int. Samples per training step (the global batch when distributed).
        optimizer: str. One of `lenet_blocks.choices.OPTIMIZERS`.
        learning_rate: float. Initial learning rate, positive and finite.
        lr_schedule: str. `"constant"` or `"cosine"` (decay to 0 over the epochs).
        augmentation: str. `"none"`, `"translate"` or `"translate_zoom"`.
        momentum: float in `[0, 1)`. Momentum of SGD/RMSprop.
        seed: int in `[0, 2**32)`. Seeds weights, dropout, augmentation and the data order.
        validation_split: float in `(0, 1)`. Fraction of the training set held out (its end).
        model_overrides: dict of JSON-serializable `build_lenet` arguments, e.g.
            `{"activation": "relu", "units": (120, 84)}` (lists are kept as tuples).
        dataset: str. The data set (`lenet_blocks.data_sources.load_dataset`): `"fashion_mnist"`,
            `"mnist"`, `"cifar10"`, or the path of an IDX directory, an `.npz` archive or an
            image folder. The model's input shape and classes follow it unless
            `model_overrides` sets them.
        image_size: `(height, width)` or None. Image folders: resize every image to it.
        color_mode: `"grayscale"`, `"rgb"` or None (from the images). Image folders only.
        skip_bad_files: bool. Image folders: leave unreadable or non-image files out.
        label_smoothing: float in `[0, 1)`. Label smoothing of the cross-entropy; 0 for none.
        mixing: str. `"none"`, `"mixup"` or `"cutmix"` (`keras.layers.MixUp` / `CutMix`) of
            the training batches, with soft labels.
        use_ema: bool. The optimizer keeps an exponential moving average of the weights;
            validation and the final model use the averaged weights.
        horizontal_flip: bool. Training-only `RandomFlip("horizontal")` of the images.
        random_erasing: float in `[0, 1]`. Probability of training-only `RandomErasing`
            (cutout) per image; 0 for none.

    These five are the hyperparameters of the same names of the search
    (`lenet_blocks.tuning.HYPERPARAMETERS`), implemented by `lenet_blocks.regularization`.

    Raises:
        ValueError: a setting out of its range, naming it and the value received.

    Example:
    >>> RunSettings(epochs=0)
    Traceback (most recent call last):
    ...
    ValueError: `epochs` must be a positive int. Received: epochs=0
    """

    preset: str = "notebook"
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    lr_schedule: str | None = None
    augmentation: str | None = None
    momentum: float = 0.0
    seed: int = 0
    validation_split: float = 0.1
    model_overrides: dict | None = None
    dataset: str = "fashion_mnist"
    image_size: tuple[int, int] | None = None
    color_mode: str | None = None
    skip_bad_files: bool = False
    label_smoothing: float | None = None
    mixing: str | None = None
    use_ema: bool | None = None
    horizontal_flip: bool | None = None
    random_erasing: float | None = None

    def __post_init__(self):
        defaults = {**RECORDED_DEFAULTS, **get_preset(self.preset)["training"]}
        for name in _PRESET_FIELDS:
            if getattr(self, name) is None:
                object.__setattr__(self, name, defaults[name])
        for name in ("epochs", "batch_size"):
            _check_int(name, getattr(self, name), 1)
        _check_int("seed", self.seed, 0, _MAX_SEED)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_choice("augmentation", self.augmentation, AUGMENTATIONS)
        check_choice("mixing", self.mixing, MIXINGS)
        _check_real("learning_rate", self.learning_rate, "positive and finite", math.inf, False)
        _check_real("momentum", self.momentum, "in [0, 1)", 1.0, True)
        _check_real("validation_split", self.validation_split, "in (0, 1)", 1.0, False)
        _check_real("label_smoothing", self.label_smoothing, "a float in [0, 1)", 1.0, True)
        _check_real(
            "random_erasing", self.random_erasing, "a float in [0, 1]", 1.0, True, closed=True
        )
        for name in ("use_ema", "horizontal_flip", "skip_bad_files"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"`{name}` must be a bool. Received: {name}={getattr(self, name)!r}"
                )
        object.__setattr__(self, "model_overrides", _canonical_overrides(self.model_overrides))
        if isinstance(self.dataset, os.PathLike):
            object.__setattr__(self, "dataset", os.fspath(self.dataset))
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(
                f"`dataset` must be a data set name or path. Received: dataset={self.dataset!r}"
            )
        if self.image_size is not None:
            size = tuple(self.image_size) if isinstance(self.image_size, list | tuple) else ()
            if len(size) != 2:
                raise ValueError(
                    "`image_size` must be (height, width) or None. "
                    f"Received: image_size={self.image_size!r}"
                )
            for side in size:
                _check_int("image_size", side, 1)
            object.__setattr__(self, "image_size", size)
        if self.color_mode is not None:
            check_choice("color_mode", self.color_mode, COLOR_MODES)

    def to_dict(self) -> dict:
        """The settings as JSON values (tuples become lists), as a run's files record them.

        Example:
        >>> RunSettings(model_overrides={"units": (120, 84)}).to_dict()["model_overrides"]
        {'units': [120, 84]}
        """
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, recorded: dict) -> RunSettings:
        """The settings recorded by `to_dict`, by this or an older version of the package.

        Raises:
            ValueError: `recorded` is not a settings dict or holds a bad setting.

        Example:
        >>> RunSettings.from_dict({"preset": "notebook", "epochs": 2}).lr_schedule
        'constant'
        """
        if not isinstance(recorded, dict):
            raise ValueError(f"Settings must be a dict. Received: {recorded!r}")
        unknown = set(recorded) - {field.name for field in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"Unknown settings {sorted(unknown)}. Received: {recorded!r}")
        return cls(**{**RECORDED_DEFAULTS, **recorded})


def _check_int(name: str, value, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        rule = f"an int in [0, {high})" if low == 0 else "a positive int"
        raise ValueError(f"`{name}` must be {rule}. Received: {name}={value!r}")
    if high is not None and value >= high:
        raise ValueError(f"`{name}` must be an int in [0, {high}). Received: {name}={value!r}")


def _check_real(
    name: str, value, rule: str, high: float, zero_allowed: bool, closed: bool = False
) -> None:
    good = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if (
        not good
        or not (value >= 0 if zero_allowed else value > 0)
        or not (value <= high if closed else value < high)
    ):
        raise ValueError(f"`{name}` must be {rule}. Received: {name}={value!r}")


def _canonical_overrides(overrides) -> dict:
    """`overrides` as it reads back from JSON, with lists as tuples (what `build_lenet` takes)."""
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise ValueError(
            f"`model_overrides` must be a dict of `build_lenet` arguments. "
            f"Received: model_overrides={overrides!r}"
        )
    try:
        recorded = json.loads(json.dumps(overrides, allow_nan=False))
    except (TypeError, ValueError):
        raise ValueError(
            "`model_overrides` must hold JSON values only (numbers, strings, lists, None), so "
            f"that the run can be recorded. Received: model_overrides={overrides!r}"
        ) from None
    return {name: _tuples(value) for name, value in recorded.items()}


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    if isinstance(value, dict):
        return {name: _tuples(item) for name, item in value.items()}
    return value
