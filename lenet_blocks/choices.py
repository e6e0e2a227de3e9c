"""The named choices of settings and commands, importable without Keras or TensorFlow.

The CLI builds its `--help` from these, so `lenet-blocks --help` answers at once; the modules
that implement each choice import it from here.

Example:
>>> OPTIMIZERS
('sgd', 'adam', 'adamw', 'rmsprop')
"""

from __future__ import annotations

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
LR_SCHEDULES = ("constant", "cosine", "warmup_cosine", "one_cycle")
AUGMENTATIONS = ("none", "translate", "translate_zoom")
MIXINGS = ("none", "mixup", "cutmix")
DISTRIBUTIONS = ("none", "mirrored", "multi-worker")
TUNER_KINDS = ("random", "bayesian", "hyperband")
EXPORT_FORMATS = ("savedmodel", "tflite", "onnx", "openvino", "keras-hub")
COLOR_MODES = ("grayscale", "rgb")  # of an image folder's images


def check_choice(arg: str, value, choices: tuple) -> None:
    """Raises `ValueError` naming `arg` unless `value` is one of `choices`.

    Example:
    >>> check_choice("padding", "full", ("valid", "same"))
    Traceback (most recent call last):
    ...
    ValueError: `padding` must be one of ('valid', 'same'). Received: padding='full'
    """
    if isinstance(value, bool) or value not in choices:
        raise ValueError(f"`{arg}` must be one of {choices}. Received: {arg}={value!r}")
