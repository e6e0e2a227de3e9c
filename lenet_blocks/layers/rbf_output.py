"""`RBFOutput`: LeNet-5's Euclidean radial basis function output layer."""

from __future__ import annotations

import math

import keras
import numpy as np

from lenet_blocks.layers import arguments


def _is_prime(number: int) -> bool:
    return number >= 2 and all(number % d for d in range(2, math.isqrt(number) + 1))


def paley_hadamard(order: int) -> np.ndarray:
    """The Paley (type I) Hadamard matrix of `order` = q + 1, q a prime with q % 4 == 3.

    Its rows are +1/-1 vectors, pairwise orthogonal (`H @ H.T == order * I`), so any two rows
    differ in exactly `order / 2` places. Row 0 is all ones; every other row has as many +1 as
    -1 entries.

    Args:
        order: int. q + 1 for a prime q congruent to 3 modulo 4 (4, 8, 12, 20, 24, 32, 44, 48,
            60, 68, 72, 80, 84, ...).

    Raises:
        ValueError: if no Paley type I matrix of that order exists.

    Example:
    >>> h = paley_hadamard(84)
    >>> bool((h @ h.T == 84 * np.eye(84)).all())
    True
    """
    q = order - 1 if isinstance(order, int) and not isinstance(order, bool) else None
    if q is None or not _is_prime(q) or q % 4 != 3:
        raise ValueError(
            "`order` must be q + 1 for a prime q with q % 4 == 3 (e.g. 84). "
            f"Received: order={order!r}"
        )
    squares = {(i * i) % q for i in range(1, q)}
    character = np.array([0] + [1 if a in squares else -1 for a in range(1, q)])
    rows = np.arange(q)
    jacobsthal = character[(rows[None, :] - rows[:, None]) % q]
    skew = np.zeros((order, order), dtype="int64")
    skew[0, 1:] = 1
    skew[1:, 0] = -1
    skew[1:, 1:] = jacobsthal
    return np.eye(order, dtype="int64") + skew


def default_codes(units: int, length: int) -> np.ndarray:
    """The fixed +1/-1 codes `RBFOutput` uses when none are given: rows 1..units of
    `paley_hadamard(length)`.

    Any two codes differ in exactly `length / 2` entries (42 of 84 for LeNet-5's F6, a squared
    Euclidean distance of 168 between codes), and each code has as many +1 as -1 entries.

    Args:
        units: int. Number of codes (classes), at most `length - 1`.
        length: int. Length of each code (the RBF input width), see `paley_hadamard`.

    Raises:
        ValueError: if `length` is not a Paley order or `units` is too large for it.

    Example:
    >>> codes = default_codes(10, 84)
    >>> codes.shape, int((codes[0] != codes[1]).sum())
    ((10, 84), 42)
    """
    if not (isinstance(units, int) and not isinstance(units, bool) and 1 <= units < length):
        raise ValueError(
            f"`units` must be between 1 and {length - 1} for the default codes of length "
            f"{length}; pass `codes` explicitly for more. Received: units={units!r}"
        )
    return paley_hadamard(length)[1 : units + 1].astype("float32")


def _validate_codes(codes, units):
    rows = codes.tolist() if isinstance(codes, np.ndarray) else codes
    valid = (
        isinstance(rows, list | tuple)
        and len(rows) == units
        and all(isinstance(row, list | tuple) and len(row) > 0 for row in rows)
        and len({len(row) for row in rows}) == 1
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for row in rows
            for v in row
        )
    )
    if not valid:
        raise ValueError(
            f"`codes` must be None or a ({units} x features) matrix of finite numbers (one row "
            f"per unit), as nested lists. Received: codes={codes!r}"
        )
    return [[float(v) for v in row] for row in rows]


@keras.saving.register_keras_serializable(package="lenet_blocks")
class RBFOutput(keras.layers.Layer):
    """Euclidean RBF units: output `i` is the squared distance from the input to code `i`.

    y_i = sum_j (x_j - w_ij)^2 (LeCun et al. 1998, eq. 7). The smallest output is the
    predicted class. The codes `w_i` are fixed by default, so the layer has no trainable
    parameters and `count_params()` is 0; with `trainable_codes=True` they become a trainable
    `(units, features)` weight that starts at the codes.

    Train it with `lenet_blocks.losses.RBFLoss` (the paper's eq. 9) and measure it with
    `lenet_blocks.losses.RBFAccuracy` (argmin distance); `lenet_blocks.objectives` picks both
    for any model whose last layer is an `RBFOutput`.

    Args:
        units: int. Number of RBF units (classes).
        codes: `None`, or a `(units, features)` matrix of numbers (nested lists or a NumPy
            array), one code per unit. `None` (default): `default_codes(units, features)`,
            +1/-1 rows of a Paley Hadamard matrix, any two at Hamming distance features / 2
            (42 for 84 features); then `features` must be a Paley order (84, 80, 72, ...).
        trainable_codes: bool. Whether the codes are trained.
        class_names: optional sequence of `units` strings naming the classes, saved with the
            model (`lenet_blocks.inference.model_class_names`).
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> rbf = RBFOutput(units=2, codes=[[1.0, 1.0], [-1.0, -1.0]])
    >>> keras.ops.convert_to_numpy(rbf(keras.ops.convert_to_tensor([[1.0, 0.0]]))).tolist()
    [[1.0, 5.0]]
    >>> rbf = RBFOutput(10)
    >>> tuple(rbf(keras.ops.zeros((1, 84))).shape), rbf.count_params()
    ((1, 10), 0)
    """

    def __init__(
        self,
        units: int = 10,
        codes=None,
        trainable_codes: bool = False,
        class_names=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = arguments.positive_int("units", units)
        self.class_names = arguments.class_names(class_names, units)
        self.codes = None if codes is None else _validate_codes(codes, units)
        self.trainable_codes = arguments.boolean("trainable_codes", trainable_codes)
        self._code_values = None
        self.input_spec = keras.layers.InputSpec(min_ndim=2)

    def build(self, input_shape):
        features = input_shape[-1]
        arguments.check_weights_fit(self, self.units * (features or 1))
        if self.codes is None:
            if features is None:
                raise ValueError(
                    "`RBFOutput` needs a known input width to make its default codes. "
                    f"Received: input_shape={tuple(input_shape)}"
                )
            values = default_codes(self.units, features)
        else:
            values = np.array(self.codes, dtype="float32")
            if features is not None and features != values.shape[1]:
                raise ValueError(
                    f"`codes` must have one entry per input feature ({features}). Received: "
                    f"codes of shape {values.shape} for input_shape={tuple(input_shape)}"
                )
        self._code_values = values
        if self.trainable_codes:
            self.code_weights = self.add_weight(
                shape=values.shape,
                initializer=lambda shape, dtype=None: keras.ops.convert_to_tensor(values, dtype),
                name="codes",
            )
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: values.shape[1]})

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        if self.trainable_codes:
            codes = keras.ops.cast(self.code_weights, self.compute_dtype)
        else:
            codes = keras.ops.convert_to_tensor(self._code_values, dtype=self.compute_dtype)
        differences = keras.ops.expand_dims(x, -2) - codes
        return keras.ops.sum(keras.ops.square(differences), axis=-1)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "codes": self.codes,
                "trainable_codes": self.trainable_codes,
                "class_names": None if self.class_names is None else list(self.class_names),
            }
        )
        return config
