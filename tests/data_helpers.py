"""Helpers that write small data sets of one's own: labelled arrays, `.npz` archives (from
arrays, or member by member with hand-made `.npy` headers), image folders and CIFAR-10 batch
files. IDX files: `idx_helpers`."""

import io
import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from lenet_blocks.data_sources import CIFAR10_FILES

Split = tuple[np.ndarray, np.ndarray]


def labelled(n: int, classes: int, shape=(8, 8), seed: int = 0) -> Split:
    """`n` random uint8 images of `shape` and labels cycling `0..classes-1`."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    return images, (np.arange(n) % classes).astype(np.uint8)


def write_npz(path: Path, train: Split, test: Split, compressed: bool = False, **replace) -> Path:
    """An `.npz` archive in the `keras.datasets` layout; `replace` swaps (or adds) members."""
    arrays = {"x_train": train[0], "y_train": train[1], "x_test": test[0], "y_test": test[1]}
    arrays.update(replace)
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def npy_bytes(shape, descr="|u1", payload: bytes = b"", fortran=False, version=(1, 0)) -> bytes:
    """A `.npy` file with a hand-made header (any `shape` and `descr`, even invalid ones)."""
    header = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode("latin1")
    length_format = "<H" if version == (1, 0) else "<I"
    prefix = 6 + 2 + struct.calcsize(length_format)
    header += b" " * (-(prefix + len(header) + 1) % 64) + b"\n"
    magic = b"\x93NUMPY" + bytes(version)
    return magic + struct.pack(length_format, len(header)) + header + payload


def npz_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip archive of `{name: content}` (names as given: `"x_train.npy"`, ...)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def npy_members(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """`{"x_train.npy": .npy bytes, ...}` of arrays, as `np.savez` writes them."""
    members = {}
    for key, array in arrays.items():
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=False)
        members[f"{key}.npy"] = buffer.getvalue()
    return members


def random_pixels(name: str, size: tuple[int, int], mode: str, rng) -> Image.Image:
    """Random pixels of `size` (width, height) in `mode` "L" or "RGB"."""
    channels = () if mode == "L" else (3,)
    pixels = rng.integers(0, 256, size=(size[1], size[0], *channels), dtype=np.uint8)
    return Image.fromarray(pixels, mode)


def write_images(
    directory: Path,
    counts: dict[str, int],
    size=(10, 12),
    mode="L",
    seed=0,
    draw: Callable[..., Image.Image] = random_pixels,
) -> Path:
    """`counts`: {class: n}; writes n PNG images of `size` (width, height) per class folder,
    each `draw(class, size, mode, rng)` (default: random pixels)."""
    rng = np.random.default_rng(seed)
    for name, count in counts.items():
        (directory / name).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            draw(name, size, mode, rng).save(directory / name / f"{index}.png")
    return directory


def image_bytes(mode="L", size=(4, 4), image_format="PNG") -> bytes:
    """The bytes of a blank image file (`image_format` as PIL names it)."""
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, image_format)
    return buffer.getvalue()


def cifar10_batch(images: int = 10, seed: int = 0) -> dict:
    """The content of a CIFAR-10 batch file: `images` random rows and labels 0..9 cycling."""
    rng = np.random.default_rng(seed)
    return {
        b"data": rng.integers(0, 256, size=(images, 3072), dtype=np.uint8),
        b"labels": [index % 10 for index in range(images)],
    }


def write_cifar10(
    directory: Path, content: Callable[[str], object] = lambda name: None, protocol: int = 2
) -> Path:
    """The six batch files of `cifar-10-batches-py/` in `directory`, each the pickle (by default
    of protocol 2, as CIFAR-10's own) of `content(file name)`, by default `cifar10_batch()`."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(CIFAR10_FILES):
        batch = content(name)
        batch = cifar10_batch(seed=index) if batch is None else batch
        (directory / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    return directory


def python2_cifar10_batch(images: int = 2, seed: int = 0) -> bytes:
    """A CIFAR-10 batch file as the official ones are: Python 2's protocol-2 pickle, whose
    strings (keys, dtype codes, the pixels) are BINSTRINGs and NumPy's module is `numpy.core`.
    Returns the file's bytes; `pickle.loads(..., encoding="bytes")` gives `cifar10_batch`'s
    content plus `batch_label` and `filenames`."""

    def string(value: bytes) -> bytes:
        return (
            b"U" + bytes([len(value)]) + value
            if len(value) < 256
            else (b"T" + struct.pack("<i", len(value)) + value)
        )

    pixels = cifar10_batch(images, seed)[b"data"].tobytes()
    labels = b"".join(b"K" + bytes([index % 10]) for index in range(images))
    filenames = b"".join(string(b"%d.png" % index) for index in range(images))
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85"
        + string(b"b")
        + b"\x87R(K\x01J"
        + struct.pack("<i", images)
        + b"M\x00\x0c\x86cnumpy\ndtype\n"
        + string(b"u1")
        + b"K\x00K\x01\x87R(K\x03"
        + string(b"|")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
        + string(pixels)
        + b"tb"
    )
    return (
        b"\x80\x02}("
        + string(b"batch_label")
        + string(b"training batch 1 of 5")
        + string(b"labels")
        + b"]("
        + labels
        + b"e"
        + string(b"data")
        + array
        + string(b"filenames")
        + b"]("
        + filenames
        + b"eu."
    )
