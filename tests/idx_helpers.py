"""Helpers that write test files (synthetic Fashion-MNIST-style IDX files, gzip bombs,
`.keras` archives with an edited config) and run code in a memory-capped subprocess."""

import gzip
import json
import os
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
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


def write_gzip_bomb(path: Path, head: bytes, inflated_size: int) -> Path:
    """Writes `head` followed by zeros up to `inflated_size` bytes as a small gzip file.

    Zeros compress about 1000:1 at level 1, so a bomb of hundreds of MiB is a file of a few MiB.
    """
    chunk = bytes(2**24)
    with gzip.open(path, "wb", compresslevel=1) as stream:
        stream.write(head)
        remaining = inflated_size - len(head)
        while remaining > 0:
            remaining -= stream.write(chunk[: min(remaining, len(chunk))])
    return path


# `run_memory_capped` reads /proc and sets RLIMIT_AS, as Linux has them.
MEMORY_CAP_AVAILABLE = sys.platform.startswith("linux")

# Runs in a child after its imports: caps the address space at what it uses now plus `headroom`.
_MEMORY_CAP = """
import resource
with open("/proc/self/status") as _status:
    _used = next(int(line.split()[1]) * 1024 for line in _status if line.startswith("VmSize:"))
_hard = resource.getrlimit(resource.RLIMIT_AS)[1]
_cap = _used + {headroom}
if _hard != resource.RLIM_INFINITY:
    _cap = min(_cap, _hard)
resource.setrlimit(resource.RLIMIT_AS, (_cap, _hard))
"""


def run_memory_capped(
    imports: str, code: str, *args: str, headroom: int = 2**27
) -> subprocess.CompletedProcess:
    """Runs `imports`, then `code` in a fresh interpreter whose memory is capped (Linux).

    The cap (`RLIMIT_AS`) is the child's address space after `imports` plus `headroom`
    bytes, so an allocation beyond that raises `MemoryError` in the child (a non-zero exit
    status) instead of swapping. `args` become `sys.argv[1:]`.
    """
    script = "\n".join((imports, _MEMORY_CAP.format(headroom=headroom), code))
    # The checks under test are the package's, the same on every backend; the child runs them
    # on TensorFlow (installed beside every backend), as XLA's CPU client reserves more address
    # space than a tight cap leaves once it starts computing.
    env = {
        **os.environ,
        "KERAS_BACKEND": "tensorflow",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, timeout=120
    )


def read_keras_config(path: Path) -> dict:
    """The `config.json` of a `.keras` archive."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))


def write_keras_config(source: Path, target: Path, edit: Callable[[dict], None] | bytes) -> Path:
    """Copies the `.keras` archive `source` to `target` with its `config.json` edited.

    `edit` changes the parsed config in place, or is the new `config.json` content itself.
    """
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as copy:
        for entry in archive.infolist():
            data = archive.read(entry)
            if entry.filename == "config.json":
                if callable(edit):
                    config = json.loads(data)
                    edit(config)
                    data = json.dumps(config).encode()
                else:
                    data = edit
            copy.writestr(entry, data)
    return target
