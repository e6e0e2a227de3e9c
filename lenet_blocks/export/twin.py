"""The Keras model's own float32 error: its outputs against the same model rebuilt in float64.

The float formats' parity bound adds twice this error to `tolerance`, so an export as exact as
the Keras model itself passes even where float32 is far from exact (docs/deploy.md).

Example:
>>> from lenet_blocks import build_lenet
>>> model = build_lenet()
>>> {weight.dtype for weight in float64_twin(model).weights}
{'float64'}
"""

from __future__ import annotations

import contextlib
import warnings

import keras
import numpy as np

from lenet_blocks.export.runners import BATCH_SIZE

_DTYPE_POLICY_CLASSES = ("DTypePolicy", "FloatDTypePolicy")
# A float64 rebuild differing by more than this (x max(1, max |output|)) is not the same model.
MAX_FLOAT32_ERROR = 1e-3


def float32_error(model: keras.Model, images: np.ndarray, reference: np.ndarray) -> float | None:
    """Largest |float32 Keras output - float64 output| of the same model and weights.

    `None`, with a warning, when the model cannot be rebuilt in float64 (e.g. a custom layer
    that fixes its dtype), or when the rebuild differs by more than float32 rounding explains
    (a config that does not capture the model); the parity bound is then `tolerance` alone.
    The images go in as they are (float32 whole pixel values, exact in either precision).

    Args:
        model: the Keras model.
        images: float32 images, the verification set.
        reference: the model's float32 outputs on `images`.

    Example:
    >>> from lenet_blocks import build_lenet
    >>> model, images = build_lenet(), np.zeros((2, 28, 28, 1), "float32")
    >>> 0 <= float32_error(model, images, model.predict(images, verbose=0)) < 1e-3
    True
    """
    try:
        with _float64_enabled():
            twin = float64_twin(model)
            exact = np.asarray(twin.predict(images, batch_size=BATCH_SIZE, verbose=0))
    except Exception as error:  # an optional refinement of the bound; export goes on without it
        _warn_unmeasured(
            f"the model could not be rebuilt in float64 ({type(error).__name__}: {error})"
        )
        return None
    error = float(np.max(np.abs(reference.astype("float64") - exact.astype("float64"))))
    limit = MAX_FLOAT32_ERROR * max(1.0, float(np.max(np.abs(reference))))
    if exact.dtype != np.float64 or not error <= limit:
        _warn_unmeasured(
            f"its float64 rebuild computes in {exact.dtype} and differs by {error:.3g}, more "
            f"than float32 rounding explains ({limit:.3g})"
        )
        return None
    return error


def _float64_enabled():
    """JAX computes in float32 unless 64-bit types are enabled: they are, for the twin only."""
    if keras.backend.backend() != "jax":
        return contextlib.nullcontext()
    import jax

    return jax.enable_x64(True)


def _warn_unmeasured(reason: str) -> None:
    warnings.warn(
        f"The Keras model's own float32 error was not measured: {reason}. The float parity "
        "bound is `tolerance` alone.",
        stacklevel=4,  # the caller of export_model
    )


def float64_twin(model: keras.Model) -> keras.Model:
    """The same model rebuilt from its config with every float dtype float64, same weights.

    The global dtype policy is set to float64 while the config is deserialized (for sublayers
    built without an explicit dtype), then restored.

    Args:
        model: a `keras.Model` that serializes to a config.

    Example:
    >>> from lenet_blocks import build_lenet
    >>> model = build_lenet()
    >>> float64_twin(model).count_params() == model.count_params()
    True
    """

    def to_float64(node):
        if isinstance(node, list):
            return [to_float64(item) for item in node]
        if not isinstance(node, dict):
            return node
        config = node.get("config")
        if node.get("class_name") in _DTYPE_POLICY_CLASSES and isinstance(config, dict):
            if _is_float_dtype_name(config.get("name")):
                return {**node, "config": {**config, "name": "float64"}}
            return node
        return {
            key: "float64" if key == "dtype" and _is_float_dtype_name(value) else to_float64(value)
            for key, value in node.items()
        }

    config = to_float64(keras.saving.serialize_keras_object(model))
    config.pop("compile_config", None)  # the twin only predicts
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")  # sublayers built without an explicit dtype
    try:
        twin = keras.saving.deserialize_keras_object(config)
    finally:
        keras.config.set_dtype_policy(previous)
    twin.set_weights([np.asarray(weight, "float64") for weight in model.get_weights()])
    return twin


def _is_float_dtype_name(value) -> bool:
    return isinstance(value, str) and value.startswith(("float", "bfloat", "mixed_"))
