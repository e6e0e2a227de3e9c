"""`ConnectionTableConv2D`: a convolution whose output maps see only some input maps (C3)."""

from __future__ import annotations

import keras
import numpy as np

from lenet_blocks.layers import arguments
from lenet_blocks.layers.scaled_tanh import get_activation

# Table I of LeCun et al. (1998): the S2 maps (0-5) each C3 map (0-15) is connected to.
LENET5_C3_INPUTS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2),
    (1, 2, 3),
    (2, 3, 4),
    (3, 4, 5),
    (0, 4, 5),
    (0, 1, 5),
    (0, 1, 2, 3),
    (1, 2, 3, 4),
    (2, 3, 4, 5),
    (0, 3, 4, 5),
    (0, 1, 4, 5),
    (0, 1, 2, 5),
    (0, 1, 3, 4),
    (1, 2, 4, 5),
    (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)

# The same table as a boolean (input maps x output maps) matrix: 6 x 16, 60 connections.
LENET5_CONNECTION_TABLE: tuple[tuple[bool, ...], ...] = tuple(
    tuple(row in inputs for inputs in LENET5_C3_INPUTS) for row in range(6)
)


def _validate_table(table) -> list[list[bool]]:
    def fail(rule: str):
        raise ValueError(f"`table` must be {rule}. Received: table={table!r}")

    rows = table.tolist() if isinstance(table, np.ndarray) else table
    if isinstance(rows, str) or not isinstance(rows, list | tuple) or not rows:
        fail("a non-empty (input maps x output maps) matrix of bools, as nested lists")
    if not all(isinstance(row, list | tuple | np.ndarray) and len(row) > 0 for row in rows):
        fail("a non-empty (input maps x output maps) matrix of bools, as nested lists")
    rows = [list(row) for row in rows]
    if len({len(row) for row in rows}) != 1:
        fail("a rectangular matrix (every row as long as the first)")
    entries = [entry for row in rows for entry in row]
    if not all(
        isinstance(e, bool | np.bool_) or (isinstance(e, int) and e in (0, 1)) for e in entries
    ):
        fail("a matrix of bools (or 0/1 ints)")
    matrix = np.array(rows, dtype=bool)
    if not matrix.any(axis=1).all():
        fail(f"connected: input map(s) {np.flatnonzero(~matrix.any(axis=1)).tolist()} feed no map")
    if not matrix.any(axis=0).all():
        fail(f"connected: output map(s) {np.flatnonzero(~matrix.any(axis=0)).tolist()} see no map")
    return matrix.tolist()


@keras.saving.register_keras_serializable(package="lenet_blocks")
class ConnectionTableConv2D(keras.layers.Layer):
    """2-D convolution in which output map `k` sees only the input maps `table[:, k]` selects.

    LeNet-5's C3 (LeCun et al. 1998, Table I) connects each of its 16 maps to 3, 4 or 6 of
    the 6 S2 maps: 60 connections of 5x5 weights plus 16 biases, 1,516 parameters, instead of
    2,416 for a full convolution. The kernel variable holds only the connected weights, shape
    `(kernel_height, kernel_width, connections)`; `call` scatters them into a dense kernel whose
    other entries are constant zeros, so the gradient of an output map with respect to an
    input map outside its set is exactly zero, and `count_params()` is the real number of
    trainable scalars. The scatter is a product with a constant 0/1 matrix, which every
    exporter converts (a gather by index becomes `aten::ravel` on PyTorch, which neither
    `torch.onnx` nor OpenVINO converts).

    Args:
        table: `(input maps, output maps)` matrix of bools (nested lists or a NumPy array):
            `table[i][k]` says whether output map `k` sees input map `i`. Every input map must
            feed at least one output map and every output map see at least one input map. The
            number of output maps (filters) is the number of columns. Default (`None`): the
            paper's 6 x 16 table, `LENET5_CONNECTION_TABLE`.
        kernel_size: int or pair of ints. Size of the convolution window.
        padding: `"valid"` or `"same"`.
        activation: `"scaled_tanh"` (the paper's 1.7159·tanh(2a/3), default), the name of a
            Keras activation, or `None`.
        use_bias: bool. Whether each output map has a bias.
        kernel_initializer: Initializer of the weights; it is drawn for the dense kernel shape
            `(kh, kw, input maps, output maps)` (so fan-in and fan-out are those of the dense
            convolution) and the connected entries are kept.
        bias_initializer: Initializer of the biases.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> c3 = ConnectionTableConv2D(kernel_size=5)
    >>> tuple(c3(keras.ops.zeros((2, 14, 14, 6))).shape)
    (2, 10, 10, 16)
    >>> c3.count_params()  # 60 connections x 25 weights + 16 biases
    1516
    >>> pairs = ConnectionTableConv2D([[True, False], [False, True]], kernel_size=1)
    >>> pairs.build((None, 8, 8, 2))
    >>> pairs.count_params()  # 2 connections x 1 weight + 2 biases
    4
    """

    def __init__(
        self,
        table=None,
        kernel_size: int | tuple[int, int] = 5,
        padding: str = "valid",
        activation: str | None = "scaled_tanh",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.table = _validate_table(LENET5_CONNECTION_TABLE if table is None else table)
        self.kernel_size = arguments.int_pair("kernel_size", kernel_size)
        self.padding = arguments.one_of("padding", padding, arguments.PADDINGS)
        self.activation = activation
        self.use_bias = arguments.boolean("use_bias", use_bias)
        self.kernel_initializer = arguments.initializer("kernel_initializer", kernel_initializer)
        self.bias_initializer = arguments.initializer("bias_initializer", bias_initializer)
        self._activation_fn = get_activation(activation)

        matrix = np.array(self.table, dtype=bool)
        self._input_maps, self.filters = matrix.shape
        self.connections = int(matrix.sum())
        # Row `c` of the scatter matrix is one-hot at the (input map, output map) pair, in
        # row-major order, of the compact kernel's slice `c`.
        flat = matrix.reshape(-1)
        self._connected_positions = np.flatnonzero(flat).astype("int32")
        self._scatter_matrix = np.zeros((self.connections, flat.size), dtype="float32")
        self._scatter_matrix[np.arange(self.connections), self._connected_positions] = 1.0
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: self._input_maps})

    def build(self, input_shape):
        kh, kw = self.kernel_size
        dense_shape = (kh, kw, self._input_maps, self.filters)
        arguments.check_weights_fit(self, kh * kw * self._input_maps * self.filters)

        def compact_initializer(shape, dtype=None):
            dense = self.kernel_initializer(dense_shape, dtype=dtype)
            dense = keras.ops.reshape(dense, (kh, kw, self._input_maps * self.filters))
            return keras.ops.take(dense, self._connected_positions, axis=-1)

        self.kernel = self.add_weight(
            shape=(kh, kw, self.connections), initializer=compact_initializer, name="kernel"
        )
        self.bias = (
            self.add_weight(shape=(self.filters,), initializer=self.bias_initializer, name="bias")
            if self.use_bias
            else None
        )

    def dense_kernel(self):
        """The full `(kh, kw, input maps, output maps)` kernel, zero where not connected.

        Example:
        >>> layer = ConnectionTableConv2D([[True, False], [True, True]], kernel_size=1)
        >>> layer.build((None, 3, 3, 2))
        >>> (keras.ops.convert_to_numpy(layer.dense_kernel())[0, 0] != 0).tolist()
        [[True, False], [True, True]]
        """
        kh, kw = self.kernel_size
        kernel = keras.ops.convert_to_tensor(self.kernel)
        scatter = keras.ops.convert_to_tensor(self._scatter_matrix, dtype=kernel.dtype)
        dense = keras.ops.matmul(kernel, scatter)
        return keras.ops.reshape(dense, (kh, kw, self._input_maps, self.filters))

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        kernel = keras.ops.cast(self.dense_kernel(), self.compute_dtype)
        outputs = keras.ops.conv(
            x, kernel, strides=1, padding=self.padding, data_format="channels_last"
        )
        if self.use_bias:
            outputs = outputs + keras.ops.cast(self.bias, self.compute_dtype)
        return self._activation_fn(outputs)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        sizes = []
        for size, kernel in zip((height, width), self.kernel_size, strict=True):
            if size is None or self.padding == "same":
                sizes.append(size)
            else:
                sizes.append(size - kernel + 1)
        return (batch, *sizes, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "table": self.table,
                "kernel_size": list(self.kernel_size),
                "padding": self.padding,
                "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
