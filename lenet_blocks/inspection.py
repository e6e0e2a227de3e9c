"""Look inside a built model: the notebook's per-layer output-shape walk."""

from __future__ import annotations

import keras

from lenet_blocks.layers.staged_layer import StagedLayer


def shape_walk(model: keras.Model, batch_size: int = 1, seed: int = 0) -> list[tuple[str, tuple]]:
    """Pushes one random batch through the model layer by layer, as the notebook does.

    Composite layers (`ConvBlock`, `ClassifierHead`) are opened, so the walk lists every
    convolution, pooling and dense output (24x24x6, 12x12x6, ... for the notebook's LeNet).
    Activation and normalization stages, which keep the shape, are left out.

    Args:
        model: a model from `build_lenet` with a static input shape.
        batch_size: int. Batch dimension of the random input.
        seed: int. Seed of the random input.

    Returns:
        A list of `(layer path, output shape)` pairs.

    Example:
    >>> from lenet_blocks import build_lenet
    >>> shape_walk(build_lenet())[0]
    ('block1/conv', (1, 24, 24, 6))
    """
    x = keras.random.uniform((batch_size, *model.input_shape[1:]), seed=seed)
    walk = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        stages = layer.stages if isinstance(layer, StagedLayer) else [layer]
        for stage in stages:
            x = stage(x)
            if isinstance(stage, keras.layers.Activation | keras.layers.BatchNormalization):
                continue
            path = f"{layer.name}/{stage.name}" if stage is not layer else layer.name
            walk.append((path, tuple(x.shape)))
    return walk


def format_shape_walk(walk: list[tuple[str, tuple]]) -> str:
    """The walk as aligned text lines, one per layer.

    Example:
    >>> print(format_shape_walk([("block1/conv", (1, 24, 24, 6))]))
    block1/conv  output shape  (1, 24, 24, 6)
    """
    width = max(len(path) for path, _ in walk)
    return "\n".join(f"{path:<{width}}  output shape  {shape}" for path, shape in walk)
