"""Read image files and report a model's top-k classes for them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from lenet_blocks.datasets import FASHION_MNIST_CLASS_NAMES
from lenet_blocks.objectives import class_probabilities
from lenet_blocks.pipeline import with_channel_axis


def load_images(path: str | os.PathLike, size: tuple[int, int], channels: int) -> np.ndarray:
    """Images of one file as a uint8-valued float array `(N, height, width, channels)`.

    PNG/JPEG files are converted to grayscale (or RGB for 3 channels) and resized to `size`;
    `.npy` files hold one image `(H, W)`/`(H, W, C)` or a batch `(N, H, W)`/`(N, H, W, C)` of
    0-255 values at the model's size. Fashion-MNIST images are light objects on black.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if it is not a readable image/array of the expected size, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No image file at {str(path)!r}.")
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"{str(path)!r} is not a readable .npy array: {error}") from None
        if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == channels):
            array = array[np.newaxis]
        array = with_channel_axis(array) if array.ndim == 3 else array
        if array.ndim != 4 or array.shape[1:] != (*size, channels):
            raise ValueError(
                f"{str(path)!r} must hold images of shape {(*size, channels)} (or a batch of "
                f"them). Received: an array of shape {np.load(path).shape}"
            )
        return array.astype("float32")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB").resize(size[::-1])
            array = np.asarray(image, dtype="float32")
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

    Returns:
        One dict per image: `{"file", "index", "top": [(class name, probability), ...]}`.
    """
    if not isinstance(top_k, int) or top_k < 1:
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
