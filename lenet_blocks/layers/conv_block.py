"""`ConvBlock`: the LeNet convolution unit (convolution, activation, subsampling)."""

from __future__ import annotations

import keras

from lenet_blocks.layers import arguments
from lenet_blocks.layers.staged_layer import StagedLayer

POOLING_LAYERS = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}


@keras.saving.register_keras_serializable(package="lenet_blocks")
class ConvBlock(StagedLayer):
    """Convolution, optional batch normalization, activation, then 2-D pooling.

    The notebook's LeNet stacks two of these: `ConvBlock(6)` then `ConvBlock(16)`.
    With `batch_norm=True` the order is convolution -> batch normalization ->
    activation -> pooling, and the convolution drops its (redundant) bias.

    Args:
        filters: int. Number of convolution filters (output channels).
        kernel_size: int. Side of the square convolution window.
        padding: `"valid"` or `"same"`. Padding of the convolution.
        activation: str. Name of a Keras activation, e.g. `"sigmoid"` or `"relu"`.
        pooling: `"max"` or `"avg"`. Type of the subsampling.
        pool_size: int. Side and stride of the non-overlapping pooling window.
        batch_norm: bool. Whether to normalize the convolution output.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> block = ConvBlock(filters=6, kernel_size=5)
    >>> tuple(block(keras.ops.zeros((2, 28, 28, 1))).shape)
    (2, 12, 12, 6)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 5,
        padding: str = "valid",
        activation: str = "sigmoid",
        pooling: str = "max",
        pool_size: int = 2,
        batch_norm: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = arguments.positive_int("filters", filters)
        self.kernel_size = arguments.positive_int("kernel_size", kernel_size)
        self.padding = arguments.one_of("padding", padding, arguments.PADDINGS)
        self.activation = arguments.activation_name("activation", activation)
        self.pooling = arguments.one_of("pooling", pooling, tuple(POOLING_LAYERS))
        self.pool_size = arguments.positive_int("pool_size", pool_size)
        self.batch_norm = arguments.boolean("batch_norm", batch_norm)

        self.conv = keras.layers.Conv2D(
            filters,
            kernel_size,
            padding=padding,
            use_bias=not batch_norm,
            dtype=self.dtype_policy,
            name="conv",
        )
        self.norm = (
            keras.layers.BatchNormalization(dtype=self.dtype_policy, name="norm")
            if batch_norm
            else None
        )
        self.activation_layer = keras.layers.Activation(
            activation, dtype=self.dtype_policy, name="activation"
        )
        self.pool = POOLING_LAYERS[pooling](
            pool_size, strides=pool_size, dtype=self.dtype_policy, name="pool"
        )

    def build(self, input_shape):
        height, width, channels = input_shape[1:]
        weights = self.kernel_size**2 * (channels or 1) * self.filters + 4 * self.filters
        arguments.check_weights_fit(self, weights)
        rows = [d for d in (height, width) if d is not None]
        side = min(rows, default=None)
        if side is not None and self.padding == "valid":
            side -= self.kernel_size - 1
        if side is not None and side < self.pool_size:
            raise ValueError(
                f"Layer {self.name!r} (ConvBlock) needs inputs of at least "
                f"{self.pool_size + (self.kernel_size - 1) * (self.padding == 'valid')} rows "
                f"and columns for kernel_size={self.kernel_size}, padding={self.padding!r}, "
                f"pool_size={self.pool_size}. Received: input_shape={tuple(input_shape)}"
            )
        super().build(input_shape)

    @property
    def stages(self) -> list[keras.layers.Layer]:
        """The sublayers in the order `call` applies them."""
        stages = [self.conv, self.norm, self.activation_layer, self.pool]
        return [stage for stage in stages if stage is not None]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "padding": self.padding,
                "activation": self.activation,
                "pooling": self.pooling,
                "pool_size": self.pool_size,
                "batch_norm": self.batch_norm,
            }
        )
        return config
