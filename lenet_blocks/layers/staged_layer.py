"""`StagedLayer`: shared base of the composite layers (a fixed chain of sublayers)."""

from __future__ import annotations

import keras


class StagedLayer(keras.layers.Layer):
    """A layer that applies its `stages` (sublayers) one after another.

    Subclasses create their sublayers in `__init__` and list them, in order, in the `stages`
    property; this base builds them, calls them and derives the output shape from them, so
    symbolic and eager shapes always agree. Not registered: it is never saved on its own.
    """

    @property
    def stages(self) -> list[keras.layers.Layer]:
        """The sublayers in the order `call` applies them."""
        raise NotImplementedError

    def build(self, input_shape):
        shape = input_shape
        for stage in self.stages:
            stage.build(shape)
            shape = stage.compute_output_shape(shape)

    def call(self, inputs, training=None):
        x = inputs
        for stage in self.stages:
            x = stage(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for stage in self.stages:
            shape = stage.compute_output_shape(shape)
        return shape
