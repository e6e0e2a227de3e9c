"""Export a model to TensorFlow SavedModel, TFLite (float32 or int8) or ONNX, verified.

Every export goes through one TensorFlow SavedModel with a `serve` signature (float32 images
`(None, H, W, C)` of raw 0-255 values, output `outputs`) and a `serve_uint8` signature (the
same on uint8 images). TFLite is converted from that SavedModel with
`tf.lite.TFLiteConverter.from_saved_model`, ONNX with `tf2onnx` (the `export` extra:
`pip install "lenet_blocks[export]"`). The artifact is then reloaded in its own runtime
(TensorFlow, the TFLite interpreter, ONNX Runtime) and its outputs compared with the Keras
model's; a mismatch raises `ExportVerificationError` and leaves nothing at the output path.
Writes are atomic: the artifact is written and verified under a temporary sibling name, then
renamed into place. An existing output is only replaced with `force=True`.

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

import contextlib
import logging
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from lenet_blocks import artifacts
from lenet_blocks.objectives import class_probabilities
from lenet_blocks.pipeline import with_channel_axis

__all__ = [
    "DEFAULT_CALIBRATION_SAMPLES",
    "DEFAULT_MAX_ACCURACY_DROP",
    "DEFAULT_TOLERANCE",
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

FORMATS: tuple[str, ...] = ("savedmodel", "tflite", "onnx")
QUANTIZATIONS: tuple[str, ...] = ("int8",)
SIGNATURE = "serve"
UINT8_SIGNATURE = "serve_uint8"
INPUT_NAME = "images"
OUTPUT_NAME = "outputs"
ONNX_OPSET = 17
# Float formats: max |exported - keras| <= DEFAULT_TOLERANCE * max(1, max |keras|) + 2 * the
# Keras model's own float32 error (its outputs against the same model in float64, measured on
# the verification images). Well-conditioned models have an own error of about 2e-6 or less
# (trained d2l, tuned presets), so the bound stays near 1e-5 for outputs in [0, 1]. The trained
# notebook model (raw 0-255 pixels into sigmoid units) is float32-exact to only 3.3e-5 in Keras
# itself; an export as exact as Keras may then differ from it by up to twice that (triangle
# inequality), which a fixed 1e-5 would reject.
DEFAULT_TOLERANCE = 1e-5
# int8: the exported model may lose at most this much accuracy (a fraction: 0.02 = 2 points).
DEFAULT_MAX_ACCURACY_DROP = 0.02
DEFAULT_CALIBRATION_SAMPLES = 300
DEFAULT_VERIFICATION_SAMPLES = 64
_FALLBACK_SIDE = 28  # image side used for random verification images when the model's is None
_BATCH_SIZE = 1000


class ExportError(RuntimeError):
    """An export could not be produced (a converter failed on the model)."""


class ExportVerificationError(ExportError):
    """The reloaded artifact's outputs do not match the Keras model's."""


class ExportDependencyError(ExportError, ImportError):
    """A package the format needs (tf2onnx, onnxruntime for ONNX) is not installed."""


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
    """Exports `model` to `path` as a SavedModel, a TFLite file or an ONNX file, and verifies it.

    The exported model takes float32 images `(batch, H, W, C)` of raw 0-255 pixel values, like
    the Keras model (a SavedModel also has a `serve_uint8` signature for uint8 images). After
    writing, the artifact is reloaded in its own runtime and run on the verification images:
    the first `evaluation_data` images when given, else `64` seeded random 0-255 images.

    - float32 formats (SavedModel, TFLite, ONNX): the largest absolute difference from the
      Keras outputs must be at most `tolerance * max(1, max |Keras output|)` (1e-5 for
      probabilities) plus twice the Keras model's own float32 error: the largest difference
      between its outputs and those of the same model and weights in float64
      (`keras_float32_error` in the report). That term is about 2e-6 or less for
      well-conditioned models; it admits an export that is as exact as the Keras model itself.
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
        path: output path: a directory for `"savedmodel"`, a file (`.tflite`, `.onnx`) else.
        format: `"savedmodel"`, `"tflite"` or `"onnx"`.
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
            accelerators). An int8 sigmoid output has a 1/256 step: the trained notebook
            preset's saturated outputs then tie, and it loses 13.7 accuracy points.
        onnx_opset: int. ONNX opset version of the ONNX export.
        seed: int. Seed of the calibration draw and of the random verification images.

    Returns:
        A report dict: `format`, `quantize`, `path`, `size_bytes`, `verification_samples`,
        `max_abs_diff`, `allowed_abs_diff` and `keras_float32_error` (`None` for int8; the
        error also when not measured), `keras_accuracy`, `exported_accuracy`,
        `accuracy_drop`, `prediction_agreement` (the accuracies are `None` without
        `evaluation_data`), `max_accuracy_drop` (int8), `onnx_opset` (ONNX).

    Raises:
        ValueError: for a bad argument (unknown format, `quantize` with a float format, int8
            without `calibration_images` or `evaluation_data`, ...).
        FileExistsError: if `path` exists and `force` is false.
        ExportVerificationError: if the reloaded artifact does not match the Keras model
            (nothing is left at `path`).
        ExportError: if a converter fails on the model, or Keras runs on another backend than
            TensorFlow.
        ExportDependencyError: (an `ImportError`) for ONNX, when `tf2onnx` or `onnxruntime`
            is not installed.
    """
    _check_arguments(
        format, quantize, full_integer, tolerance, max_accuracy_drop, calibration_samples
    )
    path = Path(path)
    _refuse_overwrite(path, force)
    if format == "onnx":
        _import_onnx_tools()
    if quantize == "int8" and (calibration_images is None or evaluation_data is None):
        raise ValueError(
            "`quantize='int8'` needs `calibration_images` (representative training images) and "
            "labelled `evaluation_data` (its accuracy drop is the check). Received: "
            f"calibration_images={_describe(calibration_images)}, "
            f"evaluation_data={_describe(evaluation_data)}"
        )
    if keras.backend.backend() != "tensorflow":
        raise ExportError(
            "Export traces the model with TensorFlow: it needs the TensorFlow Keras backend "
            f"(KERAS_BACKEND=tensorflow). Received: backend {keras.backend.backend()!r}"
        )
    if not isinstance(model, keras.Model):
        from lenet_blocks.saving import load_model

        model = load_model(model, compile=False)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            "`model` must have one image input and one output to export. Received: a model "
            f"with {len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )

    images, labels = _verification_data(model, evaluation_data, seed)
    reference = _keras_outputs(model, images)
    float32_error = None if quantize else _float32_error(model, images, reference)
    calibration = None
    if quantize == "int8":
        calibration = _draw(calibration_images, calibration_samples, seed)

    def verify(artifact: Path) -> dict:
        return _verify(
            model, artifact, format, quantize, path, images, labels, reference, tolerance,
            float32_error, max_accuracy_drop,
        )  # fmt: skip

    if format == "savedmodel":
        with _atomic_directory(path, force) as tmp:
            _write_savedmodel(model, tmp)
            report = verify(tmp)
            report["size_bytes"] = _size(tmp)
        return report
    with tempfile.TemporaryDirectory(prefix="lenet-export-") as workdir:
        savedmodel = Path(workdir) / "savedmodel"
        _write_savedmodel(model, savedmodel)
        with artifacts.atomic_path(path) as tmp:
            if format == "tflite":
                tmp.write_bytes(_convert_tflite(savedmodel, calibration, full_integer))
            else:
                _convert_onnx(savedmodel, tmp, onnx_opset)
            report = verify(tmp)
            report["size_bytes"] = tmp.stat().st_size
            _make_room(path, force)
    if calibration is not None:
        report.update(calibration_samples=len(calibration), full_integer=full_integer)
    if format == "onnx":
        report["onnx_opset"] = onnx_opset
    return report


def run_exported(
    path: str | os.PathLike, images: np.ndarray, format: str | None = None
) -> np.ndarray:
    """Runs an exported model on `images` in its own runtime; returns float32 outputs.

    SavedModels run with `tf.saved_model.load` (the `serve` signature), TFLite files with the
    TFLite interpreter (`ai_edge_litert` when installed, else `tf.lite.Interpreter`), ONNX
    files with ONNX Runtime. None of these runtimes needs `lenet_blocks` or Keras.

    Args:
        path: a SavedModel directory, a `.tflite` or an `.onnx` file.
        images: uint8 or float images `(N, H, W)` or `(N, H, W, C)`, 0-255.
        format: `"savedmodel"`, `"tflite"` or `"onnx"`; default: from `path` (a directory is
            a SavedModel, else the file suffix).

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the format cannot be told from `path`.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No exported model at {str(path)!r}.")
    if format is None:
        format = "savedmodel" if path.is_dir() else path.suffix.lstrip(".").lower()
    if format not in FORMATS:
        raise ValueError(
            f"`format` must be one of {FORMATS} (or a path that is a directory, *.tflite or "
            f"*.onnx). Received: format={format!r} for {str(path)!r}"
        )
    images = with_channel_axis(np.asarray(images)).astype("float32")
    run = {"savedmodel": _run_savedmodel, "tflite": _run_tflite, "onnx": _run_onnx}[format]
    return run(path, images)


def format_report(report: dict) -> str:
    """The report of `export_model` as a few human-readable lines (what the CLI prints).

    Example:
    >>> print(format_report({"format": "onnx", "quantize": None, "path": "m.onnx",
    ...     "size_bytes": 180567, "verification_samples": 64, "max_abs_diff": 1.2e-7,
    ...     "allowed_abs_diff": 1.02e-5, "keras_float32_error": 1e-7, "keras_accuracy": None,
    ...     "exported_accuracy": None, "accuracy_drop": None, "prediction_agreement": 1.0}))
    exported onnx to m.onnx (180,567 bytes)
    verified on 64 images: max abs diff 1.2e-07 (allowed 1e-05), same top class on 100.00%
    Keras model's own float32 error (vs. float64): 1e-07
    """
    kind = report["format"] + (f" ({report['quantize']})" if report.get("quantize") else "")
    lines = [f"exported {kind} to {report['path']} ({report['size_bytes']:,} bytes)"]
    parity = f"max abs diff {report['max_abs_diff']:.2g}"
    if report.get("allowed_abs_diff") is not None:
        parity += f" (allowed {report['allowed_abs_diff']:.2g})"
    lines.append(
        f"verified on {report['verification_samples']} images: {parity}, same top class on "
        f"{report['prediction_agreement']:.2%}"
    )
    if report.get("keras_float32_error") is not None:
        lines.append(
            f"Keras model's own float32 error (vs. float64): {report['keras_float32_error']:.2g}"
        )
    if report.get("keras_accuracy") is not None:
        line = (
            f"accuracy: keras {report['keras_accuracy']:.4f}, exported "
            f"{report['exported_accuracy']:.4f} (drop {100 * report['accuracy_drop']:.2f} points"
        )
        if report.get("max_accuracy_drop") is not None:
            line += f", allowed {100 * report['max_accuracy_drop']:.2f}"
        lines.append(line + ")")
    return "\n".join(lines)


def _check_arguments(
    format, quantize, full_integer, tolerance, max_accuracy_drop, calibration_samples
):
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS}. Received: format={format!r}")
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
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"`{arg}` must be a number >= 0. Received: {arg}={value!r}")
    if (
        isinstance(calibration_samples, bool)
        or not isinstance(calibration_samples, int)
        or calibration_samples < 1
    ):
        raise ValueError(
            "`calibration_samples` must be a positive int. "
            f"Received: calibration_samples={calibration_samples!r}"
        )


def _describe(value) -> str:
    return "None" if value is None else f"<{type(value).__name__}>"


def _refuse_overwrite(path: Path, force: bool) -> None:
    if not force and (path.exists() or path.is_symlink()):
        raise FileExistsError(
            f"{str(path)!r} already exists; pass force=True (--force) to overwrite it."
        )


def _make_room(path: Path, force: bool) -> None:
    """Right before the final rename: re-checks `path`, and moves a directory out of the way."""
    _refuse_overwrite(path, force)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)


@contextlib.contextmanager
def _atomic_directory(path: Path, force: bool) -> Iterator[Path]:
    """Yields a temporary sibling directory; on success it takes `path`'s place.

    A directory cannot replace a non-empty one in one `rename`, so an existing `path` (with
    `force`) is first renamed aside, then the new directory renamed in, then the old removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{uuid.uuid4().hex[:12]}-{path.name}"
    aside = path.parent / f".old-{uuid.uuid4().hex[:12]}-{path.name}"
    try:
        yield tmp
        for file in (f for f in tmp.rglob("*") if f.is_file()):
            with open(file, "rb") as written:
                os.fsync(written.fileno())
        _refuse_overwrite(path, force)
        if path.exists() or path.is_symlink():
            os.replace(path, aside)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if aside.is_dir() and not aside.is_symlink():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            aside.unlink(missing_ok=True)


def _input_shape(model: keras.Model) -> tuple:
    return tuple(model.inputs[0].shape[1:])


def _write_savedmodel(model: keras.Model, path: Path) -> None:
    """Writes a SavedModel with float32 `serve` and uint8 `serve_uint8` signatures."""
    shape = (None, *_input_shape(model))

    def serve(images):
        return {OUTPUT_NAME: tf.cast(model(images, training=False), tf.float32)}

    def serve_uint8(images):
        return serve(tf.cast(images, tf.float32))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SIGNATURE, serve, input_signature=[tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)]
    )
    archive.add_endpoint(
        UINT8_SIGNATURE,
        serve_uint8,
        input_signature=[tf.TensorSpec(shape, tf.uint8, name=INPUT_NAME)],
    )
    archive.write_out(str(path), verbose=False)


def _draw(images: np.ndarray, samples: int, seed: int) -> np.ndarray:
    images = with_channel_axis(np.asarray(images))
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(
            "`calibration_images` must be a non-empty array (N, H, W) or (N, H, W, C). "
            f"Received: an array of shape {images.shape}"
        )
    chosen = np.random.default_rng(seed).permutation(len(images))[:samples]
    return images[np.sort(chosen)].astype("float32")


def _convert_tflite(
    savedmodel: Path, calibration: np.ndarray | None, full_integer: bool = False
) -> bytes:
    """float32 TFLite, or int8 (calibrated on `calibration`) with float32 input and output."""

    def converter():
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(savedmodel), signature_keys=[SIGNATURE]
        )
        if calibration is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative_dataset
            # Input and output stay float32: quantize/dequantize ops sit at the edges.
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter

    def representative_dataset():
        for image in calibration:
            yield [image[np.newaxis]]

    kind = "float32" if calibration is None else "int8"
    try:
        if calibration is None or full_integer:
            return converter().convert()
        # The op producing the output (sigmoid, softmax, RBF sum) stays float32, on the
        # dequantized int8 values before it: an int8 sigmoid output has a fixed 1/256 step, so
        # the notebook preset's saturated outputs (top two both above 0.99 on most images) tie
        # and its accuracy drops by 13.7 points fully quantized; with a float output op, 0.
        float_model = tf.lite.TFLiteConverter.from_saved_model(
            str(savedmodel), signature_keys=[SIGNATURE]
        ).convert()
        interpreter = _tflite_interpreter(model_content=float_model)
        output_name = interpreter.get_output_details()[0]["name"]
        int8 = converter()
        int8.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its tf.lite.Interpreter's deprecation notice
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=int8,
                debug_dataset=representative_dataset,
                debug_options=tf.lite.experimental.QuantizationDebugOptions(
                    denylisted_nodes=[output_name]
                ),
            )
            return debugger.get_nondebug_quantized_model()
    except Exception as error:  # the converter raises ConverterError and plain exceptions
        raise ExportError(f"TFLite {kind} conversion failed: {error}") from error


def _import_onnx_tools():
    try:
        import onnxruntime
        import tf2onnx
    except ImportError as error:
        raise ExportDependencyError(
            f"ONNX export needs tf2onnx and onnxruntime ({error}); install them with "
            "`pip install 'lenet_blocks[export]'`."
        ) from error
    return tf2onnx, onnxruntime


def _convert_onnx(savedmodel: Path, output: Path, opset: int) -> None:
    # tf2onnx.convert.from_keras fails on Keras 3 models; the SavedModel's restored `serve`
    # function converts cleanly with from_function.
    tf2onnx, _ = _import_onnx_tools()
    loaded = tf.saved_model.load(str(savedmodel))
    function = getattr(loaded, SIGNATURE)
    logger = logging.getLogger("tf2onnx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        tf2onnx.convert.from_function(
            function,
            input_signature=function.input_signature,
            opset=opset,
            output_path=str(output),
        )
    except Exception as error:
        raise ExportError(f"ONNX conversion (tf2onnx, opset {opset}) failed: {error}") from error
    finally:
        logger.setLevel(level)


def _verification_data(model, evaluation_data, seed):
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
    shape = tuple(_FALLBACK_SIDE if side is None else side for side in _input_shape(model))
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(DEFAULT_VERIFICATION_SAMPLES, *shape))
    return images.astype("float32"), None


def _keras_outputs(model, images):
    outputs = model.predict(images, batch_size=_BATCH_SIZE, verbose=0)
    return np.asarray(outputs, dtype="float32")


def _float32_error(model, images, reference) -> float | None:
    """Largest |float32 Keras output - float64 output| of the same model and weights.

    `None`, with a warning, when the model cannot be rebuilt in float64 (e.g. a custom layer
    that fixes its dtype), or when the rebuild differs by more than float32 rounding explains
    (a config that does not capture the model); the parity bound is then `tolerance` alone.
    The images go in as they are (float32 whole pixel values, exact in either precision).
    """
    try:
        twin = _float64_twin(model)
        exact = np.asarray(twin.predict(images, batch_size=_BATCH_SIZE, verbose=0))
    except Exception as error:  # an optional refinement of the bound; export goes on without it
        _warn_unmeasured(
            f"the model could not be rebuilt in float64 ({type(error).__name__}: {error})"
        )
        return None
    error = float(np.max(np.abs(reference.astype("float64") - exact.astype("float64"))))
    limit = _MAX_FLOAT32_ERROR * max(1.0, float(np.max(np.abs(reference))))
    if exact.dtype != np.float64 or not error <= limit:
        _warn_unmeasured(
            f"its float64 rebuild computes in {exact.dtype} and differs by {error:.3g}, more "
            f"than float32 rounding explains ({limit:.3g})"
        )
        return None
    return error


def _warn_unmeasured(reason: str) -> None:
    warnings.warn(
        f"The Keras model's own float32 error was not measured: {reason}. The float parity "
        "bound is `tolerance` alone.",
        stacklevel=4,
    )


def _float64_twin(model: keras.Model) -> keras.Model:
    """The same model rebuilt from its config with every float dtype float64, same weights."""

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


_DTYPE_POLICY_CLASSES = ("DTypePolicy", "FloatDTypePolicy")
# A float64 rebuild differing by more than this (x max(1, max |output|)) is not the same model.
_MAX_FLOAT32_ERROR = 1e-3


def _is_float_dtype_name(value) -> bool:
    return isinstance(value, str) and value.startswith(("float", "bfloat", "mixed_"))


def _verify(
    model, artifact, format, quantize, path, images, labels, reference, tolerance,
    float32_error, max_drop,
) -> dict:  # fmt: skip
    """Runs the written artifact, measures it against the Keras outputs; raises on a mismatch."""
    outputs = run_exported(artifact, images, format)
    kind = _kind(format, quantize)
    if outputs.shape != reference.shape:
        raise ExportVerificationError(
            f"{kind} export to {str(path)!r}: outputs of shape {outputs.shape}, expected "
            f"{reference.shape} (the Keras model's)."
        )
    keras_classes = class_probabilities(model, reference).argmax(axis=-1)
    exported_classes = class_probabilities(model, outputs).argmax(axis=-1)
    scale = float(max(1.0, np.max(np.abs(reference))))
    allowed = None
    if quantize is None:
        allowed = tolerance * scale + 2 * (float32_error or 0.0)
    report = {
        "format": format,
        "quantize": quantize,
        "path": str(path),
        "verification_samples": len(images),
        "max_abs_diff": float(np.max(np.abs(outputs - reference))),
        "allowed_abs_diff": allowed,
        "keras_float32_error": float32_error,
        "prediction_agreement": float(np.mean(keras_classes == exported_classes)),
        "keras_accuracy": None,
        "exported_accuracy": None,
        "accuracy_drop": None,
    }
    if labels is not None:
        keras_accuracy = float(np.mean(keras_classes == labels))
        exported_accuracy = float(np.mean(exported_classes == labels))
        report.update(
            keras_accuracy=keras_accuracy,
            exported_accuracy=exported_accuracy,
            accuracy_drop=keras_accuracy - exported_accuracy,
        )
    if quantize == "int8":
        report["max_accuracy_drop"] = max_drop
        if report["accuracy_drop"] > max_drop:
            raise ExportVerificationError(
                f"{kind} export to {str(path)!r}: accuracy drops from "
                f"{report['keras_accuracy']:.4f} (Keras) to {report['exported_accuracy']:.4f} "
                f"on {len(images)} labelled images, {100 * report['accuracy_drop']:.2f} points, "
                f"more than the {100 * max_drop:.2f} allowed (max_accuracy_drop)."
            )
    elif not report["max_abs_diff"] <= report["allowed_abs_diff"]:  # also catches NaN
        raise ExportVerificationError(
            f"{kind} export to {str(path)!r}: outputs differ from the Keras model's by up to "
            f"{report['max_abs_diff']:.3g} on {len(images)} images, more than the "
            f"{allowed:.3g} allowed (tolerance {tolerance:g} x max(1, max |Keras output|) = "
            f"{tolerance:g} x {scale:.3g}, plus twice the Keras model's own float32 error, "
            f"{_describe_error(float32_error)})."
        )
    return report


def _describe_error(float32_error: float | None) -> str:
    return "not measured" if float32_error is None else f"{float32_error:.3g}"


def _kind(format: str, quantize: str | None) -> str:
    return format + (f" ({quantize})" if quantize else "")


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _batches(images: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(images), _BATCH_SIZE):
        yield images[start : start + _BATCH_SIZE]


def _run_savedmodel(path: Path, images: np.ndarray) -> np.ndarray:
    serve = tf.saved_model.load(str(path)).signatures[SIGNATURE]
    outputs = [serve(**{INPUT_NAME: tf.constant(batch)})[OUTPUT_NAME] for batch in _batches(images)]
    return np.concatenate([np.asarray(o, dtype="float32") for o in outputs])


def _tflite_interpreter(**source):
    """A TFLite interpreter (`model_path=` or `model_content=`): LiteRT's when installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        return Interpreter(**source)


def _run_tflite(path: Path, images: np.ndarray) -> np.ndarray:
    interpreter = _tflite_interpreter(model_path=str(path))
    (input_detail,) = interpreter.get_input_details()
    (output_detail,) = interpreter.get_output_details()
    outputs = []
    for batch in _batches(images):
        interpreter.resize_tensor_input(input_detail["index"], batch.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(input_detail["index"], batch.astype(input_detail["dtype"]))
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_tensor(output_detail["index"]), dtype="float32"))
    return np.concatenate(outputs)


def _run_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    _, onnxruntime = _import_onnx_tools()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outputs = [session.run(None, {name: batch})[0] for batch in _batches(images)]
    return np.concatenate(outputs).astype("float32")
