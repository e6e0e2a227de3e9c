"""One CIFAR-10 python batch file's bytes, checked and unpickled into arrays.

A batch (`data_batch_1` to `data_batch_5`, `test_batch`) is a pickled dict holding `data`, a
uint8 `(N, 3072)` NumPy array (each row the red, green and blue 32x32 planes), and `labels`, N
integers 0-9 (keys as bytes or str, other entries such as `filenames` ignored). Its opcodes are
checked first (no declared length beyond the file's end, no memo index past the opcodes seen),
then it is unpickled by `_BatchUnpickler`: NumPy arrays are rebuilt by our own checked
constructors, nothing else is loaded, and no constructor makes more bytes than the file holds.
Every damaged or foreign batch is one `ValueError` line naming the file and the rule it breaks.
`data_sources` reads the file, within its limit `data_sources.MAX_CIFAR10_BATCH_BYTES`.
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
import reprlib
from typing import ClassVar

import numpy as np

from lenet_blocks.validation import printable_line

__all__ = ["parse_cifar10_batch"]


def parse_cifar10_batch(content: bytes, shown: str) -> tuple[np.ndarray, np.ndarray]:
    """The bytes of one CIFAR-10 batch file: `(images (N, 32, 32, 3) uint8, labels (N,) int64)`.

    Args:
        content: the whole file.
        shown: the file as messages name it (`validation.path_for_message`).

    Raises:
        ValueError: one line naming `shown` and the rule the batch breaks.

    Example:
    >>> batch = {b"data": np.zeros((2, 3072), "uint8"), b"labels": [3, 7]}
    >>> images, labels = parse_cifar10_batch(pickle.dumps(batch, protocol=2), "data_batch_1")
    >>> images.shape, images.dtype, labels.tolist()
    ((2, 32, 32, 3), dtype('uint8'), [3, 7])
    >>> parse_cifar10_batch(pickle.dumps({"data": print}), "data_batch_1")
    Traceback (most recent call last):
    ...
    ValueError: data_batch_1: not a readable CIFAR-10 batch (refused to load builtins.print); ...
    """
    try:
        _check_pickle_opcodes(content)
        batch = _BatchUnpickler(io.BytesIO(content), len(content)).load()
    except Exception as error:  # whatever the damage: the one documented ValueError
        reason = error.args[0] if isinstance(error, _BadBatch) else _error_text(error)
        raise ValueError(
            f"{shown}: not a readable CIFAR-10 batch ({reason}); a batch is a pickled dict of "
            "NumPy arrays, lists and numbers. Received: a damaged file or another pickle"
        ) from None
    if not isinstance(batch, dict):
        raise ValueError(
            f"{shown}: a CIFAR-10 batch must be a pickled dict holding data and labels. "
            f"Received: {_describe_value(batch)}"
        )
    entries = {}
    for key, value in batch.items():
        name = key.decode("utf-8", "strict") if _is_utf8(key) else key
        if not isinstance(name, str) or name in entries:
            raise ValueError(
                f"{shown}: the keys of a CIFAR-10 batch must be distinct names (str, or UTF-8 "
                f"bytes). Received: the key {_short_repr(key)}"
            )
        entries[name] = value
    missing = [name for name in ("data", "labels") if name not in entries]
    if missing:
        raise ValueError(
            f"{shown}: a CIFAR-10 batch must hold data and labels; it has no "
            f"{' and no '.join(missing)}. Received: keys {_short_repr(sorted(entries))}"
        )
    images = entries["data"]
    if isinstance(images, _ArrayState):
        images = images.array(shown)
    if (
        not isinstance(images, np.ndarray)
        or images.dtype != np.uint8
        or images.ndim != 2
        or images.shape[1] != 3 * 32 * 32
    ):
        raise ValueError(
            f"{shown}: data must be a uint8 NumPy array (N, 3072), a row per 32x32 RGB image. "
            f"Received: {_describe_value(images)}"
        )
    labels = _cifar10_labels(shown, entries["labels"], len(images))
    channels_last = images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(channels_last), labels


def _cifar10_labels(shown: str, labels, images: int) -> np.ndarray:
    """The labels of a batch of `images` images as int64 `(N,)`, each checked to be 0-9."""
    if isinstance(labels, _ArrayState):
        labels = labels.array(shown)
    rule = f"{shown}: labels must be a list of integers 0-9, one per image ({images})"
    if isinstance(labels, np.ndarray):
        if labels.dtype.kind not in "iu" or labels.ndim != 1:
            raise ValueError(f"{rule}. Received: {_describe_value(labels)}")
        outside = np.flatnonzero((labels < 0) | (labels > 9))
    elif isinstance(labels, list | tuple):
        for index, label in enumerate(labels):
            if type(label) is not int:
                raise ValueError(f"{rule}. Received: a {type(label).__name__} at index {index}")
        outside = [index for index, label in enumerate(labels) if not 0 <= label <= 9]
    else:
        raise ValueError(f"{rule}. Received: {_describe_value(labels)}")
    if len(labels) != images:
        raise ValueError(f"{rule}. Received: {len(labels)} labels")
    if len(outside):
        index = int(outside[0])
        raise ValueError(f"{rule}. Received: the label {int(labels[index])} at index {index}")
    return np.array(labels, dtype=np.int64).reshape(images)


def _describe_value(value) -> str:
    """What a value is, briefly: `an array of dtype uint8 and shape (2, 3071)`, `a list of 3`."""
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    if isinstance(value, _ArrayState):
        return "a NumPy array"
    if isinstance(value, list | tuple | dict | str | bytes | bytearray):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


def _short_repr(value) -> str:
    """`repr` cut short (at most a few elements, levels and characters), on one line."""
    return _error_text(reprlib.repr(value))


def _error_text(error) -> str:
    """An exception (or text) as one printable line of at most 200 characters."""
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error
    text = printable_line(text)
    return text if len(text) <= 200 else f"{text[:197]}..."


def _is_utf8(key) -> bool:
    if not isinstance(key, bytes):
        return False
    try:
        key.decode("utf-8", "strict")
    except UnicodeDecodeError:
        return False
    return True


class _BadBatch(Exception):
    """A rule of a CIFAR-10 batch's pickle broken (its one-line reason)."""


def _check_pickle_opcodes(content: bytes) -> None:
    """Refuses opcodes that make the C unpickler allocate beyond the file: a length declared
    past the file's end (`pickletools.genops` reads every declared argument from the bytes
    there are), a FRAME longer than what follows it, a memo index past the opcodes seen."""
    for count, (opcode, argument, position) in enumerate(pickletools.genops(content)):
        if opcode.name == "FRAME" and argument > len(content) - position - 9:
            raise _BadBatch(
                f"a FRAME at byte {position} declares {argument} bytes, past the file's end"
            )
        if opcode.name in ("PUT", "LONG_BINPUT") and not 0 <= argument <= count:
            raise _BadBatch(
                f"a {opcode.name} at byte {position} stores at memo index {argument}, past the "
                f"{count} opcodes before it"
            )


class _NdarrayClass:
    """What `numpy.ndarray` unpickles as: a marker for `_reconstruct` (it cannot be called)."""


class _DtypeState:
    """A NumPy dtype as a pickle rebuilds it: `numpy.dtype(descr, align, copy)`, then its
    state (byte order, and no subarray, fields or metadata) set by BUILD."""

    DESCRS: ClassVar[frozenset[str]] = frozenset(
        f"{kind}{size}" for kind in "iuf" for size in (1, 2, 4, 8) if (kind, size) != ("f", 1)
    ) | {"b1"}

    def __init__(self, descr, align=False, copy=False):
        descr = descr.decode("ascii", "replace") if isinstance(descr, bytes) else descr
        if not isinstance(descr, str) or descr not in self.DESCRS:
            raise _BadBatch(
                f"a dtype must be bool, an integer or a float type, not dtype {_short_repr(descr)}"
            )
        self.dtype = np.dtype(descr)

    def __setstate__(self, state):
        if not isinstance(state, tuple) or not 5 <= len(state) <= 9:
            raise _BadBatch(
                f"a dtype's state must be a tuple of 5 to 9, not {_describe_value(state)}"
            )
        order = state[1].decode("ascii", "replace") if isinstance(state[1], bytes) else state[1]
        if order not in ("<", ">", "=", "|") or not all(
            item is None or type(item) is int for item in state[2:]
        ):
            raise _BadBatch(
                "a dtype's state must name a byte order (<, >, = or |) and hold no subarray, "
                f"fields or metadata, not {_short_repr(state)}"
            )
        if order in "<>":
            self.dtype = self.dtype.newbyteorder(order)


class _ArrayState:
    """A NumPy array as a pickle rebuilds it: made empty by `_reconstruct`, then its state
    `(version, shape, dtype, fortran_order, data)` set by BUILD (or made whole by
    `_frombuffer`); `array()` is a view of the data's bytes, whose number was checked."""

    state: tuple | None = None

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 5:
            state = state[1:]
        if not isinstance(state, tuple) or len(state) != 4:
            raise _BadBatch(
                "an array's state must be (version, shape, dtype, fortran order, data), not "
                f"{_describe_value(state)}"
            )
        self.state = _checked_array_state(*state)

    def array(self, shown: str) -> np.ndarray:
        if self.state is None:
            raise ValueError(
                f"{shown}: a pickled array must set its state (BUILD). Received: an array "
                "without one"
            )
        shape, dtype, fortran, data = self.state
        flat = np.frombuffer(data, dtype) if len(data) else np.zeros(0, dtype)
        return flat.reshape(shape, order="F" if fortran else "C")


def _checked_array_state(shape, dtype, fortran, data):
    """`(shape, numpy dtype, fortran, data)` once `data` holds the bytes `shape` needs."""
    if (
        not isinstance(shape, tuple)
        or len(shape) > 32
        or not all(type(side) is int and side >= 0 for side in shape)
    ):
        raise _BadBatch(f"an array's shape must be a tuple of sizes, not {_short_repr(shape)}")
    if not isinstance(dtype, _DtypeState):
        raise _BadBatch(f"an array's dtype must be a dtype, not {_describe_value(dtype)}")
    if type(fortran) not in (bool, int):
        raise _BadBatch(f"an array's order must be a bool, not {_describe_value(fortran)}")
    needed = math.prod(shape) * dtype.dtype.itemsize
    if not isinstance(data, bytes | bytearray) or len(data) != needed:
        received = (
            f"{len(data)} bytes" if isinstance(data, bytes | bytearray) else _describe_value(data)
        )
        raise _BadBatch(
            f"an array of shape {shape} and dtype {dtype.dtype} needs {needed} bytes of data, "
            f"not {received}"
        )
    return shape, dtype.dtype, bool(fortran), data


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, tuples, numbers, bytes and NumPy arrays; any other class is
    refused. NumPy's and `_codecs`' constructors are replaced by checked ones (`_ArrayState`,
    `_DtypeState`), and the bytes they make together are at most `budget`."""

    def __init__(self, stream, budget: int):
        super().__init__(stream, encoding="bytes")
        self.budget = budget
        self.constructors = {
            ("numpy.core.multiarray", "_reconstruct"): self._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): self._reconstruct,
            ("numpy.core.numeric", "_frombuffer"): self._frombuffer,
            ("numpy._core.numeric", "_frombuffer"): self._frombuffer,
            ("numpy", "ndarray"): _NdarrayClass(),
            ("numpy", "dtype"): _DtypeState,
            ("_codecs", "encode"): self._encode,
            ("builtins", "bytes"): self._empty_bytes,
            ("__builtin__", "bytes"): self._empty_bytes,  # protocols 0-2 name it so
        }

    def find_class(self, module, name):
        constructor = self.constructors.get((module, name))
        if constructor is None:
            raise _BadBatch(f"refused to load {_error_text(f'{module}.{name}')}")
        return constructor

    def _reconstruct(self, cls, shape=None, typecode=None):
        """`numpy.core.multiarray._reconstruct(ndarray, (0,), b"b")`: an empty array."""
        if not isinstance(cls, _NdarrayClass):
            raise _BadBatch(f"_reconstruct makes NumPy arrays only, not {_describe_value(cls)}")
        return _ArrayState()

    @staticmethod
    def _frombuffer(data, dtype, shape, order):
        """`numpy.core.numeric._frombuffer` (pickle protocol 5): an array of its bytes."""
        if order not in ("C", "F"):
            raise _BadBatch(f"an array's order must be C or F, not {_short_repr(order)}")
        array = _ArrayState()
        array.state = _checked_array_state(shape, dtype, order == "F", data)
        return array

    def _encode(self, text, encoding="utf-8", errors="strict"):
        """`_codecs.encode(text, "latin1")`: how Python 3 pickles bytes in protocols 0-2."""
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
            raise _BadBatch(
                "_codecs.encode makes bytes of latin1 text only, not "
                f"{_describe_value(text)} in {_short_repr(encoding)}"
            )
        self.budget -= len(text)
        if self.budget < 0:
            raise _BadBatch("_codecs.encode makes more bytes than the file holds")
        try:
            return text.encode("latin1")
        except UnicodeEncodeError as error:
            raise _BadBatch(f"_codecs.encode: {_error_text(error)}") from None

    @staticmethod
    def _empty_bytes(*args):
        """`bytes()`: how Python 3 pickles `b""` in protocols 0-2."""
        if args:
            raise _BadBatch(
                f"bytes() makes the empty bytes only, not bytes of {len(args)} arguments"
            )
        return b""
