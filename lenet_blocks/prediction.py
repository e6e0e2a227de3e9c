"""Read image files and report a model's top-k classes for them (`lenet-blocks predict`)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from lenet_blocks.inference import (
    decode_predictions,
    head_classes,
    model_class_names,
    preprocess_input,
)
from lenet_blocks.objectives import class_probabilities
from lenet_blocks.validation import is_positive_int


def read_image_file(path: str | os.PathLike) -> np.ndarray:
    """The pixels of one file, as they are in it: an array of its own shape and dtype.

    PNG/JPEG (anything PIL opens) files give `(H, W)` for grayscale and `(H, W, 3)` or
    `(H, W, 4)` for colour; `.npy` files give their array (one image or a batch), memory-mapped
    so that `check_images` refuses a bad one before it is copied. An image that declares more
    pixels than PIL decodes safely (`PIL.Image.MAX_IMAGE_PIXELS`) is refused from its header.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file, if it is not a readable image or `.npy` array, or
            declares too many pixels.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No image file at {str(path)!r}.")
    if path.suffix.lower() == ".npy":
        return _read_array(path)
    return _read_picture(path)


def load_images(
    path: str | os.PathLike, model: keras.Model, invert: bool | str = "auto"
) -> np.ndarray:
    """The images of one file as the batch `model` expects (`preprocess_input`'s rules).

    Args:
        path: a PNG/JPEG or `.npy` file (see `read_image_file`).
        model: the `keras.Model` to feed.
        invert: the polarity rule of `preprocess_input` (`"auto"`, `True`, `False`).

    Returns:
        A float32 array `(N, height, width, channels)` of 0-255 values, N >= 1.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file, for anything `read_image_file` or `preprocess_input`
            refuses (no images, complex or string values, NaN or infinity, a shape that is no
            image, too many pixels).

    Example:
    >>> import pathlib, tempfile
    >>> from lenet_blocks import build_lenet
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "batch.npy"
    >>> np.save(path, np.zeros((2, 28, 28), "uint8"))
    >>> load_images(path, build_lenet()).shape
    (2, 28, 28, 1)
    >>> np.save(path, np.full((28, 28), np.nan))
    >>> load_images(path, build_lenet())
    Traceback (most recent call last):
    ...
    ValueError: '.../batch.npy' holds non-finite values (NaN or infinity) ...
    """
    return preprocess_input(read_image_file(path), model, invert, what=repr(str(path)))


def _read_array(path: Path) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{str(path)!r} is not a readable .npy array: {error}") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{str(path)!r} is not a .npy array (an .npz archive?).")
    return array


def _read_picture(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # PIL warns above MAX_IMAGE_PIXELS and raises above twice that; refuse both.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.mode not in ("L", "RGB", "RGBA"):
                    image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
                return np.asarray(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ValueError(
            f"{str(path)!r} is refused before decoding: {error} (the limit is "
            "PIL.Image.MAX_IMAGE_PIXELS)"
        ) from None
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{str(path)!r} is not a readable image: {error}") from None


def predict_files(
    model: keras.Model,
    paths: Sequence[str | os.PathLike],
    top_k: int = 3,
    class_names: Sequence[str] | None = None,
    invert: bool | str = "auto",
) -> list[dict]:
    """The `top_k` classes and probabilities of every image in `paths`.

    Works for every model `build_lenet` makes: any output (softmax, sigmoid, logits, LeNet-5's
    RBF distances), any `classes`, fixed or free (`None`) image sizes.

    Args:
        model: a `keras.Model` with a classification head.
        paths: image files, read by `load_images`.
        top_k: positive int. Classes reported per image, most probable first.
        class_names: names of the model's classes; default: the names the model carries
            (`inference.model_class_names`), else the class indices.
        invert: the polarity rule of `preprocess_input`.

    Returns:
        One dict per image: `{"file", "index", "top": [(class name, probability), ...]}`.

    Raises:
        FileNotFoundError, ValueError: see `load_images`; `ValueError` for a bad `top_k`, a
            headless model or `class_names` of the wrong length.

    Example:
    >>> import pathlib, tempfile
    >>> from lenet_blocks import build_lenet
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "batch.npy"
    >>> np.save(path, np.zeros((2, 28, 28), "uint8"))
    >>> results = predict_files(build_lenet(classes=3, class_names=["a", "b", "c"]), [path], 2)
    >>> [(result["index"], len(result["top"])) for result in results]
    [(0, 2), (1, 2)]
    """
    if not is_positive_int(top_k):
        raise ValueError(f"`top_k` must be a positive int. Received: top_k={top_k!r}")
    classes = head_classes(model)
    names = class_names if class_names is not None else model_class_names(model)
    results = []
    for path in paths:
        images = load_images(path, model, invert)
        probabilities = class_probabilities(model, model.predict(images, verbose=0))
        decoded = decode_predictions(probabilities, top=min(top_k, classes), class_names=names)
        for index, row in enumerate(decoded):
            top = [(name, score) for _, name, score in row]
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
