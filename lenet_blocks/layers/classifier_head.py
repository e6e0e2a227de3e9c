"""`ClassifierHead`: the LeNet fully connected stack."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from lenet_blocks.layers import arguments
from lenet_blocks.layers.staged_layer import StagedLayer


@keras.saving.register_keras_serializable(package="lenet_blocks")
class ClassifierHead(StagedLayer):
    """Flatten, hidden `Dense` layers with optional dropout, then the output `Dense`.

    The notebook's head is `ClassifierHead(units=(120, 84), classes=10)`: 256 -> 120 -> 84 -> 10,
    sigmoid everywhere.

    Args:
        units: sequence of ints. Widths of the hidden `Dense` layers, in order (may be empty).
        classes: int. Number of output units.
        activation: str. Keras activation name of the hidden layers.
        classifier_activation: str or `None`. Activation of the output layer: `"softmax"`,
            `"sigmoid"`, or `None` to return logits.
        dropout: float in `[0, 1)`. Dropout rate applied after each hidden layer.
        class_names: optional sequence of `classes` strings: the name of each output class,
            saved with the model so that a reloaded file predicts names
            (`lenet_blocks.inference.model_class_names`).
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> head = ClassifierHead(units=(120, 84), classes=10)
    >>> tuple(head(keras.ops.zeros((2, 4, 4, 16))).shape)
    (2, 10)
    """

    def __init__(
        self,
        units: Sequence[int] = (120, 84),
        classes: int = 10,
        activation: str = "sigmoid",
        classifier_activation: str | None = "sigmoid",
        dropout: float = 0.0,
        class_names: Sequence[str] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = arguments.positive_ints("units", units)
        self.classes = arguments.positive_int("classes", classes)
        self.activation = arguments.activation_name("activation", activation)
        self.classifier_activation = arguments.activation_name(
            "classifier_activation", classifier_activation, allow_none=True
        )
        self.dropout = arguments.rate("dropout", dropout)
        self.class_names = arguments.class_names(class_names, self.classes)

        self.flatten = keras.layers.Flatten(dtype=self.dtype_policy, name="flatten")
        self.hidden_layers = []
        for index, width in enumerate(self.units, start=1):
            self.hidden_layers.append(
                keras.layers.Dense(
                    width, activation=activation, dtype=self.dtype_policy, name=f"dense_{index}"
                )
            )
            if dropout > 0:
                self.hidden_layers.append(
                    keras.layers.Dropout(dropout, dtype=self.dtype_policy, name=f"dropout_{index}")
                )
        self.output_dense = keras.layers.Dense(
            classes, activation=classifier_activation, dtype=self.dtype_policy, name="predictions"
        )

    def build(self, input_shape):
        features = 1
        for dimension in input_shape[1:]:
            features *= dimension or 1
        weights = 0
        for width in (*self.units, self.classes):
            weights += (features + 1) * width
            features = width
        arguments.check_weights_fit(self, weights)
        super().build(input_shape)

    @property
    def stages(self) -> list[keras.layers.Layer]:
        """The sublayers in the order `call` applies them."""
        return [self.flatten, *self.hidden_layers, self.output_dense]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": list(self.units),
                "classes": self.classes,
                "activation": self.activation,
                "classifier_activation": self.classifier_activation,
                "dropout": self.dropout,
                "class_names": None if self.class_names is None else list(self.class_names),
            }
        )
        return config
