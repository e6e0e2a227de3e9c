"""`tf.data` input pipelines for uint8 image arrays.

Images go in as uint8 `(N, H, W)` or `(N, H, W, C)` arrays and come out as float32 batches
with a channel axis and their original 0-255 values: scaling, when a preset wants it, happens
inside the model (`build_lenet(include_rescaling=True)`), so a saved model takes raw pixels.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def split_validation(
    images: np.ndarray, labels: np.ndarray, validation_split: float = 0.1
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Holds out the last `validation_split` of the samples, as `model.fit(validation_split=...)`.

    Args:
        images: array of images, first axis the samples.
        labels: array of labels, same length as `images`.
        validation_split: float in `[0, 1)`. Fraction held out for validation.

    Returns:
        `((train_images, train_labels), (validation_images, validation_labels))`.

    Raises:
        ValueError: if `validation_split` is outside `[0, 1)` or the arrays' lengths differ.

    Example:
    >>> (x, y), (xv, yv) = split_validation(np.zeros((10, 2)), np.arange(10), 0.1)
    >>> x.shape, yv.tolist()
    ((9, 2), [9])
    """
    if not 0 <= validation_split < 1:
        raise ValueError(
            f"`validation_split` must be in [0, 1). Received: validation_split={validation_split!r}"
        )
    if len(images) != len(labels):
        raise ValueError(
            "`images` and `labels` must have the same length. "
            f"Received: {len(images)} images and {len(labels)} labels"
        )
    split_at = int(len(images) * (1 - validation_split))
    return (images[:split_at], labels[:split_at]), (images[split_at:], labels[split_at:])


def with_channel_axis(images: np.ndarray) -> np.ndarray:
    """Adds a trailing channel axis to `(N, H, W)` images; `(N, H, W, C)` passes through.

    Example:
    >>> with_channel_axis(np.zeros((2, 28, 28), "uint8")).shape
    (2, 28, 28, 1)
    """
    return images[..., np.newaxis] if images.ndim == 3 else images


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray | None = None,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int | None = None,
) -> tf.data.Dataset:
    """A batched, cached, prefetched `tf.data.Dataset` of float32 images (0-255) and labels.

    The uint8 arrays are cached as they are (a quarter of the float32 size); the float32 cast
    runs per batch. With `shuffle=True` the order is reshuffled every epoch from `seed`.

    Args:
        images: uint8 array `(N, H, W)` or `(N, H, W, C)`.
        labels: optional int array `(N,)`; without it the dataset yields images only.
        batch_size: int. Samples per batch (the last batch may be smaller).
        shuffle: bool. Whether to shuffle each epoch.
        seed: int or `None`. Shuffle seed.

    Example:
    >>> dataset = make_dataset(np.zeros((5, 28, 28), "uint8"), np.arange(5), batch_size=2)
    >>> [tuple(x.shape) for x, _ in dataset]
    [(2, 28, 28, 1), (2, 28, 28, 1), (1, 28, 28, 1)]
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}"
        )
    images = with_channel_axis(np.asarray(images))
    elements = images if labels is None else (images, np.asarray(labels, dtype="int32"))
    dataset = tf.data.Dataset.from_tensor_slices(elements).cache()
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if labels is None:
        dataset = dataset.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = dataset.map(lambda x, y: (_to_float(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _to_float(images: tf.Tensor) -> tf.Tensor:
    return tf.cast(images, tf.float32)
