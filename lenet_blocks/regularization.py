"""Training-time recipes shared by `training.train`, `tuning.HyperLeNet` and the benchmarks.

- `augmented_lenet`: a `build_lenet` model preceded by training-only augmentation layers
  (`RandomFlip`, `RandomTranslation`, `RandomZoom`, `RandomErasing`), in one functional model
  that saves and reloads like any other (the layers pass images through unchanged at inference).
- `learning_rate_schedule`: the learning rate of a named schedule as a Keras
  `LearningRateSchedule` of the optimizer's step (`optimizer.iterations`), so a run restored
  from a checkpoint (which saves the step) continues the same curve.
- `mixing_layer` / `mix_batches`: MixUp or CutMix (`keras.layers.MixUp`, `CutMix`) of the
  training batches in the `tf.data` pipeline; labels become soft one-hot vectors, which the
  loss of `objectives.loss_and_metrics(model, soft_labels=True)` accepts.
- `mix_and_average`: what `fit` needs for the `mixing` and `use_ema` recipes, the same for
  `training.train` and `tuning.HyperLeNet.fit`: the mixed training batches and the callbacks
  (`EpochSeed`, Keras' `SwapEMAWeights`).
- `TorchEpochSeed`: on PyTorch, Keras' `Dropout` layers built without a seed draw from
  torch's global generator, which no checkpoint holds; this callback seeds it from
  `(seed, epoch)` at every epoch, so a resumed run drops what the run never stopped dropped.

Example:
>>> model = augmented_lenet("translate", input_shape=(28, 28, 1), seed=0)
>>> [layer.name for layer in model.layers[:2]]
['images', 'augment_translation']
>>> model.count_params()
44426
"""

from __future__ import annotations

import keras
import numpy as np

from lenet_blocks.builder import build_lenet
from lenet_blocks.choices import AUGMENTATIONS, LR_SCHEDULES, MIXINGS, check_choice
from lenet_blocks.validation import is_number, is_positive_int

__all__ = [
    "AUGMENTATIONS",
    "AUGMENTATION_FACTOR",
    "LR_SCHEDULES",
    "MIXINGS",
    "EpochSeed",
    "TorchEpochSeed",
    "augmented_lenet",
    "check_augmentation",
    "check_lr_schedule",
    "learning_rate_schedule",
    "mix_and_average",
    "mix_batches",
    "mixing_layer",
]

AUGMENTATION_FACTOR = 0.1  # RandomTranslation / RandomZoom factor: at most 10% (2.8 px at 28x28)
WARMUP_FRACTION = 0.05  # "warmup_cosine": linear warm-up from 0 over this fraction of the steps
ONE_CYCLE_PEAK = 0.3  # "one_cycle": the fraction of the steps spent rising to the peak rate
ONE_CYCLE_START = 1 / 25  # "one_cycle" starts at this fraction of the peak rate


def check_augmentation(augmentation) -> None:
    """Raises `ValueError` unless `augmentation` is one of `AUGMENTATIONS`."""
    check_choice("augmentation", augmentation, AUGMENTATIONS)


def check_lr_schedule(lr_schedule) -> None:
    """Raises `ValueError` unless `lr_schedule` is one of `LR_SCHEDULES`."""
    check_choice("lr_schedule", lr_schedule, LR_SCHEDULES)


def augmented_lenet(
    augmentation: str,
    preset: str | None = None,
    *,
    input_shape: tuple[int, int, int],
    seed: int | None = None,
    horizontal_flip: bool = False,
    random_erasing: float = 0.0,
    **build_args,
) -> keras.Model:
    """`build_lenet(preset, **build_args)` preceded by training-only augmentation layers.

    The layers run in this order: flip, translation, zoom, erasing. With the defaults
    (`"none"`, no flip, no erasing) this is `build_lenet` itself.

    Args:
        augmentation: str. `"none"`, `"translate"` (`RandomTranslation` by up to
            `AUGMENTATION_FACTOR` of each side, zero fill: pad-and-crop) or `"translate_zoom"`
            (then also `RandomZoom` by up to the same factor).
        preset: str or None. `build_lenet`'s preset (its default when None).
        input_shape: tuple. The images' shape `(height, width, channels)`.
        seed: int or None. Seed of the augmentation layers.
        horizontal_flip: bool. `RandomFlip("horizontal")` first (label-preserving for
            Fashion-MNIST's classes).
        random_erasing: float in [0, 1]. Probability of `RandomErasing` (cutout) per image,
            erasing a patch of 2-33% of the image with noise in the 0-255 range; 0 for none.
        **build_args: the other `build_lenet` arguments.

    Raises:
        ValueError: for an unknown `augmentation` or a bad `horizontal_flip`/`random_erasing`.

    Example:
    >>> model = augmented_lenet("none", input_shape=(28, 28, 1), horizontal_flip=True)
    >>> model.layers[1].name, model.count_params()
    ('augment_flip', 44426)
    """
    check_augmentation(augmentation)
    if not isinstance(horizontal_flip, bool):
        raise ValueError(
            f"`horizontal_flip` must be a bool. Received: horizontal_flip={horizontal_flip!r}"
        )
    if not is_number(random_erasing) or not 0 <= random_erasing <= 1:
        raise ValueError(
            "`random_erasing` must be a float in [0, 1]. "
            f"Received: random_erasing={random_erasing!r}"
        )
    preset_args = () if preset is None else (preset,)
    factor = AUGMENTATION_FACTOR
    layers = []
    if horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed, name="augment_flip"))
    if augmentation != "none":
        layers.append(
            keras.layers.RandomTranslation(
                factor, factor, fill_mode="constant", seed=seed, name="augment_translation"
            )
        )
    if augmentation == "translate_zoom":
        layers.append(
            keras.layers.RandomZoom(factor, fill_mode="constant", seed=seed, name="augment_zoom")
        )
    if random_erasing:
        layers.append(
            keras.layers.RandomErasing(
                random_erasing, value_range=(0, 255), seed=seed, name="augment_erasing"
            )
        )
    if not layers:
        return build_lenet(*preset_args, input_shape=input_shape, **build_args)
    x = keras.Input(shape=input_shape, name="images")
    for layer in layers:
        x = layer(x)
    return build_lenet(*preset_args, input_tensor=x, **build_args)


def learning_rate_schedule(
    lr_schedule: str, learning_rate: float, total_steps: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate of `lr_schedule` over `total_steps` optimizer steps.

    - `"constant"`: `learning_rate` itself (a float);
    - `"cosine"`: half-cosine decay from `learning_rate` to 0 (`CosineDecay`); at step `k` the
      rate is `learning_rate * (1 + cos(pi * k / total_steps)) / 2`;
    - `"warmup_cosine"`: linear warm-up from 0 over the first `WARMUP_FRACTION` of the steps,
      then the half cosine to 0;
    - `"one_cycle"`: linear rise from `ONE_CYCLE_START * learning_rate` to `learning_rate` over
      the first `ONE_CYCLE_PEAK` of the steps, then the half cosine to 0.

    The schedules are functions of `optimizer.iterations`, which checkpoints save, so a resumed
    run continues the same curve; for a run of `epochs` epochs of `steps` steps, pass
    `total_steps=epochs * steps`.

    Args:
        lr_schedule: one of `LR_SCHEDULES`.
        learning_rate: float > 0. The initial (`"cosine"`) or peak rate.
        total_steps: int >= 1. Steps of the whole run.

    Example:
    >>> schedule = learning_rate_schedule("cosine", 0.1, total_steps=4)
    >>> [round(float(schedule(step)), 4) for step in range(5)]
    [0.1, 0.0854, 0.05, 0.0146, 0.0]
    >>> warmup = learning_rate_schedule("warmup_cosine", 0.1, total_steps=40)
    >>> [round(float(warmup(step)), 4) for step in (0, 1, 2, 40)]
    [0.0, 0.05, 0.1, 0.0]
    """
    check_lr_schedule(lr_schedule)
    if not is_number(learning_rate) or not learning_rate > 0:
        raise ValueError(
            f"`learning_rate` must be a positive float. Received: learning_rate={learning_rate!r}"
        )
    if not is_positive_int(total_steps):
        raise ValueError(
            f"`total_steps` must be a positive int. Received: total_steps={total_steps!r}"
        )
    if lr_schedule == "constant":
        return learning_rate
    if lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, total_steps)
    fraction, start = (
        (WARMUP_FRACTION, 0.0)
        if lr_schedule == "warmup_cosine"
        else (ONE_CYCLE_PEAK, ONE_CYCLE_START)
    )
    warmup = min(max(1, round(fraction * total_steps)), max(1, total_steps - 1))
    return keras.optimizers.schedules.CosineDecay(
        start * learning_rate,
        max(1, total_steps - warmup),
        warmup_target=learning_rate,
        warmup_steps=warmup,
    )


def mixing_layer(mixing: str, seed: int | None = None) -> keras.layers.Layer | None:
    """`keras.layers.MixUp` or `CutMix` for `mixing` (`None` for `"none"`).

    Example:
    >>> type(mixing_layer("cutmix", seed=0)).__name__, mixing_layer("none")
    ('CutMix', None)
    """
    check_choice("mixing", mixing, MIXINGS)
    if mixing == "mixup":
        return keras.layers.MixUp(seed=seed)
    if mixing == "cutmix":
        return keras.layers.CutMix(seed=seed)
    return None


def mix_batches(dataset, layer: keras.layers.Layer, classes: int):
    """Batches of `(images, integer labels)` mixed by `layer`, with soft one-hot labels.

    The mixing runs in `tf.data` on every backend: `ArrayBatches` become their
    `tf.data.Dataset` (`as_dataset()`, the same batches in the same orders) first.

    Args:
        dataset: a batched `tf.data.Dataset` of `(images, labels)`, or `ArrayBatches`.
        layer: `mixing_layer(...)`; its `seed_generator` advances batch by batch (`EpochSeed`
            makes each epoch's draws a function of the seed and the epoch).
        classes: int. Number of classes of the one-hot labels.
    """
    import tensorflow as tf

    from lenet_blocks.pipeline import ArrayBatches

    if isinstance(dataset, ArrayBatches):
        dataset = dataset.as_dataset()

    def mix(images, labels):
        one_hot = tf.one_hot(tf.reshape(tf.cast(labels, "int32"), [-1]), classes)
        mixed = layer({"images": images, "labels": one_hot}, training=True)
        return mixed["images"], mixed["labels"]

    return dataset.map(mix)


class EpochSeed(keras.callbacks.Callback):
    """Sets a `keras.random.SeedGenerator`'s state to `(seed, epoch)` at every epoch's start.

    The random draws of a layer outside the model (a `mixing_layer` in the data pipeline) then
    depend on the seed and the epoch only, so a run resumed at epoch `k` draws what the run
    never interrupted drew.

    Args:
        generator: the layer's `SeedGenerator` (e.g. `layer.generator`).
        seed: int. The run's seed.

    Example:
    >>> layer = mixing_layer("mixup", seed=3)
    >>> EpochSeed(layer.generator, seed=3).on_epoch_begin(2)
    >>> keras.ops.convert_to_numpy(layer.generator.state).tolist()
    [3, 2]
    """

    def __init__(self, generator: keras.random.SeedGenerator, seed: int):
        super().__init__()
        self.generator, self.seed = generator, seed

    def on_epoch_begin(self, epoch, logs=None):
        state = self.generator.state
        state.assign(np.array([self.seed, epoch], dtype=state.dtype))


class TorchEpochSeed(keras.callbacks.Callback):
    """Seeds torch's global generator from `(seed, epoch)` at every epoch's start (PyTorch only).

    On PyTorch, Keras' `Dropout` without its own seed draws its masks from torch's global
    generator (its fast path), whose state no checkpoint holds. Seeded per epoch, the masks of
    epoch `k` depend on the seed and `k` only, so a run resumed at epoch `k` draws what the run
    never interrupted drew. On the other backends it does nothing: their dropout draws from the
    model's `SeedGenerator` states, which the checkpoints hold.

    Args:
        seed: int or None. The run's seed (None counts as 0).

    Example:
    >>> TorchEpochSeed(seed=3).on_epoch_begin(2)  # a no-op unless KERAS_BACKEND=torch
    """

    def __init__(self, seed: int | None):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        if keras.backend.backend() != "torch":
            return
        import torch

        sequence = np.random.SeedSequence([self.seed or 0, epoch])
        torch.manual_seed(int(sequence.generate_state(1, np.uint64)[0]))


def mix_and_average(
    dataset,
    callbacks: list[keras.callbacks.Callback],
    *,
    mixing: str,
    use_ema: bool,
    classes: int,
    seed: int | None,
    averaged_from: int | None = None,
) -> tuple[object, list[keras.callbacks.Callback]]:
    """The training batches and callbacks of `fit` for the `mixing` and `use_ema` recipes.

    - `mixing` other than `"none"`: the batches are mixed by `mixing_layer(mixing, seed)`
      (`mix_batches`, soft one-hot labels: compile with `soft_labels=True`), and an `EpochSeed`
      first in the callbacks makes each epoch's draws a function of `(seed, epoch)` (0 for a
      `None` seed), so a run resumed at epoch `k` mixes what the run never interrupted mixed.
    - `use_ema`: Keras' `SwapEMAWeights(swap_on_epoch=True)` (the model's optimizer must have
      `use_ema=True`): validation measures the averaged weights, and so do the callbacks from
      `callbacks[averaged_from]` on at an epoch's end (a best-model checkpoint); the callbacks
      before it see the trained weights (the checkpoint a run resumes from, which must hold what
      training goes on with). `fit` ends with the averaged weights.

    Args:
        dataset: the training batches (`pipeline.make_batches`) of `(images, integer labels)`.
        callbacks: the callbacks of `fit`; not changed (a new list is returned).
        mixing: str. One of `MIXINGS`.
        use_ema: bool. Whether the optimizer averages the weights.
        classes: int. Number of classes (the length of the soft labels).
        seed: int or None. The run's seed.
        averaged_from: int or None. Index in `callbacks` of the first callback that sees the
            averaged weights at an epoch's end; None: none of them do.

    Returns:
        `(dataset, callbacks)` to pass to `fit`.

    Raises:
        ValueError: for an unknown `mixing`.

    Example:
    >>> first, last = keras.callbacks.Callback(), keras.callbacks.Callback()
    >>> _, callbacks = mix_and_average(
    ...     None, [first, last], mixing="none", use_ema=True, classes=10, seed=0, averaged_from=1
    ... )
    >>> [type(callback).__name__ for callback in callbacks]
    ['Callback', 'SwapEMAWeights', 'Callback']
    """
    callbacks = list(callbacks)
    if use_ema:
        position = len(callbacks) if averaged_from is None else averaged_from
        callbacks.insert(position, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    layer = mixing_layer(mixing, seed=seed)
    if layer is not None:
        dataset = mix_batches(dataset, layer, classes)
        # The layer runs in `tf.data`: on JAX and PyTorch it draws from its TensorFlow copy of
        # the generator (`DataLayer._get_seed_generator`), not from `layer.generator`.
        generator = layer._get_seed_generator("tensorflow")
        callbacks.insert(0, EpochSeed(generator, seed or 0))
    return dataset, callbacks
