"""Runs an exported model in its own runtime: TensorFlow, the TFLite interpreter, ONNX Runtime.

None of these runtimes needs `lenet_blocks` or Keras to load the artifact.

Example:
>>> import tempfile
>>> from lenet_blocks import build_lenet
>>> from lenet_blocks.export.formats import write_savedmodel
>>> path = Path(tempfile.mkdtemp()) / "lenet_savedmodel"
>>> write_savedmodel(build_lenet(), path)
>>> run_exported(path, np.zeros((2, 28, 28), "uint8")).shape
(2, 10)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf

from lenet_blocks.arrays import with_channel_axis
from lenet_blocks.export.formats import (
    FORMATS,
    INPUT_NAME,
    OUTPUT_NAME,
    SIGNATURE,
    import_onnx_tools,
    tflite_interpreter,
)

BATCH_SIZE = 1000  # images per call of a runtime


def run_exported(
    path: str | os.PathLike, images: np.ndarray, format: str | None = None
) -> np.ndarray:
    """Runs an exported model on `images` in its own runtime; returns float32 outputs.

    SavedModels run with `tf.saved_model.load` (the `serve` signature), TFLite files with the
    TFLite interpreter (`ai_edge_litert` when installed, else `tf.lite.Interpreter`), ONNX
    files with ONNX Runtime.

    Args:
        path: a SavedModel directory, a `.tflite` or an `.onnx` file.
        images: uint8 or float images `(N, H, W)` or `(N, H, W, C)`, 0-255.
        format: `"savedmodel"`, `"tflite"` or `"onnx"`; default: from `path` (a directory is
            a SavedModel, else the file suffix).

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the format cannot be told from `path`.

    Example:
    >>> run_exported("nowhere.tflite", np.zeros((1, 28, 28)))
    Traceback (most recent call last):
    ...
    FileNotFoundError: No exported model at 'nowhere.tflite'.
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


def _batches(images: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(images), BATCH_SIZE):
        yield images[start : start + BATCH_SIZE]


def _run_savedmodel(path: Path, images: np.ndarray) -> np.ndarray:
    serve = tf.saved_model.load(str(path)).signatures[SIGNATURE]
    outputs = [serve(**{INPUT_NAME: tf.constant(batch)})[OUTPUT_NAME] for batch in _batches(images)]
    return np.concatenate([np.asarray(o, dtype="float32") for o in outputs])


def _run_tflite(path: Path, images: np.ndarray) -> np.ndarray:
    interpreter = tflite_interpreter(model_path=str(path))
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
    _, onnxruntime = import_onnx_tools()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outputs = [session.run(None, {name: batch})[0] for batch in _batches(images)]
    return np.concatenate(outputs).astype("float32")
