"""The converters: a SavedModel through Keras' `ExportArchive`, then TFLite or ONNX from it.

The SavedModel has the `serve` (float32) and `serve_uint8` signatures that the package
docstring describes; TFLite and ONNX are converted from its `serve` signature. A new format
adds its name to `lenet_blocks.choices.EXPORT_FORMATS`, a converter here, a runner in
`runners.py` and a branch in `export_model`.

Example:
>>> import tempfile
>>> from lenet_blocks import build_lenet
>>> savedmodel = Path(tempfile.mkdtemp()) / "savedmodel"
>>> write_savedmodel(build_lenet(), savedmodel)
>>> len(convert_tflite(savedmodel, calibration=None)) > 40_000
True
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from lenet_blocks.arrays import with_channel_axis
from lenet_blocks.choices import EXPORT_FORMATS
from lenet_blocks.export.errors import ExportDependencyError, ExportError

FORMATS: tuple[str, ...] = EXPORT_FORMATS
QUANTIZATIONS: tuple[str, ...] = ("int8",)
SIGNATURE = "serve"
UINT8_SIGNATURE = "serve_uint8"
INPUT_NAME = "images"
OUTPUT_NAME = "outputs"
ONNX_OPSET = 17
DEFAULT_CALIBRATION_SAMPLES = 300


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


def write_savedmodel(model: keras.Model, path: Path) -> None:
    """Writes a SavedModel with float32 `serve` and uint8 `serve_uint8` signatures.

    Args:
        model: a `keras.Model` with one image input.
        path: the SavedModel directory to write.
    """
    shape = (None, *input_shape(model))

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
    """A TFLite interpreter (`model_path=` or `model_content=`): LiteRT's when installed.

    Args:
        **source: `model_path=` a `.tflite` file, or `model_content=` its bytes.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        return Interpreter(**source)


def convert_tflite(
    savedmodel: Path, calibration: np.ndarray | None, full_integer: bool = False
) -> bytes:
    """float32 TFLite, or int8 (calibrated on `calibration`) with float32 input and output.

    With int8 and `full_integer=False`, the op producing the output (sigmoid, softmax, RBF sum)
    stays float32, on the dequantized int8 values before it: an int8 sigmoid output has a fixed
    1/256 step, so saturated outputs tie (docs/deploy.md shows what that costs).

    Args:
        savedmodel: a SavedModel written by `write_savedmodel`.
        calibration: `None` for float32, else the int8 calibration images (float32, 4-D).
        full_integer: bool. int8 only: quantize the output op too.

    Raises:
        ExportError: if the converter fails.
    """

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


def import_onnx_tools():
    """Returns the modules `(tf2onnx, onnxruntime)`.

    Raises:
        ExportDependencyError: (an `ImportError`) naming the `export` extra, when one is missing.
    """
    try:
        import onnxruntime
        import tf2onnx
    except ImportError as error:
        raise ExportDependencyError(
            f"ONNX export needs tf2onnx and onnxruntime ({error}); install them with "
            "`pip install 'lenet_blocks[export]'`."
        ) from error
    return tf2onnx, onnxruntime


def convert_onnx(savedmodel: Path, output: Path, opset: int) -> None:
    """Converts the `serve` function of `savedmodel` to an ONNX file at `output`.

    `tf2onnx.convert.from_keras` fails on Keras 3 models; the SavedModel's restored `serve`
    function converts cleanly with `from_function`.

    Args:
        savedmodel: a SavedModel written by `write_savedmodel`.
        output: the ONNX file to write.
        opset: int. The ONNX opset version.

    Raises:
        ExportError: if tf2onnx fails.
        ExportDependencyError: if tf2onnx or onnxruntime is not installed.
    """
    tf2onnx, _ = import_onnx_tools()
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
