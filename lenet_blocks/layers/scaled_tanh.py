"""`ScaledTanh`: LeNet-5's squashing function f(a) = A·tanh(S·a) (LeCun et al. 1998, appendix A)."""

from __future__ import annotations

import keras

from lenet_blocks.layers import arguments

AMPLITUDE = 1.7159
SLOPE = 2.0 / 3.0


@keras.saving.register_keras_serializable(package="lenet_blocks")
def scaled_tanh(x):
    """The paper's squashing function with its constants: `1.7159 * tanh(2/3 * x)`.

    Registered, so it can be given as the `activation` of any Keras layer
    (`keras.layers.Dense(84, activation=scaled_tanh)`) and saved with it. f(1) = 1 and
    f(-1) = -1, and the second derivative is largest at ±1.

    Args:
        x: tensor.

    Example:
    >>> round(float(scaled_tanh(keras.ops.ones(()))), 4)
    1.0
    """
    return AMPLITUDE * keras.ops.tanh(SLOPE * x)


def get_activation(identifier: str | None):
    """Resolves an `activation` argument: `"scaled_tanh"`, a Keras activation name, or `None`.

    Args:
        identifier: `"scaled_tanh"` (the paper's squashing function), the name of a built-in
            Keras activation (`"tanh"`, `"relu"`, ...), or `None` (identity).

    Returns:
        The activation function.

    Raises:
        ValueError: if `identifier` is none of these.

    Example:
    >>> get_activation("scaled_tanh") is scaled_tanh
    True
    """
    if identifier == "scaled_tanh":
        return scaled_tanh
    if identifier is None:
        return keras.activations.linear
    try:
        function = keras.activations.get(identifier) if isinstance(identifier, str) else None
    except ValueError:
        function = None
    if function is None:
        raise ValueError(
            "`activation` must be 'scaled_tanh', the name of a Keras activation, or None. "
            f"Received: activation={identifier!r}"
        )
    return function


@keras.saving.register_keras_serializable(package="lenet_blocks")
class ScaledTanh(keras.layers.Layer):
    """The scaled hyperbolic tangent f(a) = A·tanh(S·a) of LeNet-5, as a layer.

    With the paper's constants A = 1.7159 and S = 2/3, f(±1) = ±1, the gain is close to one
    around zero and the outputs stay within ±1.7159. The layer has no weights.

    Args:
        amplitude: float. A, the output amplitude.
        slope: float. S, the slope at the origin divided by A.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> layer = ScaledTanh()
    >>> [round(float(v), 4) for v in layer(keras.ops.convert_to_tensor([-1.0, 0.0, 1.0]))]
    [-1.0, 0.0, 1.0]
    >>> round(float(ScaledTanh(amplitude=2.0, slope=1.0)(keras.ops.ones(()) * 100)), 4)
    2.0
    """

    def __init__(self, amplitude: float = AMPLITUDE, slope: float = SLOPE, **kwargs):
        super().__init__(**kwargs)
        self.amplitude = arguments.finite_number("amplitude", amplitude)
        self.slope = arguments.finite_number("slope", slope)
        self.built = True

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        return self.amplitude * keras.ops.tanh(self.slope * x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"amplitude": self.amplitude, "slope": self.slope})
        return config
