"""Named LeNet configurations, as plain dicts.

Each preset has a one-line `description`, the `model` keyword arguments of
`build_lenet`, and the `training` settings it was published or tuned with (used as
defaults by `lenet-blocks train`).
"""

from __future__ import annotations

import copy

# Shared by the presets derived from them (`get_preset` hands out deep copies).
_D2L_MODEL = {
    "input_shape": (28, 28, 1),
    "filters": (6, 16),
    "kernel_size": 5,
    "padding": ("same", "valid"),
    "block_pooling": "avg",
    "activation": "sigmoid",
    "units": (120, 84),
    "classifier_activation": "softmax",
    "include_rescaling": True,
}
_MODERN_MODEL = {**_D2L_MODEL, "block_pooling": "max", "activation": "relu"}
_TUNED_MODEL = {
    "input_shape": (28, 28, 1),
    "filters": (24, 64, 64),
    "kernel_size": 3,
    "padding": "same",
    "block_pooling": "avg",
    "batch_norm": True,
    "activation": "relu",
    "units": (60, 42),
    "dropout": 0.1,
    "classifier_activation": "softmax",
    "include_rescaling": True,
}

PRESETS: dict[str, dict] = {
    "notebook": {
        "description": (
            "The TF2 notebook's LeNet: conv 6@5x5 and 16@5x5, max pooling, dense 120/84/10, "
            "sigmoid everywhere, raw 0-255 pixels in (44,426 parameters)."
        ),
        "model": {
            "input_shape": (28, 28, 1),
            "filters": (6, 16),
            "kernel_size": 5,
            "padding": "valid",
            "block_pooling": "max",
            "activation": "sigmoid",
            "units": (120, 84),
            "classifier_activation": "sigmoid",
        },
        "training": {"optimizer": "sgd", "learning_rate": 0.9, "batch_size": 32, "epochs": 5},
    },
    "d2l": {
        "description": (
            "The d2l.ai LeNet: padding 2 on the first convolution, average pooling, sigmoid, "
            "softmax output (61,706 parameters)."
        ),
        "model": _D2L_MODEL,
        "training": {"optimizer": "sgd", "learning_rate": 0.9, "batch_size": 256, "epochs": 10},
    },
    "modern": {
        "description": (
            "The d2l.ai LeNet trained the modern way: ReLU and max pooling instead of sigmoid "
            "and average pooling, softmax output, inputs scaled in the model; Adam with a "
            "cosine schedule; its time to 0.90 test accuracy is in docs/benchmarks.md "
            "(61,706 parameters)."
        ),
        "model": _MODERN_MODEL,
        "training": {
            "optimizer": "adam",
            "learning_rate": 0.003,
            "lr_schedule": "cosine",
            "batch_size": 128,
            "epochs": 12,
        },
    },
    "fast": {
        "description": (
            "The modern preset trained for time to accuracy on a CPU: batches of 512 (fast "
            "steps on TensorFlow), Adam at a learning rate scaled up with the batch, a "
            "one-cycle schedule over 5 epochs (61,706 parameters)."
        ),
        "model": _MODERN_MODEL,
        "training": {
            "optimizer": "adam",
            "learning_rate": 0.01,
            "lr_schedule": "one_cycle",
            "batch_size": 512,
            "epochs": 5,
        },
    },
    "lenet5_1998": {
        "description": (
            "LeNet-5 of LeCun et al. (1998): padding to 32x32, inputs scaled to [-0.1, 1.175], "
            "scaled tanh, trainable subsampling, C3 connection table, RBF output with fixed "
            "codes (60,000 trainable parameters)."
        ),
        "model": {"architecture": "lenet5_1998", "input_shape": (28, 28, 1)},
        "training": {"optimizer": "sgd", "learning_rate": 0.005, "batch_size": 32, "epochs": 5},
    },
    "tuned": {
        "description": (
            "Best of the documented HyperLeNet search under 100,000 parameters (docs/tuning.md): "
            "three 3x3 'same' blocks 24/64/64 with batch norm and average pooling, ReLU, dense "
            "60/42, dropout 0.1, softmax, inputs scaled in the model (89,124 parameters)."
        ),
        "model": _TUNED_MODEL,
        "training": {
            "optimizer": "adam",
            "learning_rate": 0.0023121,
            "batch_size": 128,
            "epochs": 15,
        },
    },
    "tuned_gap": {
        "description": (
            "Best of the documented cosine-schedule HyperLeNet search under 100,000 parameters "
            "(docs/tuning.md): three 3x3 'same' blocks 24/64/128 with "
            "batch norm and average pooling, ReLU, global average pooling, dense 60/42, dropout "
            "0.1, softmax, inputs scaled in the model (99,364 parameters)."
        ),
        "model": {**_TUNED_MODEL, "filters": (24, 64, 128), "pooling": "avg"},
        "training": {
            "optimizer": "adam",
            "learning_rate": 0.0023121,
            "lr_schedule": "cosine",
            "batch_size": 128,
            "epochs": 20,
        },
    },
}


def list_presets() -> list[str]:
    """Names of the presets `build_lenet` accepts, in a stable order.

    Example:
    >>> "notebook" in list_presets()
    True
    """
    return list(PRESETS)


def get_preset(name: str) -> dict:
    """A deep copy of one preset: `{"description": ..., "model": {...}, "training": {...}}`.

    Args:
        name: str. One of `list_presets()`.

    Raises:
        ValueError: if `name` is not a preset.

    Example:
    >>> get_preset("d2l")["model"]["block_pooling"]
    'avg'
    """
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(f"`preset` must be one of {list_presets()}. Received: preset={name!r}")
    return copy.deepcopy(PRESETS[name])
