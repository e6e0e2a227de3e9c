"""`ConvBlock`: the LeNet convolution unit (convolution, activation, subsampling)."""

from __future__ import annotations

import keras

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
        if pooling not in POOLING_LAYERS:
            raise ValueError(
                f"`pooling` must be one of {sorted(POOLING_LAYERS)}. Received: pooling={pooling!r}"
            )
        self.filters = filters
        self.kernel_size = kernel_size
        self.padding = padding
        self.activation = activation
        self.pooling = pooling
        self.pool_size = pool_size
        self.batch_norm = batch_norm

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
