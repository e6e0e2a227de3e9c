"""`ConvBlock`: the LeNet convolution unit (convolutions, activations, subsampling)."""

from __future__ import annotations

import keras

from lenet_blocks.layers import arguments
from lenet_blocks.layers.staged_layer import StagedLayer
from lenet_blocks.validation import is_positive_int

POOLING_LAYERS = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}
# Convolution units per block: VGG's deepest blocks have 4; the cap bounds the layers made.
MAX_CONVOLUTIONS = 8
CONVOLUTIONS_RULE = f"an int from 1 to {MAX_CONVOLUTIONS}"


def is_convolution_count(value) -> bool:
    """Whether `value` is a valid `convolutions` of a block: an int from 1 to 8.

    Example:
    >>> is_convolution_count(2), is_convolution_count(9), is_convolution_count(True)
    (True, False, False)
    """
    return is_positive_int(value) and value <= MAX_CONVOLUTIONS


@keras.saving.register_keras_serializable(package="lenet_blocks")
class ConvBlock(StagedLayer):
    """Convolution, optional batch normalization, activation (repeated), then 2-D pooling.

    The notebook's LeNet stacks two of these: `ConvBlock(6)` then `ConvBlock(16)`.
    With `batch_norm=True` the order is convolution -> batch normalization ->
    activation -> pooling, and the convolution drops its (redundant) bias. With
    `convolutions=2` the block is VGG's: two convolution units (each with its own
    normalization and activation) before the pooling; every unit after the first pads
    `"same"`, so the block's output size does not depend on `convolutions`.

    Args:
        filters: int. Number of convolution filters (output channels).
        kernel_size: int. Side of the square convolution window.
        padding: `"valid"` or `"same"`. Padding of the convolution.
        activation: str. Name of a Keras activation, e.g. `"sigmoid"` or `"relu"`.
        pooling: `"max"` or `"avg"`. Type of the subsampling.
        pool_size: int. Side and stride of the non-overlapping pooling window.
        batch_norm: bool. Whether to normalize the convolution output.
        convolutions: int from 1 to `MAX_CONVOLUTIONS` (8). Number of convolution units
            (convolution, normalization, activation) before the pooling.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> block = ConvBlock(filters=6, kernel_size=5)
    >>> tuple(block(keras.ops.zeros((2, 28, 28, 1))).shape)
    (2, 12, 12, 6)
    >>> ConvBlock(filters=6, kernel_size=3, convolutions=2).compute_output_shape((2, 28, 28, 1))
    (2, 13, 13, 6)
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
        convolutions: int = 1,
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
        if not is_convolution_count(convolutions):
            arguments.fail("convolutions", CONVOLUTIONS_RULE, convolutions)
        self.convolutions = convolutions

        # The first unit has the names of a one-convolution block's sublayers, so the weights
        # saved from one-convolution blocks (the shipped files too) keep their paths.
        self.conv, self.norm, self.activation_layer = self._unit(padding, suffix="")
        self.more_units = [
            stage
            for index in range(2, convolutions + 1)
            for stage in self._unit("same", suffix=f"_{index}")
            if stage is not None
        ]
        self.pool = POOLING_LAYERS[pooling](
            pool_size, strides=pool_size, dtype=self.dtype_policy, name="pool"
        )

    def _unit(self, padding: str, suffix: str) -> tuple:
        """One convolution, its batch normalization (or `None`) and its activation."""
        conv = keras.layers.Conv2D(
            self.filters,
            self.kernel_size,
            padding=padding,
            use_bias=not self.batch_norm,
            dtype=self.dtype_policy,
            name=f"conv{suffix}",
        )
        norm = (
            keras.layers.BatchNormalization(dtype=self.dtype_policy, name=f"norm{suffix}")
            if self.batch_norm
            else None
        )
        activation = keras.layers.Activation(
            self.activation, dtype=self.dtype_policy, name=f"activation{suffix}"
        )
        return conv, norm, activation

    def build(self, input_shape):
        height, width, channels = input_shape[1:]
        kernel_area = self.kernel_size**2
        weights = (kernel_area * (channels or 1) + 4) * self.filters
        weights += (self.convolutions - 1) * (kernel_area * self.filters + 4) * self.filters
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
        first_unit = [self.conv, self.norm, self.activation_layer]
        return [stage for stage in first_unit if stage is not None] + self.more_units + [self.pool]

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
                "convolutions": self.convolutions,
            }
        )
        return config
