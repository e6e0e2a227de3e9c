"""`.npz` archives in the `keras.datasets` layout, read without extra copies.

An archive holds `x_train`, `y_train`, `x_test` and `y_test`. Every member's `.npy` header is
read first (its dtype and shape), and the four members' sizes together are checked against
`MAX_NPZ_BYTES` before anything is allocated (a training run holds them all in memory); a
stored (uncompressed) member is then memory-mapped in place, a compressed one inflated once.
No pickles are ever loaded, and every damaged archive (a zip, deflate or `.npy` header error) is a
one-line `ValueError` naming the file.
"""

from __future__ import annotations

import io
import lzma
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lenet_blocks.validation import path_for_message

__all__ = ["MAX_NPZ_BYTES", "NPZ_KEYS", "read_npz"]

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# The most bytes the four members may declare together; assigning the constant raises it for
# every call.
MAX_NPZ_BYTES = 2**31
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length
# The longest `.npy` header read (NumPy's own `max_header_size`). NumPy's reader reads the length a
# header declares before it checks it (a compressed member can declare 4 GiB), so the length is
# checked here first.
_MAX_HEADER_BYTES = 10000
_NPY_VERSIONS = ((1, 0), (2, 0), (3, 0))
# What zipfile and its decompressors raise for a damaged archive, besides `BadZipFile`: a bad
# deflate or LZMA stream, one cut short, an unknown compression method, an encrypted member
# (RuntimeError), a name that is not the UTF-8 its flag says.
_DAMAGED = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    NotImplementedError,
    RuntimeError,
    UnicodeDecodeError,
)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The four arrays of an `.npz` archive in the `keras.datasets` layout, read-only.

    Args:
        path: the archive (what `np.savez` or `np.savez_compressed` writes).

    Returns:
        `{"x_train": ..., "y_train": ..., "x_test": ..., "y_test": ...}`; stored members are
        read-only memory maps of the file, compressed ones read-only arrays.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: one line naming the file: not a zip archive or a damaged one, a member
            missing, a member that is no `.npy` array (a pickle, a damaged header, a negative
            shape, values that are not plain numbers), a member shorter than its header
            declares, or members that declare more than `MAX_NPZ_BYTES` together.

    Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.npz"
    >>> x, y = np.zeros((2, 8, 8), "uint8"), np.array([0, 1], "uint8")
    >>> np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y)
    >>> read_npz(path)["x_train"].shape
    (2, 8, 8)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No .npz archive at {str(path)!r}.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [key for key in NPZ_KEYS if f"{key}.npy" not in names]
            if missing:
                raise ValueError(
                    f"{path_for_message(path)}: "
                    f"an .npz data set needs the arrays {', '.join(NPZ_KEYS)} (the "
                    f"keras.datasets layout); missing {', '.join(missing)}."
                )
            headers = {key: _member_header(path, archive, f"{key}.npy") for key in NPZ_KEYS}
            total = sum(header.size for header in headers.values())
            if total > MAX_NPZ_BYTES:
                shapes = ", ".join(f"{key} {header.shape}" for key, header in headers.items())
                raise ValueError(
                    f"{path_for_message(path)}: "
                    f"the arrays declare {total} bytes ({shapes}), over the limit of "
                    f"{MAX_NPZ_BYTES} bytes (raise `lenet_blocks.npz_archives.MAX_NPZ_BYTES`)."
                )
            return {key: _read_member(path, archive, header) for key, header in headers.items()}
    except _DAMAGED as error:
        raise ValueError(
            f"{path_for_message(path)}: not a readable .npz archive ({_one_line(error)})."
        ) from None
    except OSError as error:
        raise ValueError(
            f"{path_for_message(path)}: cannot read the file ({error.strerror or error})."
        ) from None


class _Header(NamedTuple):
    """What a member's `.npy` header declares, and where its data starts in the member."""

    name: str
    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype
    header_size: int
    size: int


def _member_header(path: Path, archive: zipfile.ZipFile, name: str) -> _Header:
    info = archive.getinfo(name)
    with archive.open(info) as stream:
        try:
            version = np.lib.format.read_magic(stream)
            if version not in _NPY_VERSIONS:
                raise ValueError(f"unknown .npy format version {version}")
            length_format = "<H" if version == (1, 0) else "<I"
            length_bytes = stream.read(struct.calcsize(length_format))
            if len(length_bytes) == struct.calcsize(length_format):
                (length,) = struct.unpack(length_format, length_bytes)
                if length > _MAX_HEADER_BYTES:
                    raise ValueError(
                        f"its header declares {length} bytes, over the {_MAX_HEADER_BYTES} read"
                    )
                length_bytes += stream.read(length)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(io.BytesIO(length_bytes))
        except ValueError as error:
            raise ValueError(
                f"{path_for_message(path)}: {name} is not a .npy array ({_one_line(error)})."
            ) from None
        header_size = stream.tell()
    if min(shape, default=0) < 0:
        raise ValueError(f"{path_for_message(path)}: {name} declares the negative shape {shape}.")
    if dtype.hasobject:
        raise ValueError(
            f"{path_for_message(path)}: {name} holds Python objects; only numbers are read."
        )
    if dtype.kind not in "biufc" or dtype.names is not None or dtype.subdtype is not None:
        raise ValueError(
            f"{path_for_message(path)}: {name} holds {dtype} values; only numbers are read."
        )
    size = math.prod(shape) * dtype.itemsize
    return _Header(name, info, shape, fortran, dtype, header_size, size)


def _read_member(path: Path, archive: zipfile.ZipFile, header: _Header) -> np.ndarray:
    name, info, shape, fortran, dtype, header_size, size = header
    order = "F" if fortran else "C"
    if info.compress_type == zipfile.ZIP_STORED:
        offset = _data_offset(path, info) + header_size
        # The central directory's size may lie: the file itself must hold the data too.
        if info.file_size - header_size < size or offset + size > path.stat().st_size:
            raise ValueError(f"{path_for_message(path)}: {name} is truncated.")
        if size == 0:
            empty = np.zeros(shape, dtype)
            empty.flags.writeable = False
            return empty
        return np.memmap(path, dtype, "r", offset=offset, shape=shape, order=order)
    with archive.open(info) as stream:
        stream.seek(header_size)
        data = stream.read(size + 1)
    if len(data) != size:
        raise ValueError(
            f"{path_for_message(path)}: {name} holds {len(data)} bytes, its header declares {size}."
        )
    return np.frombuffer(data, dtype).reshape(shape, order=order)


def _data_offset(path: Path, info: zipfile.ZipInfo) -> int:
    """Where the content of a stored member starts in the archive file."""
    with path.open("rb") as raw:
        raw.seek(info.header_offset)
        local_header = raw.read(_LOCAL_HEADER.size)
    if len(local_header) < _LOCAL_HEADER.size:
        raise ValueError(f"{path_for_message(path)}: damaged zip entry {info.filename}.")
    signature, name_length, extra_length = _LOCAL_HEADER.unpack(local_header)
    if signature != b"PK\x03\x04":
        raise ValueError(f"{path_for_message(path)}: damaged zip entry {info.filename}.")
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length


def _one_line(error: Exception) -> str:
    """An exception's message on one line (NumPy's and zipfile's may span several)."""
    return " ".join(str(error).split())
