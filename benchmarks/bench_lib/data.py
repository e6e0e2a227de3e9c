"""Input arrays for the benchmarks, NumPy only (the peers' subprocesses import this too)."""

from __future__ import annotations

import numpy as np


def synthetic_data(samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images `(samples, 28, 28, 1)` and int32 labels in 0..9: throughput does
    not depend on pixel values, and no data set is needed to measure it.

    Example:
    >>> images, labels = synthetic_data(4)
    >>> images.shape, images.dtype.name, labels.dtype.name
    ((4, 28, 28, 1), 'uint8', 'int32')
    """
    generator = np.random.default_rng(seed)
    images = generator.integers(0, 256, size=(samples, 28, 28, 1), dtype=np.uint8)
    labels = generator.integers(0, 10, size=(samples,), dtype=np.int32)
    return images, labels


def nearest_divisor(number: int, target: int) -> int:
    """The divisor of `number` closest to `target`, e.g. evaluation intervals (in steps) that
    end exactly at epoch ends, so Keras never reports running out of data.

    Example:
    >>> nearest_divisor(1875, 312)
    375
    """
    divisors = [d for d in range(1, number + 1) if number % d == 0]
    return min(divisors, key=lambda divisor: (abs(divisor - target), divisor))
