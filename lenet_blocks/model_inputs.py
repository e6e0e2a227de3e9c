"""Image inputs of the builders, `keras.applications` style (shared by every architecture)."""

from __future__ import annotations

import keras


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
