"""`tf.data` input pipelines for uint8 image arrays.

Images go in as uint8 `(N, H, W)` or `(N, H, W, C)` arrays and come out as float32 batches
with a channel axis and their original 0-255 values: scaling, when a preset wants it, happens
inside the model (`build_lenet(include_rescaling=True)`), so a saved model takes raw pixels.

This is the path of every data set held in memory (the named sets, IDX directories, `.npz`
archives); an image folder, which may not fit in memory, is streamed from disk by Keras instead
(`lenet_blocks.image_folders.folder_datasets`), in the same float32 0-255 batches.

The NumPy helpers `split_validation` and `with_channel_axis` live in `lenet_blocks.arrays`
(importable without TensorFlow); they are re-exported here for older imports.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from lenet_blocks.arrays import split_validation, with_channel_axis

__all__ = ["EpochCounter", "make_dataset", "split_validation", "with_channel_axis"]


class EpochCounter(keras.callbacks.Callback):
    """Holds the epoch that `fit` is in, for the datasets `make_dataset(..., epoch=...)` orders.

    Pass it to `fit` as a callback and its `epoch` variable to `make_dataset`: each epoch's
    order is then a pure function of the seed and the epoch number, so a run resumed with
    `initial_epoch=k` sees the same data order as the run that was never interrupted.

    Example:
    >>> counter = EpochCounter()
    >>> counter.on_epoch_begin(3)
    >>> int(counter.epoch.numpy())
    3
    """

    def __init__(self):
        super().__init__()
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch.assign(epoch)


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray | None = None,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int | None = None,
    epoch: tf.Variable | None = None,
) -> tf.data.Dataset:
    """A batched, prefetched `tf.data.Dataset` of float32 images (0-255) and labels.

    The uint8 arrays are kept as they are (a quarter of the float32 size); the float32 cast
    runs per batch. With `shuffle=True` the order changes every epoch: reshuffled at every pass
    from `seed`, or, with `epoch`, ordered by a permutation drawn from `(seed, epoch)` only.

    Args:
        images: uint8 array `(N, H, W)` or `(N, H, W, C)`.
        labels: optional int array `(N,)`; without it the dataset yields images only.
        batch_size: int. Samples per batch (the last batch may be smaller).
        shuffle: bool. Whether to shuffle each epoch.
        seed: int or `None`. Shuffle seed (an int is needed with `epoch`).
        epoch: int64 `tf.Variable` holding the epoch each pass belongs to (`EpochCounter`'s),
            or `None`.

    Example:
    >>> dataset = make_dataset(np.zeros((5, 28, 28), "uint8"), np.arange(5), batch_size=2)
    >>> [tuple(x.shape) for x, _ in dataset]
    [(2, 28, 28, 1), (2, 28, 28, 1), (1, 28, 28, 1)]
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}"
        )
    images = with_channel_axis(np.asarray(images))
    elements = images if labels is None else (images, np.asarray(labels, dtype="int32"))
    if shuffle and epoch is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"`seed` must be an int to order by epoch. Received: seed={seed!r}")
        dataset = _ordered_by_epoch(elements, len(images), batch_size, seed, epoch)
    else:
        dataset = tf.data.Dataset.from_tensor_slices(elements).cache()
        if shuffle:
            dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size)
    if labels is None:
        dataset = dataset.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = dataset.map(lambda x, y: (_to_float(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _ordered_by_epoch(elements, size: int, batch_size: int, seed: int, epoch: tf.Variable):
    """Batches of `elements` in the order `stateless_shuffle` draws from `(seed, epoch)`."""
    tensors = tf.nest.map_structure(tf.constant, elements)
    starts = tf.data.Dataset.range(0, size, batch_size)

    def order(_):
        seeds = tf.stack([tf.constant(seed, tf.int64), epoch.read_value()])
        return tf.random.experimental.stateless_shuffle(tf.range(size, dtype=tf.int64), seeds)

    def batches(permutation):
        return starts.map(lambda start: permutation[start : start + batch_size])

    indices = tf.data.Dataset.range(1).map(order).flat_map(batches)
    indices = indices.apply(tf.data.experimental.assert_cardinality(len(starts)))
    return indices.map(lambda index: tf.nest.map_structure(lambda t: tf.gather(t, index), tensors))


def _to_float(images: tf.Tensor) -> tf.Tensor:
    return tf.cast(images, tf.float32)
