"""Helpers that write small synthetic Fashion-MNIST-style IDX files for tests."""

import gzip
import struct
from pathlib import Path

import numpy as np

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"

Dataset = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """Encodes a `uint8` array as IDX; `magic` defaults to `0x0801`/`0x0803` by ndim."""
    if magic is None:
        magic = 0x00000800 | array.ndim
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_bytes(path: Path, content: bytes, compress: bool | None = None) -> Path:
    """Writes `content`, gzipped when `compress` is true (default: path ends in `.gz`)."""
    if compress is None:
        compress = path.suffix == ".gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> Path:
    """Writes `array` as an IDX file at `path`, gzipped if `path` ends in `.gz`."""
    return write_bytes(path, idx_bytes(array, magic))


def make_dataset(num_train: int = 12, num_test: int = 5, seed: int = 0) -> Dataset:
    """Returns random `((x_train, y_train), (x_test, y_test))` `uint8` arrays."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=(n,), dtype=np.uint8)
        return images, labels

    return split(num_train), split(num_test)


def write_dataset(directory: Path, dataset: Dataset, compress: bool = True) -> Path:
    """Writes the four Fashion-MNIST files of `dataset` into `directory`."""
    (x_train, y_train), (x_test, y_test) = dataset
    suffix = ".gz" if compress else ""
    for name, array in (
        (TRAIN_IMAGES, x_train),
        (TRAIN_LABELS, y_train),
        (TEST_IMAGES, x_test),
        (TEST_LABELS, y_test),
    ):
        write_idx(directory / f"{name}{suffix}", array)
    return directory
