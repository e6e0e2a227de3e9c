"""Image inputs of the builders, `keras.applications` style (shared by every architecture)."""

from __future__ import annotations

import keras

from lenet_blocks.validation import is_positive_int


def shape_of_tensor(tensor) -> tuple:
    """`(height, width, channels)` of a 4-D `input_tensor`; `ValueError` for another rank."""
    shape = tuple(tensor.shape)
    if len(shape) != 4:
        raise ValueError(
            "`input_tensor` must be a 4-D tensor (batch, height, width, channels). "
            f"Received: input_tensor with shape {shape}"
        )
    return shape[1:]


def image_input(input_tensor, input_shape) -> keras.KerasTensor:
    """The tensor the graph starts from: a new `keras.Input`, or `input_tensor` itself."""
    if input_tensor is None:
        return keras.Input(shape=tuple(input_shape), name="images")
    if keras.backend.is_keras_tensor(input_tensor):
        return input_tensor
    return keras.Input(tensor=input_tensor, shape=tuple(input_shape))


def functional_model(input_tensor, start, outputs, name: str) -> keras.Model:
    """A `keras.Model` from the graph's source inputs to `outputs`.

    One input is passed as a tensor, not a list: Keras then accepts a plain array in `call`.
    """
    inputs = [start] if input_tensor is None else keras.utils.get_source_inputs(input_tensor)
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs, name=name)


GLOBAL_POOLING_LAYERS = {
    "avg": keras.layers.GlobalAveragePooling2D,
    "max": keras.layers.GlobalMaxPooling2D,
}


def check_input_shape(input_shape, minimum: int, needs_static: bool, rule_detail: str) -> None:
    """Raises `ValueError` unless `input_shape` is a valid `(height, width, channels)`.

    Height and width may be `None` unless `needs_static` (the head flattens); known ones must be
    at least `minimum` (`rule_detail` says why, e.g. "for LeNet-5").

    Example:
    >>> check_input_shape((4, 4, 1), 16, needs_static=True, rule_detail="for LeNet")
    Traceback (most recent call last):
    ...
    ValueError: `input_shape` must have height and width of at least 16 for LeNet. Received: ...
    """
    shape = tuple(input_shape) if isinstance(input_shape, list | tuple) else None
    dims_valid = shape is not None and all(d is None or is_positive_int(d) for d in shape)
    if not dims_valid or len(shape) != 3 or shape[2] is None:
        raise ValueError(
            "`input_shape` must be a tuple (height, width, channels) of positive ints "
            f"(height and width may be None). Received: input_shape={input_shape!r}"
        )
    if needs_static and None in shape[:2]:
        raise ValueError(
            "`input_shape` must have a known height and width when the head flattens; use "
            "`include_top=False` or a global `pooling` ('avg' or 'max') for any image size. "
            f"Received: input_shape={input_shape!r}"
        )
    if any(d is not None and d < minimum for d in shape[:2]):
        raise ValueError(
            f"`input_shape` must have height and width of at least {minimum} {rule_detail}. "
            f"Received: input_shape={input_shape!r}"
        )
