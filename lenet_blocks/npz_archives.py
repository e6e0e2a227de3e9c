"""`.npz` archives in the `keras.datasets` layout, read without extra copies.

An archive holds `x_train`, `y_train`, `x_test` and `y_test`. Every member's `.npy` header is
read first (its dtype and shape), its size is checked against `MAX_NPZ_MEMBER_BYTES` before
anything is allocated, and a stored (uncompressed) member is memory-mapped in place; a
compressed one is inflated once. No pickles are ever loaded.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["MAX_NPZ_MEMBER_BYTES", "NPZ_KEYS", "read_npz"]

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# The most bytes one member may declare; assigning the constant raises it for every call.
MAX_NPZ_MEMBER_BYTES = 2**31
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The four arrays of an `.npz` archive in the `keras.datasets` layout, read-only.

    Args:
        path: the archive (what `np.savez` or `np.savez_compressed` writes).

    Returns:
        `{"x_train": ..., "y_train": ..., "x_test": ..., "y_test": ...}`; stored members are
        read-only memory maps of the file, compressed ones read-only arrays.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: naming the file: not a zip archive, a member missing, a member that is no
            `.npy` array (a pickle, a damaged header) or declares more than
            `MAX_NPZ_MEMBER_BYTES`.

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
                    f"{path}: an .npz data set needs the arrays {', '.join(NPZ_KEYS)} (the "
                    f"keras.datasets layout); missing {', '.join(missing)}."
                )
            return {key: _read_member(path, archive, f"{key}.npy") for key in NPZ_KEYS}
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path}: not a readable .npz archive ({error}).") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read the file ({error.strerror or error}).") from None


def _read_member(path: Path, archive: zipfile.ZipFile, name: str) -> np.ndarray:
    info = archive.getinfo(name)
    with archive.open(info) as stream:
        try:
            version = np.lib.format.read_magic(stream)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(stream)
        except ValueError as error:
            raise ValueError(f"{path}: {name} is not a .npy array ({error}).") from None
        header_size = stream.tell()
        if dtype.hasobject:
            raise ValueError(f"{path}: {name} holds Python objects; only numbers are read.")
        size = math.prod(shape) * dtype.itemsize
        if size > MAX_NPZ_MEMBER_BYTES:
            raise ValueError(
                f"{path}: {name} declares shape {shape} ({size} bytes), over the limit of "
                f"{MAX_NPZ_MEMBER_BYTES} bytes (raise "
                "`lenet_blocks.npz_archives.MAX_NPZ_MEMBER_BYTES`)."
            )
        if info.compress_type == zipfile.ZIP_STORED:
            offset = _data_offset(path, info) + header_size
            if info.file_size - header_size < size:
                raise ValueError(f"{path}: {name} is truncated.")
            if size == 0:
                return np.zeros(shape, dtype)
            order = "F" if fortran else "C"
            return np.memmap(path, dtype, "r", offset=offset, shape=shape, order=order)
        data = stream.read(size + 1)
    if len(data) != size:
        raise ValueError(f"{path}: {name} holds {len(data)} bytes, its header declares {size}.")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


def _data_offset(path: Path, info: zipfile.ZipInfo) -> int:
    """Where the content of a stored member starts in the archive file."""
    with path.open("rb") as raw:
        raw.seek(info.header_offset)
        signature, name_length, extra_length = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
        raise ValueError(f"{path}: damaged zip entry {info.filename}.")
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
