"""Training-time helpers shared by `training.train` and `tuning.HyperLeNet`.

- `augmented_lenet`: a `build_lenet` model preceded by training-only augmentation layers
  (`RandomTranslation`, optionally `RandomZoom`), in one functional model that saves and
  reloads like any other (the layers pass images through unchanged at inference).
- `CosineLearningRate`: a callback that decays the optimizer's learning rate from its initial
  value to 0 along a half cosine over the epochs of `fit`, batch by batch.

Example:
>>> model = augmented_lenet("translate", input_shape=(28, 28, 1), seed=0)
>>> [layer.name for layer in model.layers[:2]]
['images', 'augment_translation']
>>> model.count_params()
44426
"""

from __future__ import annotations

import math

import keras

from lenet_blocks.builder import build_lenet
from lenet_blocks.choices import AUGMENTATIONS, LR_SCHEDULES

__all__ = [
    "AUGMENTATIONS",
    "AUGMENTATION_FACTOR",
    "LR_SCHEDULES",
    "CosineLearningRate",
    "augmented_lenet",
    "check_augmentation",
    "check_lr_schedule",
    "schedule_callbacks",
]

AUGMENTATION_FACTOR = 0.1  # RandomTranslation / RandomZoom factor: at most 10% (2.8 px at 28x28)


def check_augmentation(augmentation) -> None:
    """Raises `ValueError` unless `augmentation` is one of `AUGMENTATIONS`."""
    if augmentation not in AUGMENTATIONS:
        raise ValueError(
            f"`augmentation` must be one of {AUGMENTATIONS}. "
            f"Received: augmentation={augmentation!r}"
        )


def check_lr_schedule(lr_schedule) -> None:
    """Raises `ValueError` unless `lr_schedule` is one of `LR_SCHEDULES`."""
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(
            f"`lr_schedule` must be one of {LR_SCHEDULES}. Received: lr_schedule={lr_schedule!r}"
        )


def augmented_lenet(
    augmentation: str,
    preset: str | None = None,
    *,
    input_shape: tuple[int, int, int],
    seed: int | None = None,
    **build_args,
) -> keras.Model:
    """`build_lenet(preset, **build_args)` preceded by training-only augmentation layers.

    Args:
        augmentation: str. `"none"` (just `build_lenet`), `"translate"` (`RandomTranslation` by
            up to `AUGMENTATION_FACTOR` of each side, zero fill) or `"translate_zoom"` (then
            also `RandomZoom` by up to the same factor).
        preset: str or None. `build_lenet`'s preset (its default when None).
        input_shape: tuple. The images' shape `(height, width, channels)`.
        seed: int or None. Seed of the augmentation layers.
        **build_args: the other `build_lenet` arguments.

    Example:
    >>> augmented_lenet("none", input_shape=(28, 28, 1)).count_params()
    44426
    """
    check_augmentation(augmentation)
    preset_args = () if preset is None else (preset,)
    if augmentation == "none":
        return build_lenet(*preset_args, input_shape=input_shape, **build_args)
    images = keras.Input(shape=input_shape, name="images")
    factor = AUGMENTATION_FACTOR
    x = keras.layers.RandomTranslation(
        factor, factor, fill_mode="constant", seed=seed, name="augment_translation"
    )(images)
    if augmentation == "translate_zoom":
        x = keras.layers.RandomZoom(factor, fill_mode="constant", seed=seed, name="augment_zoom")(x)
    return build_lenet(*preset_args, input_tensor=x, **build_args)


class CosineLearningRate(keras.callbacks.Callback):
    """Decays the learning rate along a half cosine, from `initial_learning_rate` to 0.

    At step `s` of epoch `e` (of `steps` per epoch) the rate is
    `initial_learning_rate * (1 + cos(pi * (e + s / steps) / epochs)) / 2`, where `epochs` is
    the `epochs` given to `fit` (or to this callback). The rate is a function of the epoch, so
    training resumed with `initial_epoch` continues the same curve.

    Args:
        initial_learning_rate: float. The rate at the start of epoch 0.
        epochs: int or None. Length of the schedule in epochs; default: `fit`'s `epochs`.

    Example:
    >>> schedule = CosineLearningRate(0.1, epochs=4)
    >>> [round(schedule.rate(epoch), 4) for epoch in range(5)]
    [0.1, 0.0854, 0.05, 0.0146, 0.0]
    """

    def __init__(self, initial_learning_rate: float, epochs: int | None = None):
        super().__init__()
        if not initial_learning_rate > 0:
            raise ValueError(
                "`initial_learning_rate` must be positive. "
                f"Received: initial_learning_rate={initial_learning_rate!r}"
            )
        if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
            raise ValueError(
                f"`epochs` must be a positive int or None. Received: epochs={epochs!r}"
            )
        self.initial_learning_rate = initial_learning_rate
        self.epochs = epochs
        self._epoch = 0

    def rate(self, progress_in_epochs: float) -> float:
        """The learning rate after `progress_in_epochs` epochs of training."""
        epochs = self.epochs or self.params["epochs"]
        fraction = min(1.0, progress_in_epochs / epochs)
        return self.initial_learning_rate * 0.5 * (1.0 + math.cos(math.pi * fraction))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self.model.optimizer.learning_rate = self.rate(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        steps = self.params.get("steps")
        if steps:
            self.model.optimizer.learning_rate = self.rate(self._epoch + batch / steps)


def schedule_callbacks(
    lr_schedule: str, learning_rate: float, epochs: int | None = None
) -> list[keras.callbacks.Callback]:
    """The callbacks that apply `lr_schedule` (`[]` for `"constant"`) over `epochs` (default:
    `fit`'s).

    Example:
    >>> [type(c).__name__ for c in schedule_callbacks("cosine", 0.01)]
    ['CosineLearningRate']
    """
    check_lr_schedule(lr_schedule)
    return [CosineLearningRate(learning_rate, epochs)] if lr_schedule == "cosine" else []
