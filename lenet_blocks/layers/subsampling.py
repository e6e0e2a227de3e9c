"""`Subsampling`: LeNet-5's trainable subsampling layers S2 and S4."""

from __future__ import annotations

import keras

from lenet_blocks.layers import arguments
from lenet_blocks.layers.scaled_tanh import get_activation


@keras.saving.register_keras_serializable(package="lenet_blocks")
class Subsampling(keras.layers.Layer):
    """Trainable subsampling: window sum x coefficient + bias, then the squashing function.

    Each output unit adds up the inputs of a non-overlapping `pool_size` window of its feature
    map, multiplies the sum by a trainable coefficient and adds a trainable bias (one
    coefficient and one bias per feature map, so 2 parameters per map: S2 has 12, S4 has 32),
    then applies `activation`. Rows and columns that do not fill a whole window are dropped, as
    in `keras.layers.AveragePooling2D(padding="valid")`.

    Args:
        pool_size: int or pair of ints. Height and width (and stride) of the windows.
        activation: `"scaled_tanh"` (the paper's 1.7159·tanh(2a/3), default), the name of a
            Keras activation, or `None` for the bare affine map.
        coefficient_initializer: Initializer of the per-map coefficients; `None` (default)
            starts them at 1 / (window area), so the layer starts as an average pooling.
        bias_initializer: Initializer of the per-map biases.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> layer = Subsampling(pool_size=2, activation=None)
    >>> x = keras.ops.ones((1, 4, 4, 6))
    >>> tuple(layer(x).shape), layer.count_params()
    ((1, 2, 2, 6), 12)
    >>> float(keras.ops.convert_to_numpy(layer(x))[0, 0, 0, 0])  # (4 ones) x 1/4 + bias 0
    1.0
    """

    def __init__(
        self,
        pool_size: int | tuple[int, int] = 2,
        activation: str | None = "scaled_tanh",
        coefficient_initializer=None,
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.pool_size = arguments.int_pair("pool_size", pool_size)
        self.activation = activation
        if coefficient_initializer is None:
            area = self.pool_size[0] * self.pool_size[1]
            coefficient_initializer = keras.initializers.Constant(1.0 / area)
        self.coefficient_initializer = arguments.initializer(
            "coefficient_initializer", coefficient_initializer
        )
        self.bias_initializer = arguments.initializer("bias_initializer", bias_initializer)
        self._activation_fn = get_activation(activation)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                "`Subsampling` needs a known number of channels. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        for side, window in zip(input_shape[1:3], self.pool_size, strict=True):
            if side is not None and side < window:
                raise ValueError(
                    f"Layer {self.name!r} (Subsampling) needs inputs of at least "
                    f"{self.pool_size} rows and columns. Received: input_shape={tuple(input_shape)}"
                )
        arguments.check_weights_fit(self, 2 * channels)
        self.coefficient = self.add_weight(
            shape=(channels,), initializer=self.coefficient_initializer, name="coefficient"
        )
        self.bias = self.add_weight(
            shape=(channels,), initializer=self.bias_initializer, name="bias"
        )
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: channels})

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        window_mean = keras.ops.average_pool(
            x, self.pool_size, strides=self.pool_size, padding="valid", data_format="channels_last"
        )
        window_sum = window_mean * float(self.pool_size[0] * self.pool_size[1])
        return self._activation_fn(window_sum * self.coefficient + self.bias)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        out_height = None if height is None else height // self.pool_size[0]
        out_width = None if width is None else width // self.pool_size[1]
        return (batch, out_height, out_width, channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pool_size": list(self.pool_size),
                "activation": self.activation,
                "coefficient_initializer": keras.initializers.serialize(
                    self.coefficient_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
