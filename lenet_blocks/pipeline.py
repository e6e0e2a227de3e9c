"""Input pipelines for uint8 image arrays: `tf.data`, or batches Keras reads as NumPy.

Images go in as uint8 `(N, H, W)` or `(N, H, W, C)` arrays and come out as float32 batches
with a channel axis and their original 0-255 values: scaling, when a preset wants it, happens
inside the model (`build_lenet(include_rescaling=True)`), so a saved model takes raw pixels.

This is the path of every data set held in memory (the named sets, IDX directories, `.npz`
archives); an image folder, which may not fit in memory, is streamed from disk by Keras instead
(`lenet_blocks.image_folders.folder_datasets`), in the same float32 0-255 batches.

`make_dataset` is the `tf.data` path. `make_batches` picks the fastest path of the backend
Keras runs on: that same `tf.data` path on TensorFlow, and `ArrayBatches` (a
`keras.utils.PyDataset` of NumPy batches) on JAX and PyTorch, where Keras would otherwise
convert every `tf.data` batch to NumPy first. Both draw an epoch's order from the same
`(seed, epoch)` permutation, so a run resumed at any epoch sees the order it would have seen.

The NumPy helpers `split_validation` and `with_channel_axis` live in `lenet_blocks.arrays`
(importable without TensorFlow); they are re-exported here for older imports.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from lenet_blocks.arrays import split_validation, with_channel_axis

__all__ = [
    "ArrayBatches",
    "EpochCounter",
    "batches_per_epoch",
    "epoch_order",
    "make_batches",
    "make_dataset",
    "split_validation",
    "with_channel_axis",
]


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
    _check_order(batch_size, shuffle, seed, epoch)
    images = with_channel_axis(np.asarray(images))
    elements = images if labels is None else (images, np.asarray(labels, dtype="int32"))
    if shuffle and epoch is not None:
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


class ArrayBatches(keras.utils.PyDataset):
    """Float32 batches (0-255) of uint8 image arrays, for `fit`, `evaluate` and `predict`.

    The `make_dataset` batches as a `keras.utils.PyDataset`: Keras hands them to JAX and
    PyTorch as NumPy arrays, without a `tf.data` iterator in between. With `shuffle=True` and
    `epoch`, each epoch's order is `epoch_order(seed, epoch)`, the permutation `make_dataset`
    draws, read from `epoch` when a batch is asked for, so it does not depend on when Keras
    calls the dataset's hooks. With `shuffle=True` and no `epoch`, a new order is drawn from
    `seed` at every epoch. Pass `shuffle=False` to `fit`: the order is the dataset's own.

    Args:
        images: uint8 array `(N, H, W)` or `(N, H, W, C)`.
        labels: optional int array `(N,)`; without it the batches hold images only.
        batch_size: int. Samples per batch (the last batch may be smaller).
        shuffle: bool. Whether to shuffle each epoch.
        seed: int or `None`. Shuffle seed (an int is needed with `epoch`).
        epoch: int64 `tf.Variable` holding the epoch `fit` is in (`EpochCounter`'s), or `None`.
        **kwargs: `keras.utils.PyDataset` arguments (`workers`, `use_multiprocessing`,
            `max_queue_size`).

    Example:
    >>> batches = ArrayBatches(np.zeros((5, 28, 28), "uint8"), np.arange(5), batch_size=2)
    >>> [(x.shape, x.dtype.name) for x, _ in (batches[i] for i in range(len(batches)))]
    [((2, 28, 28, 1), 'float32'), ((2, 28, 28, 1), 'float32'), ((1, 28, 28, 1), 'float32')]
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | None = None,
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int | None = None,
        epoch: tf.Variable | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_order(batch_size, shuffle, seed, epoch)
        self.images = with_channel_axis(np.asarray(images))
        self.labels = None if labels is None else np.asarray(labels, dtype="int32")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError(
                f"`labels` must hold one label per image ({len(self.images)}). "
                f"Received: labels with shape {self.labels.shape}"
            )
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = epoch
        self._order = None  # the sample indices of the current epoch; None: in order
        self._order_epoch = None  # the epoch `_order` was drawn for
        self._random = np.random.default_rng(seed)

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"Batch index out of range: {index} (of {len(self)} batches).")
        window = slice(index * self.batch_size, (index + 1) * self.batch_size)
        if self.shuffle and self.epoch is not None:
            epoch = int(self.epoch.numpy())
            if epoch != self._order_epoch:
                self._order = epoch_order(self.seed, epoch, len(self.images)).numpy()
                self._order_epoch = epoch
        if self._order is not None:
            window = self._order[window]
        images = self.images[window].astype("float32")
        return images if self.labels is None else (images, self.labels[window])

    def on_epoch_begin(self):
        if self.shuffle and self.epoch is None:
            self._order = self._random.permutation(len(self.images))

    def as_dataset(self) -> tf.data.Dataset:
        """The same batches as a `tf.data.Dataset` (`make_dataset`): in the same orders when
        ordered by `epoch` or not shuffled (reshuffled from `seed`, the two draw other orders)."""
        return make_dataset(
            self.images, self.labels, self.batch_size, self.shuffle, self.seed, self.epoch
        )


def make_batches(
    images: np.ndarray,
    labels: np.ndarray | None = None,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int | None = None,
    epoch: tf.Variable | None = None,
):
    """The batches of `make_dataset` on the fastest path of the backend Keras runs on.

    On TensorFlow, `make_dataset`'s `tf.data.Dataset`; on JAX and PyTorch, `ArrayBatches`,
    which Keras reads as NumPy arrays instead of converting every `tf.data` batch. The same
    arguments, batches and epoch orders either way (`ArrayBatches.as_dataset()` turns the
    second into the first, for what needs `tf.data`).

    Example:
    >>> batches = make_batches(np.zeros((5, 28, 28), "uint8"), np.arange(5), batch_size=2)
    >>> batches_per_epoch(batches)
    3
    """
    if keras.backend.backend() == "tensorflow":
        return make_dataset(images, labels, batch_size, shuffle, seed, epoch)
    return ArrayBatches(images, labels, batch_size, shuffle, seed, epoch)


def batches_per_epoch(batches) -> int:
    """The number of batches in an epoch of `make_batches`' batches (-1 or -2 for a
    `tf.data.Dataset` of unknown or infinite size, as `cardinality`)."""
    if isinstance(batches, keras.utils.PyDataset):
        return len(batches)
    return int(batches.cardinality())


def epoch_order(seed: int, epoch: int | tf.Tensor, size: int) -> tf.Tensor:
    """The permutation of `range(size)` (int64) that orders epoch `epoch` of a run seeded `seed`.

    Example:
    >>> sorted(epoch_order(7, 2, 5).numpy().tolist())
    [0, 1, 2, 3, 4]
    """
    seeds = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_shuffle(tf.range(size, dtype=tf.int64), seeds)


def _check_order(batch_size, shuffle, seed, epoch) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}"
        )
    if shuffle and epoch is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"`seed` must be an int to order by epoch. Received: seed={seed!r}")


def _ordered_by_epoch(elements, size: int, batch_size: int, seed: int, epoch: tf.Variable):
    """Batches of `elements` in the order `epoch_order` draws from `(seed, epoch)`."""
    tensors = tf.nest.map_structure(tf.constant, elements)
    starts = tf.data.Dataset.range(0, size, batch_size)

    def order(_):
        return epoch_order(seed, epoch.read_value(), size)

    def batches(permutation):
        return starts.map(lambda start: permutation[start : start + batch_size])

    indices = tf.data.Dataset.range(1).map(order).flat_map(batches)
    indices = indices.apply(tf.data.experimental.assert_cardinality(len(starts)))
    return indices.map(lambda index: tf.nest.map_structure(lambda t: tf.gather(t, index), tensors))


def _to_float(images: tf.Tensor) -> tf.Tensor:
    return tf.cast(images, tf.float32)
