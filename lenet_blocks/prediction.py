"""Read image files and report a model's top-k classes for them."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from lenet_blocks.arrays import with_channel_axis
from lenet_blocks.datasets import FASHION_MNIST_CLASS_NAMES
from lenet_blocks.objectives import class_probabilities
from lenet_blocks.validation import is_positive_int


def load_images(path: str | os.PathLike, size: tuple[int, int], channels: int) -> np.ndarray:
    """Images of one file as a uint8-valued float array `(N, height, width, channels)`.

    PNG/JPEG files are converted to grayscale (or RGB for 3 channels) and resized to `size`;
    `.npy` files hold one image `(H, W)`/`(H, W, C)` or a batch `(N, H, W)`/`(N, H, W, C)` of
    0-255 values at the model's size. Fashion-MNIST images are light objects on black.
    Everything is checked before it is decoded or copied: a `.npy` file is memory-mapped
    until its dtype and shape pass, and an image that declares more pixels than PIL decodes
    safely (`PIL.Image.MAX_IMAGE_PIXELS`) is refused from its header.

    Args:
        path: a PNG/JPEG (anything PIL opens) or `.npy` file.
        size: `(height, width)` of the model's input.
        channels: 1 (grayscale) or 3 (RGB).

    Returns:
        A float32 array `(N, height, width, channels)`, N >= 1.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file, if it is not a readable image or array, is not of the
            model's size, holds no images, holds values that are not real numbers (complex,
            strings) or not finite (NaN, infinity), or declares too many pixels.

    Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "batch.npy"
    >>> np.save(path, np.zeros((2, 28, 28), "uint8"))
    >>> load_images(path, (28, 28), 1).shape
    (2, 28, 28, 1)
    >>> np.save(path, np.full((28, 28), np.nan))
    >>> load_images(path, (28, 28), 1)
    Traceback (most recent call last):
    ...
    ValueError: '.../batch.npy' holds non-finite values (NaN or infinity) ...
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No image file at {str(path)!r}.")
    if path.suffix.lower() == ".npy":
        return _load_array(path, size, channels)
    return _load_picture(path, size, channels)


def _load_array(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{str(path)!r} is not a readable .npy array: {error}") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{str(path)!r} is not a .npy array (an .npz archive?).")
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"{str(path)!r} must hold real numbers (bool, int or float). Received: an array "
            f"of dtype {array.dtype}"
        )
    shape = array.shape
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == channels):
        array = array[np.newaxis]
    array = with_channel_axis(array) if array.ndim == 3 else array
    if array.ndim != 4 or array.shape[1:] != (*size, channels):
        raise ValueError(
            f"{str(path)!r} must hold images of shape {(*size, channels)} (or a batch of "
            f"them). Received: an array of shape {shape}"
        )
    if len(array) == 0:
        raise ValueError(f"{str(path)!r} holds no images. Received: an array of shape {shape}")
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused below
        images = np.array(array, dtype="float32")  # a copy: the mapped file is not kept open
    if not np.isfinite(images).all():
        raise ValueError(
            f"{str(path)!r} holds non-finite values (NaN or infinity) after conversion to "
            "float32; images must hold finite 0-255 values."
        )
    return images


def _load_picture(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # PIL warns above MAX_IMAGE_PIXELS and raises above twice that; refuse both.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image = image.convert("L" if channels == 1 else "RGB").resize(size[::-1])
                array = np.asarray(image, dtype="float32")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ValueError(
            f"{str(path)!r} is refused before decoding: {str(error).rstrip('.')} (the limit is "
            "PIL.Image.MAX_IMAGE_PIXELS)."
        ) from None
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{str(path)!r} is not a readable image: {error}") from None
    return with_channel_axis(array[np.newaxis])


def predict_files(
    model: keras.Model,
    paths: Sequence[str | os.PathLike],
    top_k: int = 3,
    class_names: Sequence[str] = FASHION_MNIST_CLASS_NAMES,
) -> list[dict]:
    """The `top_k` classes and probabilities of every image in `paths`.

    Args:
        model: a `keras.Model` taking `(N, height, width, channels)` images.
        paths: image files, read by `load_images`.
        top_k: positive int. Classes reported per image, most probable first.
        class_names: names of the model's classes, by index (an index past the end is
            reported as its number).

    Returns:
        One dict per image: `{"file", "index", "top": [(class name, probability), ...]}`.

    Raises:
        FileNotFoundError, ValueError: see `load_images`; `ValueError` for a bad `top_k`.

    Example:
    >>> import pathlib, tempfile
    >>> from lenet_blocks import build_lenet
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "batch.npy"
    >>> np.save(path, np.zeros((2, 28, 28), "uint8"))
    >>> results = predict_files(build_lenet(), [path], top_k=2)
    >>> [(result["index"], len(result["top"])) for result in results]
    [(0, 2), (1, 2)]
    """
    if not is_positive_int(top_k):
        raise ValueError(f"`top_k` must be a positive int. Received: top_k={top_k!r}")
    _, height, width, channels = model.input_shape
    results = []
    for path in paths:
        images = load_images(path, (height, width), channels)
        probabilities = class_probabilities(model, model.predict(images, verbose=0))
        for index, row in enumerate(probabilities):
            best = np.argsort(row)[::-1][:top_k]
            top = [(_class_name(class_names, c), float(row[c])) for c in best]
            results.append({"file": str(path), "index": index, "top": top})
    return results


def format_predictions(results: list[dict]) -> str:
    """One line per image: `file[index]: class (probability), ...`.

    Example:
    >>> print(format_predictions([{"file": "a.png", "index": 0, "top": [("Bag", 0.91)]}]))
    a.png[0]: Bag (0.910)
    """
    lines = []
    for result in results:
        top = ", ".join(f"{name} ({probability:.3f})" for name, probability in result["top"])
        lines.append(f"{result['file']}[{result['index']}]: {top}")
    return "\n".join(lines)


def _class_name(class_names: Sequence[str], index: int) -> str:
    return class_names[index] if index < len(class_names) else str(index)
