"""Runs an exported model in its own runtime: TensorFlow, LiteRT, ONNX Runtime, OpenVINO, keras-hub.

None of these runtimes but keras-hub's needs `lenet_blocks` or Keras to load the artifact (a
keras-hub preset is Keras: `ImageClassifier.from_preset`, with `lenet_blocks.hub` imported).

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

from lenet_blocks.arrays import with_channel_axis
from lenet_blocks.export.formats import (
    FORMATS,
    INPUT_NAME,
    OPENVINO_FILE,
    OUTPUT_NAME,
    SIGNATURE,
    import_dependency,
    tflite_interpreter,
)

_SUFFIXES = {".tflite": "tflite", ".onnx": "onnx"}

BATCH_SIZE = 1000  # images per call of a runtime


def run_exported(
    path: str | os.PathLike, images: np.ndarray, format: str | None = None
) -> np.ndarray:
    """Runs an exported model on `images` in its own runtime; returns float32 outputs.

    SavedModels run with `tf.saved_model.load` (the `serve` signature), TFLite files with
    LiteRT's interpreter (`ai_edge_litert`), ONNX files with ONNX Runtime, OpenVINO
    directories with OpenVINO's runtime on the CPU, keras-hub presets with
    `keras_hub.models.ImageClassifier.from_preset` (and its preprocessor).

    Args:
        path: a SavedModel, OpenVINO or keras-hub preset directory, a `.tflite` or an `.onnx`
            file.
        images: uint8 or float images `(N, H, W)` or `(N, H, W, C)`, 0-255.
        format: one of `FORMATS`; default: from `path` (a directory holding `model.xml` is
            OpenVINO, one holding `task.json` a keras-hub preset, another a SavedModel; a
            file by its suffix).

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
        format = _format_of(path)
    if format not in FORMATS:
        raise ValueError(
            f"`format` must be one of {FORMATS} (or a path that is a directory, *.tflite or "
            f"*.onnx). Received: format={format!r} for {str(path)!r}"
        )
    images = with_channel_axis(np.asarray(images)).astype("float32")
    run = {
        "savedmodel": _run_savedmodel,
        "tflite": _run_tflite,
        "onnx": _run_onnx,
        "openvino": _run_openvino,
        "keras-hub": _run_keras_hub,
    }[format]
    return run(path, images)


def _format_of(path: Path) -> str | None:
    if not path.is_dir():
        return _SUFFIXES.get(path.suffix.lower())
    if (path / OPENVINO_FILE).is_file():
        return "openvino"
    return "keras-hub" if (path / "task.json").is_file() else "savedmodel"


def _batches(images: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(images), BATCH_SIZE):
        yield images[start : start + BATCH_SIZE]


def _run_savedmodel(path: Path, images: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures[SIGNATURE]
    outputs = [serve(**{INPUT_NAME: tf.constant(batch)})[OUTPUT_NAME] for batch in _batches(images)]
    return np.concatenate([np.asarray(o, dtype="float32") for o in outputs])


def _run_tflite(path: Path, images: np.ndarray) -> np.ndarray:
    interpreter = tflite_interpreter(model_path=str(path))
    (input_detail,) = interpreter.get_input_details()
    (output_detail,) = interpreter.get_output_details()
    # A model of one image per call (litert-torch's) runs image by image.
    if input_detail["shape_signature"][0] == 1:
        batches = (images[i : i + 1] for i in range(len(images)))
    else:
        batches = _batches(images)
    outputs, size = [], None
    for batch in batches:
        if size != len(batch):
            interpreter.resize_tensor_input(input_detail["index"], batch.shape)
            interpreter.allocate_tensors()
            size = len(batch)
        interpreter.set_tensor(input_detail["index"], batch.astype(input_detail["dtype"]))
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_tensor(output_detail["index"]), dtype="float32"))
    return np.concatenate(outputs)


def _run_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    onnxruntime = import_dependency("onnxruntime", "ONNX export")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outputs = [session.run(None, {name: batch})[0] for batch in _batches(images)]
    return np.concatenate(outputs).astype("float32")


def _run_openvino(path: Path, images: np.ndarray) -> np.ndarray:
    openvino = import_dependency("openvino", "OpenVINO export")
    compiled = openvino.Core().compile_model(str(path / OPENVINO_FILE), "CPU")
    outputs = [compiled(batch)[0] for batch in _batches(images)]
    return np.concatenate(outputs).astype("float32")


def _run_keras_hub(path: Path, images: np.ndarray) -> np.ndarray:
    keras_hub = import_dependency("keras_hub", "Running a keras-hub preset", extra="hub")
    import lenet_blocks.hub  # noqa: F401  (registers the LeNet task for from_preset)

    classifier = keras_hub.models.ImageClassifier.from_preset(str(path))
    outputs = classifier.predict(images, batch_size=BATCH_SIZE, verbose=0)
    return np.asarray(outputs, dtype="float32")
