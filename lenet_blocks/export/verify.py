"""Verification of a written artifact against the Keras model, in the artifact's own runtime.

- float32 formats: max |exported - Keras| must be at most
  `tolerance * max(1, max |Keras output|) + 2 * keras_float32_error`, the Keras model's own
  float32 error measured by `twin.float32_error` (`None` counts as 0).
- int8 TFLite: the accuracy drop on labelled images must be at most `max_accuracy_drop`.

Example:
>>> import tempfile
>>> from lenet_blocks import build_lenet
>>> from lenet_blocks.export.formats import write_savedmodel
>>> model, path = build_lenet(), Path(tempfile.mkdtemp()) / "lenet_savedmodel"
>>> write_savedmodel(model, path)
>>> images, labels = verification_data(model, None, seed=0)
>>> reference = Reference(images, labels, keras_outputs(model, images), float32_error=None)
>>> report = verify(model, path, "savedmodel", None, path, reference, 1e-5, 0.02)
>>> report["max_abs_diff"] <= report["allowed_abs_diff"], report["verification_samples"]
(True, 64)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np

from lenet_blocks.arrays import with_channel_axis
from lenet_blocks.export import runners
from lenet_blocks.export.errors import ExportVerificationError
from lenet_blocks.export.formats import input_shape
from lenet_blocks.export.report import describe_kind
from lenet_blocks.objectives import class_probabilities

# Float formats: the bound is DEFAULT_TOLERANCE x max(1, max |Keras output|) plus twice the
# Keras model's own float32 error (see `twin`); docs/deploy.md has the measured errors.
DEFAULT_TOLERANCE = 1e-5
# int8: the exported model may lose at most this much accuracy (a fraction: 0.02 = 2 points).
DEFAULT_MAX_ACCURACY_DROP = 0.02
DEFAULT_VERIFICATION_SAMPLES = 64
_FALLBACK_SIDE = 28  # image side used for random verification images when the model's is None


@dataclasses.dataclass(frozen=True)
class Reference:
    """What an artifact is checked against.

    Args:
        images: float32 verification images `(N, H, W, C)`.
        labels: their labels, or `None` (random images).
        outputs: the Keras model's float32 outputs on `images`.
        float32_error: the Keras model's own float32 error, or `None` (not measured).

    Example:
    >>> Reference(np.zeros((1, 28, 28, 1)), None, np.zeros((1, 10)), None).labels is None
    True
    """

    images: np.ndarray
    labels: np.ndarray | None
    outputs: np.ndarray
    float32_error: float | None


def verification_data(
    model: keras.Model, evaluation_data: tuple | None, seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """The verification images (float32) and labels: `evaluation_data`, else seeded random ones.

    Args:
        model: the Keras model (its input shape sizes the random images).
        evaluation_data: `(images, labels)` or `None`.
        seed: int. Seed of the random images.

    Raises:
        ValueError: if `evaluation_data` is empty or its lengths differ.

    Example:
    >>> from lenet_blocks import build_lenet
    >>> images, labels = verification_data(build_lenet(), None, seed=0)
    >>> images.shape, labels
    ((64, 28, 28, 1), None)
    """
    if evaluation_data is not None:
        images, labels = evaluation_data
        images = with_channel_axis(np.asarray(images))
        labels = np.asarray(labels).reshape(-1)
        if len(images) == 0 or len(images) != len(labels):
            raise ValueError(
                "`evaluation_data` must be (images, labels) of the same non-zero length. "
                f"Received: {len(images)} images and {len(labels)} labels"
            )
        return images.astype("float32"), labels
    shape = tuple(_FALLBACK_SIDE if side is None else side for side in input_shape(model))
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(DEFAULT_VERIFICATION_SAMPLES, *shape))
    return images.astype("float32"), None


def keras_outputs(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The Keras model's outputs on `images`, float32.

    Args:
        model: the Keras model.
        images: float32 images.

    Example:
    >>> from lenet_blocks import build_lenet
    >>> keras_outputs(build_lenet(), np.zeros((3, 28, 28, 1), "float32")).shape
    (3, 10)
    """
    outputs = model.predict(images, batch_size=runners.BATCH_SIZE, verbose=0)
    return np.asarray(outputs, dtype="float32")


def verify(
    model: keras.Model,
    artifact: Path,
    format: str,
    quantize: str | None,
    path: Path,
    reference: Reference,
    tolerance: float,
    max_accuracy_drop: float,
) -> dict:
    """Runs the written `artifact`, measures it against `reference`; raises on a mismatch.

    Args:
        model: the Keras model (its output layer tells how to read outputs as classes).
        artifact: where the artifact is now (a temporary beside `path`).
        format: its format.
        quantize: `None` or `"int8"`.
        path: the output path the messages and the report name.
        reference: the verification images and the Keras model's outputs.
        tolerance: float. Relative part of the float formats' bound.
        max_accuracy_drop: float. Largest accuracy loss allowed for int8.

    Returns:
        The report of `export_model` without `size_bytes` and the format's extra keys.

    Raises:
        ExportVerificationError: naming the format, `path` and the measured difference.
    """
    kind = describe_kind(format, quantize)
    try:
        outputs = runners.run_exported(artifact, reference.images, format)
    except ImportError:
        raise
    except Exception as error:  # the runtime rejects the artifact: it is not usable
        message = " ".join(str(error).split())[:300]
        raise ExportVerificationError(
            f"{kind} export to {str(path)!r}: its runtime could not run it "
            f"({type(error).__name__}: {message})."
        ) from error
    expected = reference.outputs
    if outputs.shape != expected.shape:
        raise ExportVerificationError(
            f"{kind} export to {str(path)!r}: outputs of shape {outputs.shape}, expected "
            f"{expected.shape} (the Keras model's)."
        )
    keras_classes = class_probabilities(model, expected).argmax(axis=-1)
    exported_classes = class_probabilities(model, outputs).argmax(axis=-1)
    scale = float(max(1.0, np.max(np.abs(expected))))
    allowed = None
    if quantize is None:
        allowed = tolerance * scale + 2 * (reference.float32_error or 0.0)
    count = len(reference.images)
    report = {
        "format": format,
        "quantize": quantize,
        "path": str(path),
        "verification_samples": count,
        "max_abs_diff": float(np.max(np.abs(outputs - expected))),
        "allowed_abs_diff": allowed,
        "keras_float32_error": reference.float32_error,
        "prediction_agreement": float(np.mean(keras_classes == exported_classes)),
        "keras_accuracy": None,
        "exported_accuracy": None,
        "accuracy_drop": None,
    }
    if reference.labels is not None:
        keras_accuracy = float(np.mean(keras_classes == reference.labels))
        exported_accuracy = float(np.mean(exported_classes == reference.labels))
        report.update(
            keras_accuracy=keras_accuracy,
            exported_accuracy=exported_accuracy,
            accuracy_drop=keras_accuracy - exported_accuracy,
        )
    if quantize == "int8":
        report["max_accuracy_drop"] = max_accuracy_drop
        if report["accuracy_drop"] > max_accuracy_drop:
            raise ExportVerificationError(
                f"{kind} export to {str(path)!r}: accuracy drops from "
                f"{report['keras_accuracy']:.4f} (Keras) to {report['exported_accuracy']:.4f} "
                f"on {count} labelled images, {100 * report['accuracy_drop']:.2f} points, "
                f"more than the {100 * max_accuracy_drop:.2f} allowed (max_accuracy_drop)."
            )
    elif not report["max_abs_diff"] <= allowed:  # also catches NaN
        measured = reference.float32_error
        raise ExportVerificationError(
            f"{kind} export to {str(path)!r}: outputs differ from the Keras model's by up to "
            f"{report['max_abs_diff']:.3g} on {count} images, more than the "
            f"{allowed:.3g} allowed (tolerance {tolerance:g} x max(1, max |Keras output|) = "
            f"{tolerance:g} x {scale:.3g}, plus twice the Keras model's own float32 error, "
            f"{'not measured' if measured is None else f'{measured:.3g}'})."
        )
    return report
