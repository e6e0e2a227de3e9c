"""Losses and accuracies beyond Keras' sparse ones.

- `RBFLoss`, `RBFAccuracy`: an `RBFOutput` model, whose outputs are distances (smaller is
  better);
- `SmoothedCrossentropy`, `LabelAccuracy`: integer labels *or* soft one-hot labels (MixUp,
  CutMix) in one compiled model, with label smoothing: the training batches may be mixed while
  validation and test keep their integer labels.
"""

from __future__ import annotations

import keras


def _sparse_labels(y_true, classes: int):
    labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
    return keras.ops.one_hot(labels, classes, dtype="float32")


@keras.saving.register_keras_serializable(package="lenet_blocks")
class RBFLoss(keras.losses.Loss):
    """The discriminative MAP criterion of LeNet-5 (LeCun et al. 1998, eq. 9), per sample.

    E = y_D + log(e^-j + sum_i e^-y_i), where `y_pred` holds the distances y_i of the
    `RBFOutput` units, D is the labelled class and j (`rubbish_penalty`) the penalty of a
    "rubbish" class. The first term pulls the right code towards the input; the second pushes
    the other codes away, which keeps the codes from all collapsing onto the input, but stops
    pushing a distance that is already well above j.

    Args:
        rubbish_penalty: float. The constant j > 0 of eq. 9.
        name: str. Name of the loss.
        reduction: Keras loss reduction (default `"sum_over_batch_size"`: the mean over the
            batch, the paper's 1/P sum).
        dtype: dtype of the loss computation (float32 by default, also under mixed precision).

    Example:
    >>> loss = RBFLoss(rubbish_penalty=1.0)
    >>> distances = keras.ops.convert_to_tensor([[0.0, 10.0]])
    >>> round(float(loss(keras.ops.convert_to_tensor([0]), distances)), 4)  # log(e^-1 + 1 + e^-10)
    0.3133
    """

    def __init__(
        self,
        rubbish_penalty: float = 1.0,
        name: str = "rbf_loss",
        reduction: str = "sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if (
            isinstance(rubbish_penalty, bool)
            or not isinstance(rubbish_penalty, int | float)
            or not rubbish_penalty > 0
        ):
            raise ValueError(
                "`rubbish_penalty` must be a positive number. "
                f"Received: rubbish_penalty={rubbish_penalty!r}"
            )
        self.rubbish_penalty = float(rubbish_penalty)

    def call(self, y_true, y_pred):
        distances = keras.ops.cast(y_pred, "float32")
        target = keras.ops.sum(distances * _sparse_labels(y_true, distances.shape[-1]), axis=-1)
        rubbish = keras.ops.full_like(distances[..., :1], -self.rubbish_penalty)
        competition = keras.ops.logsumexp(
            keras.ops.concatenate([rubbish, -distances], axis=-1), axis=-1
        )
        return target + competition

    def get_config(self):
        config = super().get_config()
        config.update({"rubbish_penalty": self.rubbish_penalty})
        return config


def rbf_accuracy(y_true, y_pred):
    """1.0 where the smallest distance in `y_pred` is at the integer label `y_true`, else 0.0.

    Example:
    >>> distances = keras.ops.convert_to_tensor([[0.5, 3.0], [2.0, 1.0]])
    >>> keras.ops.convert_to_numpy(rbf_accuracy(keras.ops.convert_to_tensor([0, 0]), distances))
    array([1., 0.], dtype=float32)
    """
    return keras.metrics.sparse_categorical_accuracy(y_true, -keras.ops.convert_to_tensor(y_pred))


class _AccuracyMetric(keras.metrics.MeanMetricWrapper):
    """The mean of a per-sample accuracy function (`accuracy_fn`), named `"accuracy"` by default.

    Subclasses set `accuracy_fn`; the metric then reads in histories and logs as Keras'
    own accuracy does.
    """

    accuracy_fn = None

    def __init__(self, name: str = "accuracy", dtype=None):
        super().__init__(fn=type(self).accuracy_fn, name=name, dtype=dtype)
        self._direction = "up"

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="lenet_blocks")
class RBFAccuracy(_AccuracyMetric):
    """Accuracy of a distance output: how often the label is the argmin of the distances.

    Named `"accuracy"` by default, so histories and logs read as for the other models.

    Args:
        name: str. Name of the metric.
        dtype: dtype of the metric result.

    Example:
    >>> metric = RBFAccuracy()
    >>> distances = keras.ops.convert_to_tensor([[0.5, 3.0], [2.0, 1.0], [4.0, 0.0]])
    >>> _ = metric.update_state(keras.ops.convert_to_tensor([0, 0, 1]), distances)
    >>> round(float(metric.result()), 4)
    0.6667
    """

    accuracy_fn = staticmethod(rbf_accuracy)


def _dense_labels(y_true, y_pred):
    """`y_true` as float class vectors: soft labels kept, integer labels one-hot encoded."""
    classes = y_pred.shape[-1]
    shape = tuple(y_true.shape)
    if len(shape) == len(y_pred.shape) and shape[-1] == classes and classes != 1:
        return keras.ops.cast(y_true, "float32")
    return _sparse_labels(y_true, classes)


@keras.saving.register_keras_serializable(package="lenet_blocks")
class SmoothedCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy of integer or soft labels, with optional label smoothing.

    Labels of shape `(batch,)` or `(batch, 1)` are class indices; labels of shape
    `(batch, classes)` are class probabilities (MixUp/CutMix). Both are then Keras'
    `categorical_crossentropy(..., label_smoothing=label_smoothing)`; with 0 smoothing and
    integer labels this is `SparseCategoricalCrossentropy`.

    Args:
        label_smoothing: float in [0, 1). Weight moved from the labelled class to all classes.
        from_logits: bool. Whether `y_pred` are logits.
        name: str. Name of the loss.
        reduction: Keras loss reduction.
        dtype: dtype of the loss computation.

    Example:
    >>> loss = SmoothedCrossentropy(label_smoothing=0.2)
    >>> probabilities = keras.ops.convert_to_tensor([[0.9, 0.1]])
    >>> hard, soft = keras.ops.convert_to_tensor([0]), keras.ops.convert_to_tensor([[1.0, 0.0]])
    >>> round(float(loss(hard, probabilities)), 4) == round(float(loss(soft, probabilities)), 4)
    True
    """

    def __init__(
        self,
        label_smoothing: float = 0.0,
        from_logits: bool = False,
        name: str = "smoothed_crossentropy",
        reduction: str = "sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if (
            isinstance(label_smoothing, bool)
            or not isinstance(label_smoothing, int | float)
            or not 0 <= label_smoothing < 1
        ):
            raise ValueError(
                "`label_smoothing` must be a float in [0, 1). "
                f"Received: label_smoothing={label_smoothing!r}"
            )
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        return keras.losses.categorical_crossentropy(
            _dense_labels(y_true, y_pred),
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"label_smoothing": self.label_smoothing, "from_logits": self.from_logits})
        return config


def label_accuracy(y_true, y_pred):
    """1.0 where the largest output is the label (an index, or the largest soft label), else 0.

    Example:
    >>> outputs = keras.ops.convert_to_tensor([[0.2, 0.8], [0.6, 0.4]])
    >>> hard = keras.ops.convert_to_tensor([1, 1])
    >>> soft = keras.ops.convert_to_tensor([[0.3, 0.7], [0.3, 0.7]])
    >>> [keras.ops.convert_to_numpy(label_accuracy(y, outputs)).tolist() for y in (hard, soft)]
    [[1.0, 0.0], [1.0, 0.0]]
    """
    y_pred = keras.ops.convert_to_tensor(y_pred)
    labels = keras.ops.argmax(_dense_labels(keras.ops.convert_to_tensor(y_true), y_pred), axis=-1)
    predicted = keras.ops.argmax(y_pred, axis=-1)
    return keras.ops.cast(keras.ops.equal(labels, predicted), "float32")


@keras.saving.register_keras_serializable(package="lenet_blocks")
class LabelAccuracy(_AccuracyMetric):
    """Accuracy of integer or soft labels (`label_accuracy`), named `"accuracy"` by default.

    Args:
        name: str. Name of the metric.
        dtype: dtype of the metric result.

    Example:
    >>> metric = LabelAccuracy()
    >>> _ = metric.update_state(
    ...     keras.ops.convert_to_tensor([[0.0, 1.0]]), keras.ops.convert_to_tensor([[0.3, 0.7]])
    ... )
    >>> float(metric.result())
    1.0
    """

    accuracy_fn = staticmethod(label_accuracy)
