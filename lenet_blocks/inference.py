"""Inference for every model the builder makes: `preprocess_input`, `decode_predictions`, and
the class names a model carries.

The models of this package take raw 0-255 pixels (a preset that scales them does it inside the
model), light objects on a dark background as in Fashion-MNIST and MNIST, at the model's input
size. `preprocess_input` turns what users have into that:

- **Layout.** One image `(H, W)` / `(H, W, C)`, a batch `(N, H, W)` / `(N, H, W, C)`, a PIL
  image, or a list of images of one size.
- **Channels.** RGB(A) to one channel by luminance (ITU-R 601-2, as PIL's `convert("L")`); one
  channel to three by repetition.
- **Size.** Images of another size are resized to fit inside the model's height and width,
  keeping their aspect ratio, and padded with the background (0) to the full size, centred
  (`keras.ops.image.resize(..., pad_to_aspect_ratio=True)`). A model with a free size (`None`)
  keeps the image's.
- **Polarity.** With `invert="auto"` (the default), an image whose border is brighter on average
  than mid-grey (127.5) is taken for a dark object on a light background and inverted
  (`255 - x`); `invert=True`/`False` forces it.
- **Range.** Values stay 0-255. A float input whose values all lie in [0, 1] gets a warning: it
  looks scaled already, and the model expects 0-255.

Example:
>>> import numpy as np
>>> from lenet_blocks import build_lenet
>>> model = build_lenet()
>>> preprocess_input(np.zeros((64, 48, 3), "uint8"), model).shape
(1, 28, 28, 1)
>>> decode_predictions(np.array([[0.1, 0.7, 0.2]]), top=2, class_names=["a", "b", "c"])
[[(1, 'b', 0.7), (2, 'c', 0.2)]]
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import keras
import numpy as np

__all__ = [
    "check_images",
    "decode_predictions",
    "head_classes",
    "model_class_names",
    "preprocess_input",
]

LUMINANCE = np.array([0.299, 0.587, 0.114], "float32")  # ITU-R 601-2, PIL's "L" conversion
MID_GREY = 127.5


def head_classes(model: keras.Model) -> int:
    """The number of classes of `model`'s head; `ValueError` for a headless model.

    Example:
    >>> from lenet_blocks import build_lenet
    >>> head_classes(build_lenet(classes=4))
    4
    """
    shape = tuple(model.output_shape)
    if len(shape) != 2 or shape[-1] is None:
        raise ValueError(
            "The model must end with a classification head giving (batch, classes) scores; a "
            "headless model (include_top=False) cannot be evaluated or predict classes. "
            f"Received: a model with output shape {shape}"
        )
    return shape[-1]


def model_class_names(model: keras.Model) -> tuple[str, ...] | None:
    """The class names `model` carries (its head's `class_names`), or `None`.

    Example:
    >>> from lenet_blocks import build_lenet
    >>> model_class_names(build_lenet(classes=2, class_names=["cat", "dog"]))
    ('cat', 'dog')
    >>> model_class_names(build_lenet()) is None
    True
    """
    names = getattr(model.layers[-1], "class_names", None)
    return None if names is None else tuple(names)


def _as_array(images, what: str) -> np.ndarray:
    """`images` (an array, a PIL image, a list of images of one shape) as one NumPy array."""
    if hasattr(images, "getbands"):  # a PIL image
        return np.asarray(images)
    if isinstance(images, list | tuple):
        arrays = [np.asarray(image) for image in images]
        if not arrays or len({a.shape for a in arrays}) != 1:
            raise ValueError(
                f"{what} must be a non-empty list of images of one shape. "
                f"Received: shapes {[a.shape for a in arrays]}"
            )
        return np.stack(arrays)
    return images if isinstance(images, np.ndarray) else np.asarray(images)


def check_images(images, what: str = "`images`") -> np.ndarray:
    """`images` as a 4-D float32 array `(N, H, W, C)`, C in 1, 3, 4; `ValueError` otherwise.

    Args:
        images: an array, a PIL image, or a list of images of one shape.
        what: how error messages name the input (a file name for a file).

    Example:
    >>> check_images(np.zeros((28, 28), "uint8")).shape
    (1, 28, 28, 1)
    """
    array = _as_array(images, what)
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"{what} must hold real numbers (bool, int or float). "
            f"Received: an array of dtype {array.dtype}"
        )
    shape = array.shape
    if array.ndim == 2:
        array = array[np.newaxis, ..., np.newaxis]
    elif array.ndim == 3:
        array = array[np.newaxis] if array.shape[-1] in (1, 3, 4) else array[..., np.newaxis]
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{what} must be (H, W), (H, W, C), (N, H, W) or (N, H, W, C) with C in 1, 3, 4. "
            f"Received: an array of shape {shape}"
        )
    if array.size == 0:
        raise ValueError(f"{what} holds no images. Received: an array of shape {shape}")
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused below
        batch = np.array(array, dtype="float32")  # a copy (a memory-mapped file is let go)
    if not np.isfinite(batch).all():
        raise ValueError(
            f"{what} holds non-finite values (NaN or infinity) after conversion to float32; "
            "images must hold finite 0-255 values."
        )
    return batch


def preprocess_input(
    images, model: keras.Model, invert: bool | str = "auto", *, what: str = "`images`"
) -> np.ndarray:
    """Turns images as users have them into the batch `model` expects (see the module docs).

    Args:
        images: an array, a PIL image, or a list of images of one shape (see above).
        model: the `keras.Model` to feed: its input shape gives the size and channels.
        invert: `"auto"`, `True` or `False`: the polarity rule.
        what: how error messages name the input (e.g. the file it came from).

    Returns:
        A float32 array `(N, height, width, channels)` of 0-255 values.

    Raises:
        ValueError: empty, complex, non-numeric or non-finite input, a layout that is not an
            image, or a bad `invert`.
    """
    if invert not in ("auto", True, False):
        raise ValueError(f"`invert` must be 'auto', True or False. Received: invert={invert!r}")
    source = _as_array(images, what)  # once: a list is stacked, a PIL image decoded, here only
    batch = check_images(source, what)
    if source.dtype.kind == "f" and batch.max() <= 1.0:
        warnings.warn(
            f"The values of {what} all lie in [0, 1]; the model expects 0-255 pixels. "
            "Multiply by 255 if they were scaled.",
            stacklevel=2,
        )
    _, height, width, channels = model.input_shape
    if batch.shape[-1] == 4:
        batch = batch[..., :3]  # alpha dropped
    if channels == 1 and batch.shape[-1] == 3:
        batch = (batch @ LUMINANCE)[..., np.newaxis]
    elif channels == 3 and batch.shape[-1] == 1:
        batch = np.repeat(batch, 3, axis=-1)
    border = np.concatenate(
        [batch[:, 0].reshape(len(batch), -1), batch[:, -1].reshape(len(batch), -1),
         batch[:, :, 0].reshape(len(batch), -1), batch[:, :, -1].reshape(len(batch), -1)],
        axis=1,
    )  # fmt: skip
    flip = border.mean(axis=1) > MID_GREY if invert == "auto" else np.full(len(batch), invert)
    batch = np.where(flip[:, None, None, None], 255.0 - batch, batch)
    size = (height or batch.shape[1], width or batch.shape[2])
    if batch.shape[1:3] != size:
        batch = keras.ops.convert_to_numpy(
            keras.ops.image.resize(batch, size, pad_to_aspect_ratio=True, fill_value=0.0)
        )
    return np.clip(batch, 0.0, 255.0).astype("float32")


def decode_predictions(
    predictions, top: int = 5, class_names: Sequence[str] | None = None
) -> list[list[tuple[int, str, float]]]:
    """The `top` classes of each row of `predictions`, `keras.applications` style.

    Args:
        predictions: array `(N, classes)` of probabilities or scores (higher is better; for
            LeNet-5's distances pass `lenet_blocks.objectives.class_probabilities` first).
        top: int. Classes per row, best first.
        class_names: names by class index (default: the index as a string).

    Returns:
        One list per row of `(class index, class name, score)` tuples.
    """
    from lenet_blocks.validation import is_positive_int

    predictions = np.asarray(predictions)
    if predictions.ndim != 2 or predictions.shape[1] == 0:
        raise ValueError(
            "`predictions` must be a 2-D array (samples, classes). "
            f"Received: predictions with shape {predictions.shape}"
        )
    if not is_positive_int(top):
        raise ValueError(f"`top` must be a positive int. Received: top={top!r}")
    classes = predictions.shape[1]
    if class_names is not None and len(class_names) != classes:
        raise ValueError(
            f"`class_names` must name the {classes} classes of `predictions`. "
            f"Received: {len(class_names)} class names"
        )
    names = [str(i) for i in range(classes)] if class_names is None else list(class_names)
    decoded = []
    for row in predictions:
        best = np.argsort(row, kind="stable")[::-1][:top]
        decoded.append([(int(c), names[c], float(row[c])) for c in best])
    return decoded
