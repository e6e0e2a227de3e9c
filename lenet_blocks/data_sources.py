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
import os
from pathlib import Path

import numpy as np

from lenet_blocks import datasets
from lenet_blocks.cifar_batches import parse_cifar10_batch
from lenet_blocks.image_folders import (
    ImageFolder,
    evaluation_dataset,
    folder_arrays,
    scan_image_folder,
)
from lenet_blocks.npz_archives import read_npz
from lenet_blocks.validation import check_class_names, path_for_message

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
    """One CIFAR-10 batch file, read whole (at most `MAX_CIFAR10_BATCH_BYTES`) and parsed by
    `cifar_batches.parse_cifar10_batch`: `(images (N, 32, 32, 3) uint8, labels (N,) int64)`.

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
    return parse_cifar10_batch(content, shown)


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
