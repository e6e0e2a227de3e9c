"""The original LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998) as a Keras functional model."""

from __future__ import annotations

import keras

from lenet_blocks import (
    losses,  # noqa: F401  (registers RBFLoss/RBFAccuracy for compiled files)
    model_inputs,
)
from lenet_blocks.layers import arguments
from lenet_blocks.layers.connection_table_conv import ConnectionTableConv2D
from lenet_blocks.layers.rbf_output import RBFOutput
from lenet_blocks.layers.scaled_tanh import scaled_tanh
from lenet_blocks.layers.subsampling import Subsampling
from lenet_blocks.model_inputs import GLOBAL_POOLING_LAYERS

ARCHITECTURE = "lenet5_1998"
# The paper feeds a 32x32 field with background -0.1 and foreground 1.175 (mean about 0,
# variance about 1 on MNIST): raw pixels x become x * 1.275 / 255 - 0.1.
INPUT_SCALE = 1.275 / 255
INPUT_OFFSET = -0.1
PADDING = 2
MINIMUM_SIZE = 28  # padded to 32: C1 28, S2 14, C3 10, S4 5, C5 1
F6_UNITS = 84
MAXIMUM_CLASSES = F6_UNITS - 1  # rows of the order-84 Paley Hadamard matrix besides all ones


def build_lenet5_1998(
    *,
    include_top: bool = True,
    input_tensor=None,
    input_shape: tuple[int | None, int | None, int] | None = None,
    pooling: str | None = None,
    classes: int = 10,
    class_names=None,
    name: str = ARCHITECTURE,
) -> keras.Model:
    """LeNet-5 as in LeCun et al. (1998), for 28x28 images (padded to 32x32 in the model).

    Input (raw 0-255 pixels) -> zero padding 2 -> rescaling to [-0.1, 1.175] -> C1 6@28x28
    (5x5 convolution, scaled tanh) -> S2 6@14x14 (trainable subsampling) -> C3 16@10x10
    (5x5 convolution with the paper's connection table) -> S4 16@5x5 -> C5 120@1x1 (5x5
    convolution) -> flatten -> F6 84 (scaled tanh) -> RBF 10 (squared distances to fixed
    +1/-1 codes; the smallest is the predicted class). 60,000 trainable parameters.

    Args:
        include_top: bool. Whether to include F6 and the RBF output. Without them the
            model ends with C5's `(1, 1, 120)` feature map (or a vector with `pooling`).
        input_tensor: optional Keras tensor (output of `keras.Input()`) to use as image input.
        input_shape: `(height, width, channels)`, each side at least 28. Height and width may
            be `None` when `include_top=False` or a global `pooling` is set. Default: the
            shape of `input_tensor`, else `(28, 28, 1)`.
        pooling: `None`, `"avg"` or `"max"`. Global pooling after C5.
        classes: int. Number of RBF output units, at most 83 (one code per class from the
            order-84 Paley Hadamard matrix).
        class_names: optional sequence of `classes` names, saved with the RBF output layer.
        name: str. Name of the model.

    Returns:
        A `keras.Model` whose outputs are distances (smaller is better); compile it with
        `lenet_blocks.objectives.loss_and_metrics(model)`.

    Raises:
        ValueError: for an invalid argument; the message names the argument, the rule and the
            value received.

    Example:
    >>> model = build_lenet5_1998()
    >>> model.output_shape, sum(int(w.numpy().size) for w in model.trainable_weights)
    ((None, 10), 60000)
    >>> build_lenet5_1998(include_top=False).output_shape
    (None, 1, 1, 120)
    """
    arguments.boolean("include_top", include_top)
    arguments.one_of("pooling", pooling, (None, *GLOBAL_POOLING_LAYERS))
    if not (
        isinstance(classes, int)
        and not isinstance(classes, bool)
        and 1 <= classes <= MAXIMUM_CLASSES
    ):
        raise ValueError(
            f"`classes` must be an int from 1 to {MAXIMUM_CLASSES} (one fixed RBF code per "
            f"class). Received: classes={classes!r}"
        )
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty str. Received: name={name!r}")
    if input_shape is None:
        input_shape = (
            model_inputs.shape_of_tensor(input_tensor) if input_tensor is not None else (28, 28, 1)
        )
    model_inputs.check_input_shape(
        input_shape,
        MINIMUM_SIZE,
        needs_static=include_top and pooling is None,
        rule_detail="for LeNet-5",
    )

    image_input = model_inputs.image_input(input_tensor, input_shape)

    x = keras.layers.ZeroPadding2D(PADDING, name="padding")(image_input)
    x = keras.layers.Rescaling(INPUT_SCALE, offset=INPUT_OFFSET, name="rescaling")(x)
    x = keras.layers.Conv2D(6, 5, activation=scaled_tanh, name="c1")(x)
    x = Subsampling(2, name="s2")(x)
    x = ConnectionTableConv2D(kernel_size=5, name="c3")(x)
    x = Subsampling(2, name="s4")(x)
    x = keras.layers.Conv2D(120, 5, activation=scaled_tanh, name="c5")(x)
    if pooling is not None:
        x = GLOBAL_POOLING_LAYERS[pooling](name=f"global_{pooling}_pool")(x)
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(F6_UNITS, activation=scaled_tanh, name="f6")(x)
        x = RBFOutput(classes, class_names=class_names, name="rbf")(x)

    return model_inputs.functional_model(input_tensor, image_input, x, name)
