"""Every data set the package trains on, through one entry point: `load_dataset`.

A data set is named or given by its path:

- `"fashion_mnist"` (the default), `"mnist"`, `"cifar10"`: found in `data_dir` (if given, the only
  place searched), else `$LENET_BLOCKS_DATA_DIR`, Keras' cache (`~/.keras/datasets`, or
  `$KERAS_HOME/datasets`), Debian's package (Fashion-MNIST only), then downloaded by Keras' own
  loader (`keras.datasets.*.load_data`, which caches what it fetches); when none holds it the
  error lists every place searched. A local copy holding the official item counts must be the
  official file (sha256) where one is published: Fashion-MNIST's IDX files, MNIST's `mnist.npz`;
- the path of a directory of the four IDX files (`train-images-idx3-ubyte[.gz]`, ...): any
  image size and item counts, never checksummed (it is the user's data);
- the path of an `.npz` archive in the `keras.datasets` layout (`lenet_blocks.npz_archives`);
- the path of an image-folder tree (`lenet_blocks.image_folders`), streamed from disk.

Arrays are checked by `check_arrays` (dtypes, ranks, matching counts, labels); a set of one's
own has the classes `0..k-1` its training labels name, every one of them present.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import os
import pickle
import pickletools
import reprlib
from pathlib import Path
from typing import ClassVar

import numpy as np

from lenet_blocks import datasets
from lenet_blocks.image_folders import (
    ImageFolder,
    evaluation_dataset,
    folder_arrays,
    scan_image_folder,
)
from lenet_blocks.npz_archives import read_npz
from lenet_blocks.validation import check_class_names, path_for_message, printable_line

__all__ = [
    "CIFAR10_CLASS_NAMES",
    "MNIST_CLASS_NAMES",
    "MNIST_NPZ_SHA256",
    "NAMED_DATASETS",
    "LoadedData",
    "check_arrays",
    "from_arrays",
    "load_dataset",
]

NAMED_DATASETS = ("fashion_mnist", "mnist", "cifar10")
MNIST_CLASS_NAMES = tuple(str(digit) for digit in range(10))
CIFAR10_CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
# sha256 of the `mnist.npz` Keras downloads (the `file_hash` of `keras.datasets.mnist`).
MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_FILES = (*(f"data_batch_{index}" for index in range(1, 6)), "test_batch")
# The most bytes one CIFAR-10 batch file may hold (the official ones hold about 31 MB).
MAX_CIFAR10_BATCH_BYTES = 2**27
_KNOWN = {
    "fashion_mnist": (datasets.FASHION_MNIST_CLASS_NAMES, (28, 28, 1)),
    "mnist": (MNIST_CLASS_NAMES, (28, 28, 1)),
    "cifar10": (CIFAR10_CLASS_NAMES, (32, 32, 3)),
}

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class LoadedData:
    """A checked data set: arrays (named sets, IDX, `.npz`) or an image folder (streamed).

    Attributes:
        name: what was asked for (a name or a path).
        class_names: the name of each class; label `i` is `class_names[i]`.
        image_shape: `(height, width, channels)` of the images the model gets.
        train, test: `(images, labels)` uint8 arrays; `None` for an image folder.
        folder: the checked `ImageFolder`; `None` for arrays.
    """

    name: str
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    train: tuple[np.ndarray, np.ndarray] | None = None
    test: tuple[np.ndarray, np.ndarray] | None = None
    folder: ImageFolder | None = None

    @property
    def classes(self) -> int:
        return len(self.class_names)

    def arrays(self, validation_split: float = 0.1, seed: int = 0) -> Arrays:
        """`((x_train, y_train), (x_test, y_test))`, an image folder read into memory.

        Args:
            validation_split, seed: an image folder without a `test/` part holds out Keras'
                seeded split as its test split (`image_folders.folder_arrays`).

        Raises:
            ValueError: an image folder too big to hold in memory.
        """
        if self.folder is not None:
            return folder_arrays(self.folder, validation_split, seed)
        return self.train, self.test


def load_dataset(
    dataset: str | os.PathLike = "fashion_mnist",
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    class_names=None,
    image_size: tuple[int, int] | None = None,
    color_mode: str | None = None,
    skip_bad_files: bool = False,
) -> LoadedData:
    """Finds, reads and checks a data set (see the module docs for the sources and search order).

    Args:
        dataset: `"fashion_mnist"`, `"mnist"`, `"cifar10"`, or the path of an IDX directory,
            an `.npz` archive or an image folder.
        data_dir: for a named set: the directory holding its files, the only place searched.
        download: for a named set: whether Keras may download it when no copy is found.
        class_names: names of the classes, one per class (default: Keras' known names for a
            named set, the folder names for an image folder, the class indices otherwise).
        image_size, color_mode, skip_bad_files: for an image folder, see
            `lenet_blocks.image_folders.scan_image_folder`.

    Returns:
        A `LoadedData`.

    Raises:
        lenet_blocks.datasets.DatasetNotFoundError: a named set found nowhere (the message
            lists where it looked).
        FileNotFoundError: no file or directory at the path given.
        ValueError: a bad file (named), bad labels, or options that do not apply.

    Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "mine.npz"
    >>> x, y = np.zeros((4, 12, 12), "uint8"), np.array([0, 1, 2, 1], "uint8")
    >>> np.savez(path, x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    >>> data = load_dataset(path, class_names=["a", "b", "c"])
    >>> data.image_shape, data.class_names
    ((12, 12, 1), ('a', 'b', 'c'))
    """
    folder_options = {
        "image_size": image_size,
        "color_mode": color_mode,
        "skip_bad_files": skip_bad_files or None,
    }
    given = [name for name, value in folder_options.items() if value is not None]
    if not isinstance(dataset, str | os.PathLike):
        raise ValueError(f"`dataset` must be a name or a path. Received: dataset={dataset!r}")
    name = os.fspath(dataset)
    if name in NAMED_DATASETS:
        if given:
            raise ValueError(f"`{given[0]}` applies to image folders. Received: dataset={name!r}")
        (x_train, y_train), (x_test, y_test) = _NAMED_LOADERS[name](data_dir, download)
        known_names, shape = _KNOWN[name]
        train, test, _ = check_arrays(
            (x_train, y_train), (x_test, y_test), name, classes=len(known_names)
        )
        if train[0].shape[1:] != shape[: train[0].ndim - 1]:
            raise ValueError(
                f"{name}: images of shape {train[0].shape[1:]}, expected {shape} for {name}; a "
                "set of your own: pass its path as the data set instead."
            )
        return _loaded(
            name, check_class_names(class_names, len(known_names)) or known_names, train, test
        )
    if data_dir is not None:
        raise ValueError(
            f"`data_dir` applies to the named data sets {NAMED_DATASETS}; the path "
            f"{name!r} is the data set itself. Received: data_dir={os.fspath(data_dir)!r}"
        )
    path = Path(name).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"`dataset` must be one of {', '.join(NAMED_DATASETS)} or the path of an IDX "
            "directory, an .npz archive or an image folder. Received: "
            f"dataset={name!r} (no such file or directory)"
        )
    if is_image_folder(path):
        folder = scan_image_folder(path, **{**folder_options, "skip_bad_files": skip_bad_files})
        names = check_class_names(class_names, len(folder.class_names)) or folder.class_names
        return LoadedData(name, names, folder.image_shape, folder=folder)
    if given:
        raise ValueError(f"`{given[0]}` applies to image folders. Received: dataset={name!r}")
    if path.is_dir():
        raw = datasets.load_idx_directory(path)
    elif path.suffix.lower() == ".npz":
        arrays = read_npz(path)
        raw = (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    else:
        raise ValueError(
            f"{path_for_message(path)}: a data set file must be an .npz archive (x_train, "
            "y_train, x_test, y_test). Received: a file of another kind"
        )
    train, test, classes = check_arrays(*raw, path_for_message(path))
    return _loaded(name, check_class_names(class_names, classes) or _indices(classes), train, test)


def is_image_folder(dataset: str | os.PathLike) -> bool:
    """Whether `dataset` names an image folder: a directory without the IDX files.

    Example:
    >>> is_image_folder("fashion_mnist")
    False
    """
    path = Path(dataset).expanduser()
    if os.fspath(dataset) in NAMED_DATASETS or not path.is_dir():
        return False
    names = (f"{name}{suffix}" for name in datasets.FILE_NAMES for suffix in ("", ".gz"))
    return not any((path / name).is_file() for name in names)


def load_test_split(
    dataset: str | os.PathLike = "fashion_mnist",
    data_dir: str | os.PathLike | None = None,
    *,
    input_shape: tuple[int | None, int | None, int],
    classes: int,
    class_names=None,
    batch_size: int = 256,
    skip_bad_files: bool = False,
) -> tuple[tuple, tuple[str, ...] | None]:
    """The test split of `dataset` for a model, and the names of its classes (`evaluate`).

    An image folder is read at the model's input size and channels: its `test/` part, else
    every image in it. Arrays must have the model's image shape.

    Args:
        dataset, data_dir: as `load_dataset` takes them.
        input_shape: `(height, width, channels)` of the model's input (`model.input_shape[1:]`;
            a side of `None` takes any size).
        classes: int. Classes of the model's head (`inference.head_classes(model)`).
        class_names: names of the model's classes (the ones given, else the model's own:
            `inference.model_class_names(model)`), or None: the data set's when they are
            `classes` many.
        batch_size: batch size of an image folder's stream.
        skip_bad_files: image folders: leave bad files out.

    Returns:
        `(test, names)`: `test` holds `evaluate_model`'s data arguments (`(images, labels)`
        arrays, or one streamed dataset).

    Raises:
        ValueError: the data does not fit the model (shape, classes, other folder names).
    """
    height, width, channels = input_shape
    if is_image_folder(dataset):
        loaded = load_dataset(
            dataset,
            image_size=(height, width) if height and width else None,
            color_mode="grayscale" if channels == 1 else "rgb",
            skip_bad_files=skip_bad_files,
        )
        test = (evaluation_dataset(loaded.folder, batch_size),)
    else:
        loaded = load_dataset(dataset, data_dir)
        wanted = (height or loaded.image_shape[0], width or loaded.image_shape[1], channels)
        if loaded.image_shape != wanted:
            raise ValueError(
                f"The model takes {'x'.join(map(str, wanted))} images but "
                f"{path_for_message(loaded.name)} holds {'x'.join(map(str, loaded.image_shape))} "
                "images."
            )
        test = loaded.test
    names = class_names
    if loaded.folder is not None and names is not None and tuple(names) != loaded.class_names:
        raise ValueError(
            f"{path_for_message(loaded.name)}: its class folders {list(loaded.class_names)} "
            f"must be the model's classes, in that order. Received: class names {list(names)}"
        )
    if names is None and loaded.classes == classes:
        names = loaded.class_names
    return test, names


def from_arrays(data, class_names=None) -> LoadedData:
    """`((x_train, y_train), (x_test, y_test))` a Python caller hands over, as a `LoadedData`.

    Checked like an `.npz` archive (`check_arrays`), except that the labels need not name every
    class (a subset of a data set may miss some): the classes are the largest label plus one.

    Args:
        data: uint8 image and integer label arrays of both splits.
        class_names: one name per class, or None (the class indices).

    Example:
    >>> x = np.zeros((2, 8, 8), "uint8")
    >>> loaded = from_arrays(((x, np.array([0, 2])), (x, np.array([1, 0]))))
    >>> loaded.class_names, loaded.image_shape
    (('0', '1', '2'), (8, 8, 1))
    """
    train, test, classes = check_arrays(*data, "`data`", dense=False)
    return _loaded(
        "`data`", check_class_names(class_names, classes) or _indices(classes), train, test
    )


def _loaded(name: str, names: tuple[str, ...], train, test) -> LoadedData:
    image_shape = train[0].shape[1:] if train[0].ndim == 4 else (*train[0].shape[1:], 1)
    return LoadedData(name, names, tuple(int(side) for side in image_shape), train, test)


def _indices(classes: int) -> tuple[str, ...]:
    return tuple(str(index) for index in range(classes))


def check_arrays(train, test, source: str, classes: int | None = None, dense: bool = True):
    """Checks `(x, y)` arrays of a data set; returns `(train, test, classes)`.

    Images are uint8 `(N, H, W)` or `(N, H, W, C)` with C 1 or 3, the same shape in both
    splits; labels are integers `(N,)` or `(N, 1)` (flattened, not copied), as many as the
    images. With `classes`, labels lie in `0..classes-1`; without, the training labels must
    name a dense range `0..k-1` (every class present), and `k` is returned; with `dense=False`
    (arrays a Python caller hands over, a subset maybe) `k` is the largest label plus one.

    Raises:
        ValueError: one line naming `source`, the array and the rule.

    Example:
    >>> x = np.zeros((3, 8, 8), "uint8")
    >>> check_arrays((x, np.array([0, 2, 0])), (x, np.array([0, 1, 2])), "mine.npz")
    Traceback (most recent call last):
    ...
    ValueError: mine.npz: y_train must name every class 0..2 (a dense range of labels); class 1 has no training image.
    """  # noqa: E501
    checked = []
    for split, (images, labels) in (("train", train), ("test", test)):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.dtype != np.uint8:
            raise ValueError(
                f"{source}: x_{split} must hold uint8 pixels (0-255). "
                f"Received: dtype {images.dtype}"
            )
        if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
            raise ValueError(
                f"{source}: x_{split} must be (N, H, W) or (N, H, W, C) with C 1 or 3. "
                f"Received: shape {images.shape}"
            )
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels.reshape(-1)
        if labels.dtype.kind not in "iu" or labels.ndim != 1:
            raise ValueError(
                f"{source}: y_{split} must be integer labels (N,) or (N, 1). Received: dtype "
                f"{labels.dtype}, shape {labels.shape}"
            )
        if len(images) != len(labels) or not len(images):
            raise ValueError(
                f"{source}: x_{split} holds {len(images)} images and y_{split} {len(labels)} "
                "labels; a split needs as many labels as images, at least one."
            )
        if labels.min() < 0:
            raise ValueError(f"{source}: y_{split} holds the negative label {labels.min()}.")
        checked.append((images, labels))
    (x_train, y_train), (x_test, y_test) = checked
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"{source}: training images are {x_train.shape[1:]} but test images "
            f"{x_test.shape[1:]}; both splits need one image shape."
        )
    if classes is None and not dense:
        classes = int(max(y_train.max(), y_test.max())) + 1
    elif classes is None:
        classes = int(y_train.max()) + 1
        counts = np.bincount(y_train, minlength=classes)
        if not counts.all():
            raise ValueError(
                f"{source}: y_train must name every class 0..{classes - 1} (a dense range of "
                f"labels); class {int(np.flatnonzero(counts == 0)[0])} has no training image."
            )
    for split, labels in (("y_train", y_train), ("y_test", y_test)):
        datasets.check_label_range(f"{source}: {split}", labels, classes)
    return (x_train, y_train), (x_test, y_test), classes


# Named sets other than Fashion-MNIST (`lenet_blocks.datasets.load_fashion_mnist`).


def _keras_datasets_dir() -> Path:
    return datasets._keras_home() / "datasets"


def _local_dirs(data_dir) -> list[datasets.DataLocation]:
    return datasets.candidate_dirs(data_dir, cache_dir=_keras_datasets_dir(), debian=False)


def _find_named(name: str, data_dir, download: bool, find, read, keras_loader) -> Arrays:
    """The first local copy `find(directory)` sees, read by `read`; else Keras' own loader."""

    def not_found(report: list[str]) -> str:
        searched = "\n".join(f"  - {entry}" for entry in report)
        return (
            f"{name} not found. Looked in:\n{searched}\nTo get the data, pass the directory "
            f"holding it with `--data-dir` (`data_dir=`), set {datasets.DATA_DIR_ENV_VAR}, or "
            "connect to the internet and let Keras download it."
        )

    return datasets.search_copies(
        _local_dirs(data_dir),
        find,
        # Keras' loader gives the arrays themselves; a local copy is a path to read.
        lambda found: found if isinstance(found, tuple) else read(found),
        keras_loader,
        download_line=f"download by keras.datasets.{name}.load_data() into {_keras_datasets_dir()}",
        may_download=data_dir is None and download,
        data_dir_given=data_dir is not None,
        not_found=not_found,
    )


def _find_mnist(directory: Path):
    path = directory / "mnist.npz"
    return (path, "") if path.is_file() else (None, "no mnist.npz")


def _read_mnist(path: Path) -> Arrays:
    arrays = read_npz(path)
    if len(arrays["x_train"]) == 60000 and len(arrays["x_test"]) == 10000:
        sha256 = hashlib.sha256()
        with path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(2**20), b""):
                sha256.update(chunk)
        if sha256.hexdigest() != MNIST_NPZ_SHA256:
            raise ValueError(
                f"{path_for_message(path)}: sha256 is {sha256.hexdigest()}, expected "
                f"{MNIST_NPZ_SHA256} for the official mnist.npz of that size. The file is "
                "corrupt or not the official one: delete it and let Keras download a fresh copy, "
                "or, if it is a data set of your own, pass its path as the data set "
                "(`--dataset FILE`) instead."
            )
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _download_mnist() -> Arrays:
    import keras

    return keras.datasets.mnist.load_data()


def _find_cifar10(directory: Path):
    for candidate in (directory / CIFAR10_DIR, directory / f"{CIFAR10_DIR}-target" / CIFAR10_DIR):
        missing = [name for name in CIFAR10_FILES if not (candidate / name).is_file()]
        if not missing:
            return candidate, ""
    return None, f"no {CIFAR10_DIR}/ (or {CIFAR10_DIR}-target/{CIFAR10_DIR}/) with the batches"


def _read_cifar10(directory: Path) -> Arrays:
    batches = [_read_cifar10_batch(directory / name) for name in CIFAR10_FILES]
    x_train = np.concatenate([images for images, _ in batches[:-1]])
    y_train = np.concatenate([labels for _, labels in batches[:-1]])
    return (x_train, y_train), batches[-1]


def _read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file: `(images (N, 32, 32, 3) uint8, labels (N,) int64)`.

    The file is a pickled dict holding `data`, a uint8 `(N, 3072)` NumPy array (each row the
    red, green and blue 32x32 planes), and `labels`, N integers 0-9 (keys as bytes or str,
    other entries such as `filenames` ignored). It is read whole (at most
    `MAX_CIFAR10_BATCH_BYTES`), its opcodes checked first (no declared length beyond the file's
    end, no memo index past the opcodes seen), then unpickled by `_BatchUnpickler`: NumPy arrays
    are rebuilt by our own checked constructors, nothing else is loaded, and no constructor
    makes more bytes than the file holds.

    Raises:
        ValueError: one line naming the file and the rule it breaks.
    """
    shown = path_for_message(path)
    with path.open("rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        if size > MAX_CIFAR10_BATCH_BYTES:
            raise ValueError(
                f"{shown}: a CIFAR-10 batch file holds at most {MAX_CIFAR10_BATCH_BYTES} bytes "
                f"(data_sources.MAX_CIFAR10_BATCH_BYTES). Received: {size} bytes"
            )
        content = stream.read(size)  # read() allocates the size it is asked for
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


def _download_cifar10() -> Arrays:
    import keras

    return keras.datasets.cifar10.load_data()


_NAMED_LOADERS = {
    "fashion_mnist": lambda data_dir, download: datasets.load_fashion_mnist(
        data_dir, download=download
    ),
    "mnist": lambda data_dir, download: _find_named(
        "mnist", data_dir, download, _find_mnist, _read_mnist, _download_mnist
    ),
    "cifar10": lambda data_dir, download: _find_named(
        "cifar10", data_dir, download, _find_cifar10, _read_cifar10, _download_cifar10
    ),
}
