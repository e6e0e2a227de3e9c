"""`build_lenet`: the LeNet family as a Keras functional model, `keras.applications` style."""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras

from lenet_blocks import model_inputs, pretrained
from lenet_blocks.layers import ClassifierHead, ConvBlock, arguments
from lenet_blocks.layers.conv_block import (
    CONVOLUTIONS_RULE,
    POOLING_LAYERS,
    is_convolution_count,
)
from lenet_blocks.lenet5 import build_lenet5_1998
from lenet_blocks.model_inputs import GLOBAL_POOLING_LAYERS
from lenet_blocks.presets import get_preset
from lenet_blocks.validation import is_positive_int

# Presets whose "model" dict names a fixed `architecture` are built by its own function, which
# takes only the `keras.applications` arguments.
ARCHITECTURES = {"lenet5_1998": build_lenet5_1998}
# Architecture arguments a preset may leave out, and their values then.
_DEFAULTS = {
    "convolutions": 1, "pool_size": 2, "dropout": 0.0, "batch_norm": False,
    "include_rescaling": False,
}  # fmt: skip
_ARCHITECTURE_ARGS = (
    "input_shape", "classifier_activation", "activation", "filters", "kernel_size", "padding",
    "convolutions", "block_pooling", "pool_size", "units", "dropout", "batch_norm",
    "include_rescaling",
)  # fmt: skip


class _FromPreset:
    """Default of the architecture arguments: take the value from the preset."""

    def __repr__(self) -> str:
        return "<from preset>"


FROM_PRESET = _FromPreset()


def build_lenet(
    preset: str = "notebook",
    *,
    include_top: bool = True,
    weights: str | os.PathLike | None = None,
    input_tensor=None,
    input_shape: tuple[int | None, int | None, int] | None = FROM_PRESET,
    pooling: str | None = FROM_PRESET,
    classes: int = 10,
    class_names: Sequence[str] | None = None,
    classifier_activation: str | None = FROM_PRESET,
    activation: str = FROM_PRESET,
    filters: Sequence[int] = FROM_PRESET,
    kernel_size: int | Sequence[int] = FROM_PRESET,
    padding: str | Sequence[str] = FROM_PRESET,
    convolutions: int | Sequence[int] = FROM_PRESET,
    block_pooling: str = FROM_PRESET,
    pool_size: int = FROM_PRESET,
    units: Sequence[int] = FROM_PRESET,
    dropout: float = FROM_PRESET,
    batch_norm: bool = FROM_PRESET,
    include_rescaling: bool = FROM_PRESET,
    name: str = "lenet",
) -> keras.Model:
    """Instantiates a LeNet as a Keras functional model.

    With no argument it is the notebook's network: conv 6@5x5 -> max pool -> conv 16@5x5 ->
    max pool -> dense 120 -> dense 84 -> dense 10, sigmoid everywhere, 44,426 parameters, fed
    raw 0-255 pixels. Every architecture argument left at `<from preset>` takes the preset's
    value (see `list_presets()`); any argument given overrides it.

    Args:
        preset: str. Named configuration, one of `list_presets()`. A fixed-topology preset
            (`"lenet5_1998"`, see `lenet_blocks.lenet5`) takes only `include_top`,
            `input_tensor`, `input_shape`, `pooling`, `classes` and `name`; any other
            argument given raises a `ValueError`.
        include_top: bool. Whether to include the fully connected classifier head.
        weights: `None` (random initialization), `"fashion_mnist"` (the preset's shipped
            weights, see `lenet_blocks.pretrained`), or the path of a `.weights.h5` file. A
            shipped set needs `classes=10`, the preset's architecture and, with
            `include_top=True`, its input shape; with `include_top=False` it loads the
            convolution blocks' weights at any input size the preset allows.
        input_tensor: optional Keras tensor (output of `keras.Input()`) to use as image input.
        input_shape: `(height, width, channels)`. Height and width may be `None` when
            `include_top=False` or a global `pooling` is set. Preset default: `(28, 28, 1)`.
        pooling: `None`, `"avg"` or `"max"`. Global pooling after the convolution blocks
            (then the head, if any, sees a vector and accepts any image size). Left unset,
            the preset's: none, except `"avg"` for `tuned_gap`; `None` given means none.
        classes: int. Number of classes of the head.
        class_names: optional sequence of `classes` names, saved with the model (its head
            carries them), so that predictions name classes after a reload. Default: none,
            except Fashion-MNIST's with `weights="fashion_mnist"`.
        classifier_activation: str or `None`. Activation of the head's output layer
            (`"softmax"`, `"sigmoid"`, ...); `None` returns logits.
        activation: str. Keras activation of every hidden layer (`"sigmoid"`, `"tanh"`, ...).
        filters: sequence of ints. Filters of each convolution block; its length sets the
            number of blocks.
        kernel_size: int, or one int per block. Side of the square convolution windows.
        padding: `"valid"`/`"same"`, or one per block. Padding of each block's first
            convolution; its later ones (see `convolutions`) pad `"same"`.
        convolutions: int from 1 to 8, or one per block. Convolutions of each block before
            its pooling (VGG-style blocks with 2); each has its own batch normalization and
            activation. Preset default: 1.
        block_pooling: `"max"` or `"avg"`. Subsampling inside each block.
        pool_size: int. Side and stride of the pooling windows inside the blocks.
        units: sequence of ints. Widths of the hidden dense layers of the head.
        dropout: float in `[0, 1)`. Dropout rate after each hidden dense layer.
        batch_norm: bool. Batch normalization after each convolution.
        include_rescaling: bool. Whether the model scales inputs by 1/255 itself, so that raw
            uint8 pixels can be fed directly (the notebook feeds 0-255 values without it).
        name: str. Name of the model.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for an unknown preset or an invalid argument; the message names the
            argument, the rule and the value received.

    Example:
    >>> model = build_lenet()
    >>> model.count_params()
    44426
    >>> build_lenet("d2l", classes=5).output_shape
    (None, 5)
    >>> build_lenet(convolutions=(2, 1), padding="same").count_params()
    108692
    """
    given = {
        "input_shape": input_shape,
        "classifier_activation": classifier_activation,
        "activation": activation,
        "filters": filters,
        "kernel_size": kernel_size,
        "padding": padding,
        "convolutions": convolutions,
        "block_pooling": block_pooling,
        "pool_size": pool_size,
        "units": units,
        "dropout": dropout,
        "batch_norm": batch_norm,
        "include_rescaling": include_rescaling,
    }
    named_weights = pretrained.named_weight_set(weights)
    if named_weights:
        _check_named_weights(preset, weights, include_top, given, pooling, classes)
        if class_names is None and include_top:
            class_names = pretrained.WEIGHT_SET_CLASS_NAMES[weights]
    if class_names is not None and not include_top:
        raise ValueError(
            "`class_names` applies to a model with its head (include_top=True). "
            f"Received: class_names={class_names!r} with include_top=False"
        )
    head = {"classes": classes, "class_names": class_names}
    model = _from_preset(preset, given, include_top, input_tensor, pooling, head, name)
    if weights is not None:
        full_model = None
        if named_weights and not include_top:
            full_model = _from_preset(preset, {}, True, None, FROM_PRESET, head, name)
        pretrained.load_weights(model, weights, preset=preset, full_model=full_model)
    return model


def _check_named_weights(preset, weights, include_top, given, pooling, classes) -> None:
    """`keras.applications`' rules for a shipped weight set."""
    expected_classes = pretrained.WEIGHT_SET_CLASSES[weights]
    if classes != expected_classes:
        raise ValueError(
            f"`classes` must be {expected_classes} with weights={weights!r} (the classes it was "
            f"trained on). Received: classes={classes!r}"
        )
    preset_model = get_preset(preset)["model"]
    for arg, value in given.items():
        if arg == "input_shape" and not include_top:
            continue
        if value is not FROM_PRESET and value != preset_model.get(arg, _DEFAULTS.get(arg)):
            raise ValueError(
                f"`{arg}` must be left at preset {preset!r}'s value with weights={weights!r}"
                + (" and include_top=True" if arg == "input_shape" else "")
                + f" (the weights were trained for it). Received: {arg}={value!r}"
            )
    preset_pooling = preset_model.get("pooling")
    if include_top and pooling is not FROM_PRESET and pooling != preset_pooling:
        raise ValueError(
            f"`pooling` must be left at preset {preset!r}'s value ({preset_pooling!r}) with "
            f"weights={weights!r} and include_top=True. Received: pooling={pooling!r}"
        )


def _from_preset(preset, given, include_top, input_tensor, pooling, head, name) -> keras.Model:
    """The preset's model with the arguments in `given` that are not `FROM_PRESET`."""
    config = get_preset(preset)["model"]
    architecture = config.pop("architecture", None)
    preset_pooling = config.pop("pooling", None)
    pooling = preset_pooling if pooling is FROM_PRESET else pooling
    given = {arg: given.get(arg, FROM_PRESET) for arg in _ARCHITECTURE_ARGS}
    input_shape = given["input_shape"]
    if architecture is not None:
        return _build_architecture(
            preset,
            architecture,
            config,
            given,
            include_top=include_top,
            input_tensor=input_tensor,
            pooling=pooling,
            name=name,
            **head,
        )
    config.update({key: value for key, value in given.items() if value is not FROM_PRESET})
    for arg, default in _DEFAULTS.items():
        config.setdefault(arg, default)
    if input_tensor is not None and input_shape is FROM_PRESET:
        config["input_shape"] = model_inputs.shape_of_tensor(input_tensor)
    return _build(
        include_top=include_top,
        input_tensor=input_tensor,
        pooling=pooling,
        name=name,
        **head,
        **config,
    )


def _build_architecture(preset, architecture, config, given, **applications_args):
    """Builds a fixed-topology preset (e.g. LeNet-5): only `input_shape` may be overridden."""
    for arg, value in given.items():
        if arg != "input_shape" and value is not FROM_PRESET:
            raise ValueError(
                f"`{arg}` must be left unset for preset {preset!r}: its {architecture} topology "
                f"is fixed (only include_top, input_tensor, input_shape, pooling, classes, "
                f"class_names and name apply). Received: {arg}={value!r}"
            )
    input_shape = given["input_shape"]
    if input_shape is FROM_PRESET:
        has_tensor = applications_args["input_tensor"] is not None
        input_shape = None if has_tensor else config["input_shape"]
    return ARCHITECTURES[architecture](input_shape=input_shape, **applications_args)


def _build(
    *,
    include_top,
    input_tensor,
    input_shape,
    pooling,
    classes,
    class_names,
    classifier_activation,
    activation,
    filters,
    kernel_size,
    padding,
    convolutions,
    block_pooling,
    pool_size,
    units,
    dropout,
    batch_norm,
    include_rescaling,
    name,
) -> keras.Model:
    # What is about the whole model: the per-block forms, the head's presence, the input size.
    # Each layer checks its own values again when it is made.
    filters = arguments.positive_ints("filters", filters, allow_empty=False)
    blocks = len(filters)
    kernel_sizes = _per_block("kernel_size", kernel_size, blocks, is_positive_int, "a positive int")
    paddings = _per_block(
        "padding",
        padding,
        blocks,
        lambda p: p in arguments.PADDINGS,
        f"one of {arguments.PADDINGS}",
    )
    repeats = _per_block(
        "convolutions",
        convolutions,
        blocks,
        is_convolution_count,
        CONVOLUTIONS_RULE,
    )
    arguments.positive_ints("units", units)
    arguments.one_of("block_pooling", block_pooling, tuple(POOLING_LAYERS))
    arguments.one_of("pooling", pooling, (None, *GLOBAL_POOLING_LAYERS))
    arguments.activation_name("activation", activation)
    arguments.activation_name("classifier_activation", classifier_activation, allow_none=True)
    for arg, value in (
        ("include_top", include_top),
        ("batch_norm", batch_norm),
        ("include_rescaling", include_rescaling),
    ):
        arguments.boolean(arg, value)
    arguments.positive_int("pool_size", pool_size)
    arguments.positive_int("classes", classes)
    arguments.rate("dropout", dropout)
    model_inputs.check_input_shape(
        input_shape,
        minimum_input_size(kernel_sizes, paddings, pool_size),
        needs_static=include_top and not pooling,
        rule_detail=f"for kernel_size={tuple(kernel_sizes)}, padding={tuple(paddings)}, "
        f"pool_size={pool_size}",
    )

    image_input = model_inputs.image_input(input_tensor, input_shape)

    x = image_input
    if include_rescaling:
        x = keras.layers.Rescaling(1.0 / 255, name="rescaling")(x)
    shared = {"activation": activation, "pooling": block_pooling, "pool_size": pool_size}
    per_block = zip(filters, kernel_sizes, paddings, repeats, strict=True)
    for index, (width, size, pad, repeat) in enumerate(per_block, start=1):
        x = ConvBlock(
            width,
            size,
            pad,
            batch_norm=batch_norm,
            convolutions=repeat,
            name=f"block{index}",
            **shared,
        )(x)
    if pooling is not None:
        x = GLOBAL_POOLING_LAYERS[pooling](name=f"global_{pooling}_pool")(x)
    if include_top:
        x = ClassifierHead(
            units=units,
            classes=classes,
            activation=activation,
            classifier_activation=classifier_activation,
            dropout=float(dropout),
            class_names=class_names,
            name="head",
        )(x)

    return model_inputs.functional_model(input_tensor, image_input, x, name)


def minimum_input_size(kernel_sizes: Sequence[int], paddings: Sequence[str], pool_size: int) -> int:
    """Smallest height (or width) whose every block output is non-empty.

    Args:
        kernel_sizes: kernel side of each block.
        paddings: `"valid"` or `"same"` for each block.
        pool_size: pooling window side and stride.

    Example:
    >>> minimum_input_size([5, 5], ["valid", "valid"], 2)
    16
    """
    size = 1
    for kernel, pad in zip(reversed(kernel_sizes), reversed(paddings), strict=True):
        size *= pool_size  # pooling needs pool_size rows for one output row
        if pad == "valid":
            size += kernel - 1
    return size


def _per_block(arg: str, value, blocks: int, is_valid, rule: str) -> tuple:
    values = tuple(value) if isinstance(value, list | tuple) else (value,) * blocks
    if len(values) != blocks or not all(is_valid(v) for v in values):
        raise ValueError(
            f"`{arg}` must be {rule}, or a sequence of {blocks} such values (one per block). "
            f"Received: {arg}={value!r}"
        )
    return values
