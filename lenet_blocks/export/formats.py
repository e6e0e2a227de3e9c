"""The converters: Keras' own exporters where they work, ours only where they fail.

| format | TensorFlow | JAX | PyTorch |
|---|---|---|---|
| `savedmodel` | Keras' `ExportArchive` | the same (jax2tf) | no (needs torch_xla) |
| `tflite` float32 | Keras' LiteRT exporter | no (Keras: TF, PyTorch) | the same (litert-torch) |
| `tflite` int8 | ours, TFLite converter | no | no |
| `onnx` | Keras' exporter (tf2onnx) | the same (jax2onnx) | the same (torch.onnx) |
| `openvino` | Keras' exporter | no (see below) | Keras' exporter |
| `keras-hub` | `lenet_blocks.hub.save_preset` | the same | the same |

On JAX, Keras' OpenVINO exporter goes through jax2tf, whose `XlaCallModule` op OpenVINO cannot
read. jax2onnx writes max pooling as a 4-axis `MaxPool` that ONNX Runtime rejects
("Unsupported pooling size"); `onnx_repair.repair_max_pools` rewrites it as the 2-d pool it is.

The SavedModel has the `serve` (float32) and `serve_uint8` signatures that the package
docstring describes. A new format adds its name to `lenet_blocks.choices.EXPORT_FORMATS` and
`BACKEND_FORMATS`, a converter here, a runner in `runners.py` and a branch in `export_model`.

Example:
>>> import tempfile
>>> from lenet_blocks import build_lenet
>>> len(convert_litert(build_lenet())) > 40_000
True
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np

from lenet_blocks.arrays import with_channel_axis
from lenet_blocks.choices import EXPORT_FORMATS
from lenet_blocks.export.errors import ExportDependencyError, ExportError
from lenet_blocks.export.onnx_repair import repair_max_pools

FORMATS: tuple[str, ...] = EXPORT_FORMATS
QUANTIZATIONS: tuple[str, ...] = ("int8",)
SIGNATURE = "serve"
UINT8_SIGNATURE = "serve_uint8"
INPUT_NAME = "images"
OUTPUT_NAME = "outputs"
ONNX_OPSET = 17
DEFAULT_CALIBRATION_SAMPLES = 300
OPENVINO_FILE = "model.xml"  # an OpenVINO export is a directory: model.xml and model.bin
# The formats each Keras backend exports, and why the others are not possible there.
BACKEND_FORMATS = {
    "tensorflow": FORMATS,
    "jax": ("savedmodel", "onnx", "keras-hub"),
    "torch": ("tflite", "onnx", "openvino", "keras-hub"),
}
UNSUPPORTED_REASONS = {
    ("jax", "tflite"): "Keras' LiteRT exporter runs on TensorFlow and PyTorch only",
    ("jax", "openvino"): "Keras' OpenVINO exporter goes through jax2tf's XlaCallModule op, "
    "which OpenVINO cannot read",
    ("torch", "savedmodel"): "Keras' SavedModel export on PyTorch needs torch_xla",
}
# The extra with each backend's own converters (on top of `export`).
BACKEND_EXTRAS = {"tensorflow": "export", "jax": "export-jax", "torch": "export-torch"}


def check_backend(format: str, backend: str) -> None:
    """Raises `ValueError` naming the backend and the format if `backend` cannot export it.

    Args:
        format: an export format.
        backend: a Keras backend name.

    Example:
    >>> check_backend("tflite", "jax")
    Traceback (most recent call last):
    ...
    ValueError: `format='tflite'` cannot be exported on the jax Keras backend: Keras' LiteRT ...
    """
    supported = BACKEND_FORMATS.get(backend, ())
    if format not in supported:
        reason = UNSUPPORTED_REASONS.get((backend, format), "no exporter for it")
        raise ValueError(
            f"`format={format!r}` cannot be exported on the {backend} Keras backend: {reason}. "
            f"Formats on {backend}: {supported}; KERAS_BACKEND=tensorflow exports them all."
        )


def input_shape(model: keras.Model) -> tuple:
    """The shape of one input image of `model`, without the batch axis.

    Args:
        model: a `keras.Model` with one input.

    Example:
    >>> from lenet_blocks import build_lenet
    >>> input_shape(build_lenet())
    (28, 28, 1)
    """
    return tuple(model.inputs[0].shape[1:])


def input_spec(model: keras.Model, dtype: str = "float32"):
    """The `tf.TensorSpec` of a batch of images named `images` (TensorFlow, JAX exporters)."""
    import tensorflow as tf

    return tf.TensorSpec((None, *input_shape(model)), dtype, name=INPUT_NAME)


def _spec(model: keras.Model):
    """The input signature of Keras' exporters: a `tf.TensorSpec` on TensorFlow, else Keras'."""
    if keras.backend.backend() == "tensorflow":
        return input_spec(model)
    return keras.InputSpec(shape=(None, *input_shape(model)), dtype="float32", name=INPUT_NAME)


def write_savedmodel(model: keras.Model, path: Path) -> None:
    """Writes a SavedModel with float32 `serve` and uint8 `serve_uint8` signatures.

    Keras' `ExportArchive` (jax2tf on JAX); the endpoints use `keras.ops`, so the same
    functions trace on either backend.

    Args:
        model: a `keras.Model` with one image input.
        path: the SavedModel directory to write.
    """

    def serve(images):
        return {OUTPUT_NAME: keras.ops.cast(model(images, training=False), "float32")}

    def serve_uint8(images):
        return serve(keras.ops.cast(images, "float32"))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, serve, input_signature=[input_spec(model)])
    archive.add_endpoint(UINT8_SIGNATURE, serve_uint8, input_signature=[input_spec(model, "uint8")])
    with _quiet_converters():
        archive.write_out(str(path), verbose=False)


def convert_litert(model: keras.Model) -> bytes:
    """A float32 TFLite (LiteRT) model from Keras' `model.export(format="litert")`.

    On TensorFlow its batch size is free; on PyTorch (litert-torch) it is 1, because
    litert-torch specializes the batch axis when it traces the model.

    Args:
        model: a `keras.Model` with one image input.

    Raises:
        ExportError: if the converter fails.
    """
    with tempfile.TemporaryDirectory(prefix="lenet-litert-") as workdir:
        output = Path(workdir) / "model.tflite"  # Keras' exporter wants this suffix
        _keras_export(model, output, "litert", "TFLite float32 conversion")
        return output.read_bytes()


def draw_calibration(images: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """Up to `samples` of `images`, drawn seeded, in their order, float32 with a channel axis.

    Args:
        images: calibration images `(N, H, W)` or `(N, H, W, C)`, 0-255.
        samples: int. How many to draw (all of them when there are fewer).
        seed: int. Seed of the draw.

    Raises:
        ValueError: if `images` is empty or not 3- or 4-dimensional.

    Example:
    >>> draw_calibration(np.zeros((10, 28, 28), "uint8"), 4, seed=0).shape
    (4, 28, 28, 1)
    """
    images = with_channel_axis(np.asarray(images))
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(
            "`calibration_images` must be a non-empty array (N, H, W) or (N, H, W, C). "
            f"Received: an array of shape {images.shape}"
        )
    chosen = np.random.default_rng(seed).permutation(len(images))[:samples]
    return images[np.sort(chosen)].astype("float32")


def tflite_interpreter(**source):
    """LiteRT's interpreter (`ai_edge_litert`, the `export` extra) on a `.tflite` model.

    Args:
        **source: `model_path=` a `.tflite` file, or `model_content=` its bytes.

    Raises:
        ExportDependencyError: if `ai-edge-litert` is not installed.
    """
    litert = import_dependency("ai_edge_litert.interpreter", "TFLite verification")
    return litert.Interpreter(**source)


def convert_tflite_int8(
    savedmodel: Path, calibration: np.ndarray, full_integer: bool = False
) -> bytes:
    """int8 TFLite (calibrated on `calibration`) with float32 input and output.

    Our converter, not Keras': leaving the output op in float32 needs TFLite's
    `QuantizationDebugger` with that op denylisted, which Keras' LiteRT exporter cannot pass;
    both int8 variants are converted here, from the SavedModel, so they differ in that op only.

    With int8 and `full_integer=False`, the op producing the output (sigmoid, softmax, RBF sum)
    stays float32, on the dequantized int8 values before it: an int8 sigmoid output has a fixed
    1/256 step, so saturated outputs tie (docs/deploy.md shows what that costs).

    Args:
        savedmodel: a SavedModel written by `write_savedmodel`.
        calibration: the int8 calibration images (float32, 4-D).
        full_integer: bool. int8 only: quantize the output op too.

    Raises:
        ExportError: if the converter fails.
    """

    import tensorflow as tf

    def converter():
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(savedmodel), signature_keys=[SIGNATURE]
        )
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        # Input and output stay float32: quantize/dequantize ops sit at the edges.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter

    def representative_dataset():
        for image in calibration:
            yield [image[np.newaxis]]

    try:
        if full_integer:
            return converter().convert()
        float_model = tf.lite.TFLiteConverter.from_saved_model(
            str(savedmodel), signature_keys=[SIGNATURE]
        ).convert()
        interpreter = tflite_interpreter(model_content=float_model)
        output_name = interpreter.get_output_details()[0]["name"]
        int8 = converter()
        int8.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
        with warnings.catch_warnings():
            # The debugger builds a tf.lite.Interpreter inside TensorFlow; its deprecation
            # notice is about TensorFlow's code (ours verifies with LiteRT's interpreter).
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=int8,
                debug_dataset=representative_dataset,
                debug_options=tf.lite.experimental.QuantizationDebugOptions(
                    denylisted_nodes=[output_name]
                ),
            )
            return debugger.get_nondebug_quantized_model()
    except ExportDependencyError:
        raise
    except Exception as error:  # the converter raises ConverterError and plain exceptions
        raise ExportError(f"TFLite int8 conversion failed: {error}") from error


def import_dependency(module: str, what: str, extra: str = "export"):
    """Imports `module`, a package of one of the package's extras, or says which extra has it.

    Args:
        module: the module to import (`"onnxruntime"`, `"ai_edge_litert.interpreter"`).
        what: what needs it, for the message (`"ONNX export"`).
        extra: the `lenet_blocks` extra that installs it.

    Raises:
        ExportDependencyError: (an `ImportError`) naming the extra, when `module` is missing.

    Example:
    >>> import_dependency("json", "A doctest").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = module.split(".")[0].replace("_", "-")
        raise ExportDependencyError(
            f"{what} needs {package} ({error}); install it with "
            f"`pip install 'lenet_blocks[{extra}]'`."
        ) from error


def check_dependencies(format: str) -> None:
    """Raises `ExportDependencyError` before anything is written if `format` lacks a package.

    Args:
        format: the export format.
    """
    backend = keras.backend.backend()
    if format == "onnx":
        import_dependency("onnxruntime", "ONNX export")
        converter = {"tensorflow": "tf2onnx", "jax": "jax2onnx", "torch": "onnxscript"}[backend]
        import_dependency(converter, "ONNX export", BACKEND_EXTRAS[backend])
    elif format == "openvino":
        import_dependency("openvino", "OpenVINO export")
    elif format == "tflite":
        import_dependency("ai_edge_litert", "TFLite verification")
        if backend == "torch":
            import_dependency("litert_torch", "TFLite export on PyTorch", "export-torch")
    elif format == "keras-hub":
        import_dependency("keras_hub", "keras-hub export", extra="hub")


def convert_onnx(model: keras.Model, output: Path, opset: int) -> None:
    """Writes an ONNX file with Keras' `model.export(format="onnx")`, input `images`.

    `output` should end with `.onnx` (the exporters of some backends want the suffix).

    tf2onnx on TensorFlow, jax2onnx on JAX, `torch.onnx` on PyTorch (which needs the model
    called once first: the verification's Keras outputs have done it).

    Args:
        model: a `keras.Model` with one image input.
        output: the ONNX file to write.
        opset: int. The ONNX opset version.

    Raises:
        ExportError: if the exporter fails.
    """
    _keras_export(model, output, "onnx", f"ONNX conversion (opset {opset})", opset_version=opset)
    if keras.backend.backend() == "jax":  # jax2onnx's max pools need a repair to run
        import onnx

        onnx.save(repair_max_pools(onnx.load(str(output))), str(output))


def convert_openvino(model: keras.Model, directory: Path) -> None:
    """Writes an OpenVINO IR (`model.xml`, `model.bin`) into `directory` (Keras' exporter).

    Args:
        model: a `keras.Model` with one image input.
        directory: the directory to create and write.

    Raises:
        ExportError: if the converter fails.
    """
    import_dependency("openvino", "OpenVINO export")
    directory.mkdir(parents=True)
    _keras_export(model, directory / OPENVINO_FILE, "openvino", "OpenVINO conversion")


def _keras_export(model: keras.Model, output: Path, format: str, what: str, **options) -> None:
    """`model.export(output, format=format, ...)` with the `images` input; a failure is one
    `ExportError` line saying `what` failed on which backend (converters raise many types)."""
    try:
        with _quiet_converters():
            model.export(
                str(output),
                format=format,
                input_signature=[_spec(model)],
                verbose=False,
                **options,
            )
    except Exception as error:
        message = " ".join(str(error).split())[:500]
        raise ExportError(
            f"{what} (Keras' exporter on {keras.backend.backend()}) failed: {message}"
        ) from error


@contextlib.contextmanager
def _quiet_converters():
    """tf2onnx's INFO lines and the converters' tracing warnings stay out of the output."""
    logger = logging.getLogger("tf2onnx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="torch.*")
            warnings.filterwarnings("ignore", message=".*np.object.*")
            yield
    finally:
        logger.setLevel(level)
