"""lenet_blocks: the LeNet family as reusable, serializable Keras 3 parts.

Example:
>>> import lenet_blocks as lb
>>> model = lb.build_lenet()
>>> model.count_params()
44426
"""

from lenet_blocks import layers
from lenet_blocks.builder import build_lenet
from lenet_blocks.inspection import shape_walk
from lenet_blocks.presets import get_preset, list_presets
from lenet_blocks.saving import load_model

__version__ = "0.1.0"

# Submodules with heavier imports (tf.data, keras-tuner, converters) load on first use:
# `lenet_blocks.training.train(...)` works after a plain `import lenet_blocks`.
_LAZY_SUBMODULES = ("datasets", "export", "pipeline", "search", "training", "tuning")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"lenet_blocks.{name}")
    raise AttributeError(f"module 'lenet_blocks' has no attribute {name!r}")


__all__ = [
    "__version__",
    "build_lenet",
    "get_preset",
    "layers",
    "list_presets",
    "load_model",
    "shape_walk",
]
