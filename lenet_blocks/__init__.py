"""lenet_blocks: the LeNet family as reusable, serializable Keras 3 parts.

Every public name loads on first use, so `import lenet_blocks` (and `lenet-blocks --help`)
does not pay for Keras, TensorFlow or keras-tuner until a name that needs them is used.

Example:
>>> import lenet_blocks as lb
>>> model = lb.build_lenet()
>>> model.count_params()
44426
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Public name -> the module that defines it.
_PUBLIC_NAMES = {
    "build_lenet": "lenet_blocks.builder",
    "decode_predictions": "lenet_blocks.inference",
    "preprocess_input": "lenet_blocks.inference",
    "pretrained_presets": "lenet_blocks.pretrained",
    "get_preset": "lenet_blocks.presets",
    "list_presets": "lenet_blocks.presets",
    "load_model": "lenet_blocks.saving",
    "shape_walk": "lenet_blocks.inspection",
}
# Submodules reachable as attributes after a plain `import lenet_blocks`.
_LAZY_SUBMODULES = (
    "datasets",
    "export",
    "inference",
    "layers",
    "pipeline",
    "prediction",
    "pretrained",
    "search",
    "training",
    "tuning",
)


def __getattr__(name: str):
    if name in _PUBLIC_NAMES:
        return getattr(importlib.import_module(_PUBLIC_NAMES[name]), name)
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"lenet_blocks.{name}")
    raise AttributeError(f"module 'lenet_blocks' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC_NAMES, *_LAZY_SUBMODULES])


__all__ = ["__version__", "layers", *_PUBLIC_NAMES]
