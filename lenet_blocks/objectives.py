"""The loss, metrics and class probabilities that fit a model's output layer."""

from __future__ import annotations

import keras
import numpy as np

from lenet_blocks.layers.rbf_output import RBFOutput
from lenet_blocks.losses import LabelAccuracy, RBFAccuracy, RBFLoss, SmoothedCrossentropy


def output_activation(model: keras.Model) -> str | None:
    """Activation of the model's output units: `"softmax"`, `"sigmoid"`, ... or `None` (logits).

    Reads `classifier_activation` from the last layer (`ClassifierHead`) or `activation` from a
    plain `Dense` last layer.

    Example:
    >>> from lenet_blocks import build_lenet
    >>> output_activation(build_lenet(classifier_activation=None)) is None
    True
    """
    last = model.layers[-1]
    if hasattr(last, "classifier_activation"):
        return last.classifier_activation
    activation = last.get_config().get("activation")
    return None if activation in (None, "linear") else activation


def is_rbf_model(model: keras.Model) -> bool:
    """Whether `model` ends with an `RBFOutput` layer (its outputs are distances to codes).

    Example:
    >>> from lenet_blocks import build_lenet
    >>> is_rbf_model(build_lenet()), is_rbf_model(build_lenet("lenet5_1998"))
    (False, True)
    """
    return isinstance(model.layers[-1], RBFOutput)


def loss_and_metrics(
    model: keras.Model, label_smoothing: float = 0.0, soft_labels: bool = False
) -> tuple[keras.losses.Loss, list]:
    """The sparse-label loss and accuracy metric to compile `model` with.

    Softmax and sigmoid outputs use `SparseCategoricalCrossentropy` on the outputs (for sigmoid,
    as in the notebook, Keras normalizes them to sum to one); logits use `from_logits=True`.
    A model whose last layer is an `RBFOutput` (distances, LeNet-5) gets the paper's
    `RBFLoss` (eq. 9) and `RBFAccuracy` (argmin distance, named `"accuracy"`).

    With `label_smoothing > 0` or `soft_labels=True` (training batches mixed by MixUp/CutMix),
    a softmax/sigmoid/logits model gets `losses.SmoothedCrossentropy` and `LabelAccuracy`
    instead, which take integer and soft labels alike.

    Example:
    >>> from lenet_blocks import build_lenet
    >>> loss, metrics = loss_and_metrics(build_lenet())
    >>> loss.get_config()["from_logits"]
    False
    """
    if is_rbf_model(model):
        return RBFLoss(), [RBFAccuracy(name="accuracy")]
    from_logits = output_activation(model) is None
    if label_smoothing or soft_labels:
        loss = SmoothedCrossentropy(label_smoothing, from_logits=from_logits)
        return loss, [LabelAccuracy(name="accuracy")]
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    return loss, [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]


def class_probabilities(model: keras.Model, outputs: np.ndarray) -> np.ndarray:
    """Turns `model`'s raw outputs into class probabilities (rows summing to one).

    Distances of an `RBFOutput` model become `softmax(-distances)`, so the most probable
    class is the nearest code.

    Args:
        model: the model that produced `outputs`.
        outputs: array `(batch, classes)` from `model.predict`.

    Example:
    >>> from lenet_blocks import build_lenet
    >>> probabilities = class_probabilities(build_lenet(), np.array([[0.2, 0.6]]))
    >>> probabilities.round(2).tolist()
    [[0.25, 0.75]]
    """
    outputs = np.asarray(outputs, dtype="float64")
    if is_rbf_model(model):
        outputs = -outputs  # the nearest code (smallest distance) is the most probable class
    elif output_activation(model) is not None:
        return outputs / outputs.sum(axis=-1, keepdims=True)
    shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
