"""NumPy helpers for image arrays, importable without TensorFlow (prediction, export, search).

Example:
>>> with_channel_axis(np.zeros((2, 28, 28), "uint8")).shape
(2, 28, 28, 1)
"""

from __future__ import annotations

import numpy as np

__all__ = ["split_validation", "with_channel_axis"]


def split_validation(
    images: np.ndarray, labels: np.ndarray, validation_split: float = 0.1
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Holds out the last `validation_split` of the samples, as `model.fit(validation_split=...)`.

    Args:
        images: array of images, first axis the samples.
        labels: array of labels, same length as `images`.
        validation_split: float in `[0, 1)`. Fraction held out for validation.

    Returns:
        `((train_images, train_labels), (validation_images, validation_labels))`.

    Raises:
        ValueError: if `validation_split` is outside `[0, 1)` or the arrays' lengths differ.

    Example:
    >>> (x, y), (xv, yv) = split_validation(np.zeros((10, 2)), np.arange(10), 0.1)
    >>> x.shape, yv.tolist()
    ((9, 2), [9])
    """
    if not 0 <= validation_split < 1:
        raise ValueError(
            f"`validation_split` must be in [0, 1). Received: validation_split={validation_split!r}"
        )
    if len(images) != len(labels):
        raise ValueError(
            "`images` and `labels` must have the same length. "
            f"Received: {len(images)} images and {len(labels)} labels"
        )
    split_at = int(len(images) * (1 - validation_split))
    return (images[:split_at], labels[:split_at]), (images[split_at:], labels[split_at:])


def with_channel_axis(images: np.ndarray) -> np.ndarray:
    """Adds a trailing channel axis to `(N, H, W)` images; `(N, H, W, C)` passes through.

    Example:
    >>> with_channel_axis(np.zeros((2, 28, 28), "uint8")).shape
    (2, 28, 28, 1)
    """
    return images[..., np.newaxis] if images.ndim == 3 else images
