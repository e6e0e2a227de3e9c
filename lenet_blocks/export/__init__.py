"""Export a model to SavedModel, TFLite (float32 or int8), ONNX, OpenVINO or keras-hub, verified.

The converters are Keras' own exporters (`model.export(format=...)`, `ExportArchive`) wherever
they work, on the TensorFlow, JAX and PyTorch backends (`formats.BACKEND_FORMATS` says which
formats each backend exports; `formats` says where and why a converter of ours stands in).
Every artifact takes float32 images `(None, H, W, C)` of raw 0-255 values, input `images`; a
SavedModel also has a `serve_uint8` signature. The packages of the converters and runtimes
are the `export` extra (`pip install "lenet_blocks[export]"`), keras-hub the `hub` extra.
The artifact is then reloaded in its own runtime (TensorFlow, LiteRT, ONNX Runtime, OpenVINO,
keras-hub) and its outputs compared with the Keras model's; a mismatch raises
`ExportVerificationError` and leaves nothing at the output path.
Writes are atomic: the artifact is written and verified under a temporary sibling name, then
renamed into place. An existing output is only replaced with `force=True`.

The modules, by concern: `formats` (the converters, per backend), `runners` (each
runtime), `twin` (the Keras model's own float32 error), `verify` (the checks), `files` (the
output path), `report` (the printed lines), `errors`.

Example:
>>> import tempfile, pathlib
>>> from lenet_blocks import build_lenet
>>> path = pathlib.Path(tempfile.mkdtemp()) / "lenet_savedmodel"
>>> report = export_model(build_lenet(), path, "savedmodel")
>>> report["format"], report["max_abs_diff"] <= report["allowed_abs_diff"]
('savedmodel', True)
>>> run_exported(path, np.zeros((2, 28, 28), "uint8")).shape
(2, 10)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import keras
import numpy as np

from lenet_blocks import artifacts
from lenet_blocks.choices import check_choice
from lenet_blocks.export import files, formats, twin, verify
from lenet_blocks.export.errors import ExportDependencyError, ExportError, ExportVerificationError
from lenet_blocks.export.formats import (
    BACKEND_FORMATS,
    DEFAULT_CALIBRATION_SAMPLES,
    FORMATS,
    INPUT_NAME,
    ONNX_OPSET,
    OUTPUT_NAME,
    QUANTIZATIONS,
    SIGNATURE,
    UINT8_SIGNATURE,
)
from lenet_blocks.export.report import format_report
from lenet_blocks.export.runners import run_exported
from lenet_blocks.export.verify import (
    DEFAULT_MAX_ACCURACY_DROP,
    DEFAULT_TOLERANCE,
    DEFAULT_VERIFICATION_SAMPLES,
)
from lenet_blocks.validation import is_number, is_positive_int

__all__ = [
    "BACKEND_FORMATS",
    "DEFAULT_CALIBRATION_SAMPLES",
    "DEFAULT_MAX_ACCURACY_DROP",
    "DEFAULT_TOLERANCE",
    "DEFAULT_VERIFICATION_SAMPLES",
    "FORMATS",
    "INPUT_NAME",
    "ONNX_OPSET",
    "OUTPUT_NAME",
    "QUANTIZATIONS",
    "SIGNATURE",
    "UINT8_SIGNATURE",
    "ExportDependencyError",
    "ExportError",
    "ExportVerificationError",
    "export_model",
    "format_report",
    "run_exported",
]


def export_model(
    model: keras.Model | str | os.PathLike,
    path: str | os.PathLike,
    format: str = "savedmodel",
    *,
    quantize: str | None = None,
    force: bool = False,
    calibration_images: np.ndarray | None = None,
    evaluation_data: tuple[np.ndarray, np.ndarray] | None = None,
    calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES,
    tolerance: float = DEFAULT_TOLERANCE,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
    full_integer: bool = False,
    onnx_opset: int = ONNX_OPSET,
    seed: int = 0,
) -> dict:
    """Exports `model` to `path` in `format` and verifies the artifact in its own runtime.

    The exported model takes float32 images `(batch, H, W, C)` of raw 0-255 pixel values, like
    the Keras model (a SavedModel also has a `serve_uint8` signature for uint8 images). After
    writing, the artifact is reloaded in its own runtime and run on the verification images:
    the first `evaluation_data` images when given, else `64` seeded random 0-255 images.

    - float32 formats (SavedModel, TFLite, ONNX, OpenVINO, keras-hub): the largest absolute
      difference from the Keras outputs must be at most
      `tolerance * max(1, max |Keras output|)` (1e-5 for probabilities) plus twice the Keras
      model's own float32 error: the largest difference between its outputs and those of
      the same model and weights in float64 (`keras_float32_error` in the report). That term
      admits an export that is as exact as the Keras model itself (docs/deploy.md has the
      measured errors of each preset).
      When the model cannot be rebuilt in float64, or its rebuild differs by more than float32
      rounding explains (over `1e-3 * max(1, max |Keras output|)`), a warning says so and the
      bound is the first term alone.
    - int8 TFLite (`quantize="int8"`): post-training quantization calibrated on
      `calibration_samples` images drawn (seeded) from `calibration_images`. Weights and
      activations of every op are int8 except the op producing the output (sigmoid, softmax,
      RBF sum), which runs in float32 on its dequantized int8 input; with `full_integer=True`
      that op is int8 too. Input and output are float32 either way (the model quantizes and
      dequantizes at its edges). It is verified by accuracy on the labelled `evaluation_data`:
      the drop from the Keras model's accuracy must be at most `max_accuracy_drop`.

    Args:
        model: a `keras.Model`, or the path of a `.keras` file (loaded with `load_model`).
        path: output path: a directory for `"savedmodel"`, `"openvino"` (`model.xml`,
            `model.bin`) and `"keras-hub"` (a preset), a file (`.tflite`, `.onnx`) else.
        format: one of `FORMATS` that the Keras backend exports (`BACKEND_FORMATS`).
        quantize: `None` or `"int8"` (TFLite only).
        force: bool. Whether to replace an existing `path`.
        calibration_images: uint8 or float images `(N, H, W)` or `(N, H, W, C)`, 0-255, the
            representative data of int8 quantization (e.g. the training images).
        evaluation_data: optional `(images, labels)`. With it, parity is checked on all these
            images and the report has the accuracy of both models; required for int8.
        calibration_samples: int. How many calibration images to draw.
        tolerance: float. Bound of the float formats' parity check, relative to
            `max(1, max |Keras output|)`, added to twice the Keras model's float32 error.
        max_accuracy_drop: float. Largest accuracy loss allowed for int8 (0.02 = 2 points).
        full_integer: bool. int8 only: quantize the output op too (for integer-only
            accelerators). An int8 sigmoid output has a 1/256 step: saturated sigmoid outputs
            then tie, which can cost accuracy (docs/deploy.md).
        onnx_opset: int. ONNX opset version of the ONNX export.
        seed: int. Seed of the calibration draw and of the random verification images.

    Returns:
        A report dict: `format`, `quantize`, `path`, `size_bytes`, `verification_samples`,
        `max_abs_diff`, `allowed_abs_diff` and `keras_float32_error` (`None` for int8; the
        error also when not measured), `keras_accuracy`, `exported_accuracy`,
        `accuracy_drop`, `prediction_agreement` (the accuracies are `None` without
        `evaluation_data`), `max_accuracy_drop` (int8), `onnx_opset` (ONNX).

    Raises:
        ValueError: for a bad argument (unknown format, a format the Keras backend cannot
            export, `quantize` with a float format, int8 without `calibration_images` or
            `evaluation_data`, a model keras-hub export does not know, ...).
        FileExistsError: if `path` exists and `force` is false.
        ExportVerificationError: if the reloaded artifact does not match the Keras model
            (nothing is left at `path`).
        ExportError: if a converter fails on the model.
        ExportDependencyError: (an `ImportError`) when a package the format needs (the
            `export` or `hub` extra) is not installed.
    """
    _check_arguments(
        format, quantize, full_integer, tolerance, max_accuracy_drop, calibration_samples
    )
    path = Path(path)
    files.refuse_overwrite(path, force)
    formats.check_backend(format, keras.backend.backend())
    if quantize is not None and keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"`quantize={quantize!r}` runs on the tensorflow Keras backend only (TFLite's "
            f"converter of a SavedModel). Received: backend={keras.backend.backend()!r}"
        )
    formats.check_dependencies(format)
    if quantize == "int8" and (calibration_images is None or evaluation_data is None):
        raise ValueError(
            "`quantize='int8'` needs `calibration_images` (representative training images) and "
            "labelled `evaluation_data` (its accuracy drop is the check). Received: "
            f"calibration_images={_describe(calibration_images)}, "
            f"evaluation_data={_describe(evaluation_data)}"
        )
    if not isinstance(model, keras.Model):
        from lenet_blocks.saving import load_model

        model = load_model(model, compile=False)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            "`model` must have one image input and one output to export. Received: a model "
            f"with {len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )

    images, labels = verify.verification_data(model, evaluation_data, seed)
    outputs = verify.keras_outputs(model, images)
    float32_error = None if quantize else twin.float32_error(model, images, outputs)
    reference = verify.Reference(images, labels, outputs, float32_error)
    calibration = None
    if quantize == "int8":
        calibration = formats.draw_calibration(calibration_images, calibration_samples, seed)

    def check(artifact: Path) -> dict:
        return verify.verify(
            model, artifact, format, quantize, path, reference, tolerance, max_accuracy_drop
        )

    if format in DIRECTORY_FORMATS:
        with files.atomic_directory(path, force) as tmp:
            _write_directory(model, tmp, format)
            report = check(tmp)
            report["size_bytes"] = files.tree_size(tmp)
    else:
        with artifacts.atomic_path(path) as tmp:
            tmp.write_bytes(_file_bytes(model, format, calibration, full_integer, onnx_opset))
            report = check(tmp)
            report["size_bytes"] = tmp.stat().st_size
            files.make_room(path, force)
    if calibration is not None:
        report.update(calibration_samples=len(calibration), full_integer=full_integer)
    if format == "onnx":
        report["onnx_opset"] = onnx_opset
    report["backend"] = keras.backend.backend()
    return report


DIRECTORY_FORMATS = ("savedmodel", "openvino", "keras-hub")


def _write_directory(model: keras.Model, directory: Path, format: str) -> None:
    if format == "savedmodel":
        formats.write_savedmodel(model, directory)
    elif format == "openvino":
        formats.convert_openvino(model, directory)
    else:
        from lenet_blocks import hub

        hub.save_preset(model, directory)


def _file_bytes(model, format, calibration, full_integer, onnx_opset) -> bytes:
    with tempfile.TemporaryDirectory(prefix="lenet-export-") as workdir:
        if format == "onnx":
            onnx_file = Path(workdir) / "model.onnx"
            formats.convert_onnx(model, onnx_file, onnx_opset)
            return onnx_file.read_bytes()
        if calibration is None:
            return formats.convert_litert(model)
        savedmodel = Path(workdir) / "savedmodel"
        formats.write_savedmodel(model, savedmodel)
        return formats.convert_tflite_int8(savedmodel, calibration, full_integer)


def _check_arguments(
    format, quantize, full_integer, tolerance, max_accuracy_drop, calibration_samples
):
    check_choice("format", format, FORMATS)
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(
            f"`quantize` must be None or one of {QUANTIZATIONS}. Received: quantize={quantize!r}"
        )
    if quantize is not None and format != "tflite":
        raise ValueError(
            f"`quantize` applies to the 'tflite' format only. Received: quantize={quantize!r} "
            f"with format={format!r}"
        )
    if not isinstance(full_integer, bool) or (full_integer and quantize != "int8"):
        raise ValueError(
            "`full_integer` must be a bool, True only with quantize='int8'. "
            f"Received: full_integer={full_integer!r} with quantize={quantize!r}"
        )
    for arg, value in (("tolerance", tolerance), ("max_accuracy_drop", max_accuracy_drop)):
        if not is_number(value) or not value >= 0:
            raise ValueError(f"`{arg}` must be a number >= 0. Received: {arg}={value!r}")
    if not is_positive_int(calibration_samples):
        raise ValueError(
            "`calibration_samples` must be a positive int. "
            f"Received: calibration_samples={calibration_samples!r}"
        )


def _describe(value) -> str:
    return "None" if value is None else f"<{type(value).__name__}>"
