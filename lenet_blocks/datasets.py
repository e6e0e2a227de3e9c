"""IDX files: bounded reading, and Fashion-MNIST from local copies with Keras' download last.

`load_fashion_mnist()` returns the same arrays as `keras.datasets.fashion_mnist.load_data()`,
but looks for an existing copy of the four official IDX files first, so it works offline
(for example with Debian's `dataset-fashion-mnist` package installed), and validates
every file it reads; a full-size file must be the official one (its sha256).
`load_idx_directory()` reads a directory of the same four files holding any data (any image
size, any item counts, never checksummed): the user's own set. The other sources (MNIST,
CIFAR-10, `.npz` archives, image folders) and the one entry point, `load_dataset`, live in
`lenet_blocks.data_sources`.
"""

import gzip
import hashlib
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, Literal, NamedTuple

import numpy as np

from lenet_blocks.validation import is_positive_int, path_for_message

__all__ = [
    "DATA_DIR_ENV_VAR",
    "DEBIAN_DATA_DIR",
    "FASHION_MNIST_CLASS_NAMES",
    "FILE_NAMES",
    "FILE_SHA256",
    "KERAS_CACHE_SUBDIR",
    "KERAS_ORIGIN",
    "MAX_IDX_BYTES",
    "DataLocation",
    "DatasetNotFoundError",
    "candidate_dirs",
    "keras_cache_dir",
    "load_fashion_mnist",
    "load_idx_directory",
    "read_idx_file",
    "search_copies",
]

FASHION_MNIST_CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"

# File names without the `.gz` suffix; a copy may hold either form of each.
FILE_NAMES: tuple[str, ...] = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# sha256 of the DEcompressed content of the official Zalando Fashion-MNIST files
# (computed with `zcat FILE.gz | sha256sum` on /usr/share/datasets/fashion-mnist).
FILE_SHA256: dict[str, str] = {
    TRAIN_IMAGES: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    TRAIN_LABELS: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    TEST_IMAGES: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    TEST_LABELS: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

# Item counts of the official files. Asked for as Fashion-MNIST, a file whose header claims
# this count must be the official file, so it is checksum-verified.
_OFFICIAL_ITEM_COUNTS: dict[str, int] = {
    TRAIN_IMAGES: 60000,
    TRAIN_LABELS: 60000,
    TEST_IMAGES: 10000,
    TEST_LABELS: 10000,
}

DATA_DIR_ENV_VAR = "LENET_BLOCKS_DATA_DIR"
DEBIAN_DATA_DIR = "/usr/share/datasets/fashion-mnist"
# Same origin and cache sub-directory as `keras.datasets.fashion_mnist.load_data()`.
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
KERAS_CACHE_SUBDIR = os.path.join("datasets", "fashion-mnist")
FRESH_COPY = "apt-get install dataset-fashion-mnist, or delete it and let Keras download it"

IdxKind = Literal["images", "labels"]

_NUM_CLASSES = len(FASHION_MNIST_CLASS_NAMES)
_IDX_MAGIC: dict[str, int] = {"images": 0x00000803, "labels": 0x00000801}
_GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK = 2**20

# The most decompressed bytes one IDX file may declare (`read_idx_file(max_bytes=)` overrides it
# per call; assigning this constant raises it for every call, `load_fashion_mnist` included).
# The official training images are 47,040,016 bytes.
MAX_IDX_BYTES = 2**30

PathLike = str | os.PathLike[str]


class DatasetNotFoundError(FileNotFoundError):
    """No complete copy of Fashion-MNIST was found and none could be downloaded."""


class DataLocation(NamedTuple):
    """A directory that may hold the four Fashion-MNIST files.

    Attributes:
        path: The directory.
        source: Why it is searched, for error messages (e.g. `"Keras cache"`).
    """

    path: Path
    source: str


def read_idx_file(
    path: PathLike,
    kind: IdxKind,
    max_bytes: int | None = None,
    *,
    official: tuple[int, str, str] | None = None,
) -> np.ndarray:
    """Reads and validates one IDX file of uint8 images or labels, gzip-compressed or raw.

    Compression is detected from the content, not the file name. Images must be
    `uint8` arrays of shape `(n, height, width)` (magic `0x00000803`, both sides at least
    1), labels `uint8` arrays of shape `(n,)` (magic `0x00000801`); label values are
    checked by the loaders, which know the classes. With `official=(count, sha256, name)`,
    a file whose header claims `count` items must be that official file: its decompressed
    content must hash to `sha256` (`load_fashion_mnist` asks this of every file).

    Reads are bounded: the header is read first, a header declaring more than
    `max_bytes` is refused before anything else is read, and no more than the declared
    size (plus one byte, to detect trailing data) is ever decompressed, so a small
    gzip file that inflates to gigabytes costs no more memory than its header declares.

    Args:
        path: Path of the IDX file.
        kind: `"images"` or `"labels"`.
        max_bytes: The most decompressed bytes (header included) the file may declare;
            defaults to `MAX_IDX_BYTES` (1 GiB, read at call time).
        official: `(item count, sha256 of the decompressed content, data set name)` of the
            official file this one must be when it holds that many items; `None` (the
            default): no checksum.

    Returns:
        A read-only `uint8` NumPy array backed by the decompressed file content.

    Raises:
        ValueError: If `kind` or `max_bytes` is invalid, the file cannot be read
            (permissions, a directory), or it is not a valid IDX file of that kind (bad
            or truncated gzip stream, wrong magic number, wrong image size, declared
            size over `max_bytes`, byte length not matching the header, checksum
            mismatch). The message names the file.
        FileNotFoundError: If the file does not exist.

    Example:
    >>> import gzip, pathlib, struct, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp, "labels.gz")
    ...     idx = struct.pack(">II", 0x00000801, 3) + bytes([7, 0, 9])
    ...     _ = path.write_bytes(gzip.compress(idx))
    ...     read_idx_file(path, "labels")
    array([7, 0, 9], dtype=uint8)
    """
    if kind not in _IDX_MAGIC:
        raise ValueError(f"`kind` must be 'images' or 'labels'. Received: kind={kind!r}")
    if max_bytes is not None and not is_positive_int(max_bytes):
        raise ValueError(
            f"`max_bytes` must be a positive int or None. Received: max_bytes={max_bytes!r}"
        )
    path = Path(path)
    limit = MAX_IDX_BYTES if max_bytes is None else max_bytes
    try:
        with path.open("rb") as raw:
            compressed = raw.read(len(_GZIP_MAGIC)) == _GZIP_MAGIC
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
            shape, header, payload = _read_bounded(path, stream, kind, limit)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise ValueError(
            f"{path_for_message(path)}: corrupt or truncated gzip stream ({error})."
        ) from None
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ValueError(
            f"{path_for_message(path)}: cannot read the file ({error.strerror or error})."
        ) from None
    if official is not None and official[0] == shape[0]:
        _verify_checksum(path, (header, payload), *official[1:])
    array = np.frombuffer(payload, dtype=np.uint8).reshape(shape)
    array.flags.writeable = False
    return array


def _read_bounded(
    path: Path, stream: BinaryIO, kind: IdxKind, limit: int
) -> tuple[tuple[int, ...], bytes, bytearray]:
    """Reads the header, then the payload it declares in chunks, and checks nothing follows.

    Returns the shape, the header and the payload.
    """
    header = stream.read(_header_size(_IDX_MAGIC[kind] & 0xFF))
    shape = _parse_header(path, header, kind)
    payload_size = math.prod(shape)
    declared = f"header declares shape {shape} ({len(header) + payload_size} bytes)"
    if len(header) + payload_size > limit:
        raise ValueError(
            f"{path_for_message(path)}: "
            f"{declared}, over the limit of {limit} bytes (raise it with `max_bytes=` "
            "or `lenet_blocks.datasets.MAX_IDX_BYTES`)."
        )
    payload = bytearray()
    while len(payload) < payload_size:
        chunk = stream.read(min(_READ_CHUNK, payload_size - len(payload)))
        if not chunk:
            raise ValueError(
                f"{path_for_message(path)}: file truncated: {declared}, but the content is "
                f"{len(header) + len(payload)} bytes."
            )
        payload += chunk
    if stream.read(1):
        raise ValueError(
            f"{path_for_message(path)}: "
            f"file has trailing data: {declared}, but the content is longer."
        )
    return shape, header, payload


def _header_size(ndim: int) -> int:
    """Bytes taken by an IDX header: 4-byte magic plus one 4-byte size per dimension."""
    return 4 + 4 * ndim


def _parse_header(path: Path, header: bytes, kind: IdxKind) -> tuple[int, ...]:
    """Validates the IDX header (magic, length, image size) and returns the array shape."""
    expected_magic = _IDX_MAGIC[kind]
    ndim = expected_magic & 0xFF
    header_size = _header_size(ndim)
    magic = int.from_bytes(header[:4], "big")
    if len(header) >= 4 and magic != expected_magic:
        raise ValueError(
            f"{path_for_message(path)}: "
            f"bad magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"(IDX uint8 {ndim}-D {kind})."
        )
    if len(header) < header_size:
        raise ValueError(
            f"{path_for_message(path)}: file too short for an IDX {kind} header "
            f"({len(header)} bytes, need {header_size})."
        )
    shape = struct.unpack_from(f">{ndim}I", header, offset=4)
    if kind == "images" and min(shape[1:]) < 1:
        raise ValueError(
            f"{path_for_message(path)}: "
            f"images are {shape[1]}x{shape[2]}, expected both sides of at least 1 pixel."
        )
    return shape


def _verify_checksum(path: Path, parts: tuple[bytes, ...], expected: str, dataset: str) -> None:
    """Checks the sha256 of a file (given as its parts) that claims to be a full official file."""
    sha256 = hashlib.sha256()
    for part in parts:
        sha256.update(part)
    digest = sha256.hexdigest()
    if digest != expected:
        raise ValueError(
            f"{path_for_message(path)}: "
            f"sha256 of the decompressed content is {digest}, expected {expected} for "
            f"the official {dataset} file of that size. The file is corrupt or not the "
            f"official one: delete it and get a fresh copy ({FRESH_COPY}), or, if it is a data "
            "set of your own, pass its directory as the data set (`--dataset DIR`, "
            "`dataset=DIR`) instead of asking for the named set."
        )


def check_label_range(path: PathLike, labels: np.ndarray, classes: int) -> None:
    """Checks that every label is a class index below `classes`; the error names the file.

    Example:
    >>> check_label_range("labels.gz", np.array([0, 10], "uint8"), 10)
    Traceback (most recent call last):
    ...
    ValueError: labels.gz: label 10 at index 1 is out of range 0-9 (1 bad labels in total).
    """
    bad = np.flatnonzero(labels >= classes)
    if bad.size:
        raise ValueError(
            f"{path_for_message(path)}: label {labels[bad[0]]} at index {bad[0]} is out of range "
            f"0-{classes - 1} ({bad.size} bad labels in total)."
        )


def keras_cache_dir() -> Path:
    """Returns the directory where Keras caches Fashion-MNIST.

    Mirrors Keras: `$KERAS_HOME`, else `~/.keras` (or `/tmp/.keras` when the home
    directory is not writable), followed by `datasets/fashion-mnist`. The environment
    is read at call time.

    Returns:
        The cache directory (it may not exist).

    Example:
    >>> keras_cache_dir().parts[-2:]
    ('datasets', 'fashion-mnist')
    """
    return _keras_home() / KERAS_CACHE_SUBDIR


def _keras_home() -> Path:
    """Returns Keras' home directory, resolved as `keras.src.backend.config` does."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"]).expanduser()
    home = Path.home()
    base = home if os.access(home, os.W_OK) else Path("/tmp")
    return base / ".keras"


def candidate_dirs(
    data_dir: PathLike | None = None, cache_dir: PathLike | None = None, debian: bool = True
) -> list[DataLocation]:
    """Returns the directories searched for Fashion-MNIST (or another named set), in order.

    Args:
        data_dir: Directory given explicitly by the user. When set, it is the only
            candidate.
        cache_dir: Keras' cache directory of the set (default: Fashion-MNIST's,
            `keras_cache_dir()`).
        debian: bool. Whether Debian's `DEBIAN_DATA_DIR` (Fashion-MNIST's package) comes last.

    Returns:
        `[data_dir]` if given, else `$LENET_BLOCKS_DATA_DIR` (when set), Keras' cache, then
        (with `debian`) Debian's `DEBIAN_DATA_DIR`.

    Example:
    >>> candidate_dirs("/data/fashion-mnist")
    [DataLocation(path=PosixPath('/data/fashion-mnist'), source='data_dir argument')]
    >>> candidate_dirs()[-1].source
    'Debian package dataset-fashion-mnist'
    """
    if data_dir is not None:
        return [DataLocation(Path(data_dir).expanduser(), "data_dir argument")]
    locations = []
    env_dir = os.environ.get(DATA_DIR_ENV_VAR)
    if env_dir:
        locations.append(DataLocation(Path(env_dir).expanduser(), f"${DATA_DIR_ENV_VAR}"))
    locations.append(DataLocation(Path(cache_dir or keras_cache_dir()), "Keras cache"))
    if debian:
        locations.append(
            DataLocation(Path(DEBIAN_DATA_DIR), "Debian package dataset-fashion-mnist")
        )
    return locations


def load_fashion_mnist(
    data_dir: PathLike | None = None, *, download: bool = True
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads Fashion-MNIST like `keras.datasets.fashion_mnist.load_data()`, offline first.

    Each directory from `candidate_dirs(data_dir)` is searched, in order, for the four
    files in `FILE_NAMES` (each as `NAME.gz` or uncompressed `NAME`); the first
    directory holding all four is used. If none does and `download` is true, the files
    are downloaded into Keras' cache with `keras.utils.get_file` from the same origin
    Keras uses. An explicit `data_dir` disables both the other locations and the
    download. Every file is validated by `read_idx_file()`.

    Args:
        data_dir: Directory holding the four IDX files. If given, it is the only
            place searched.
        download: Whether to try Keras' download when no local copy is found.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: read-only `uint8` arrays shaped
        `(60000, 28, 28)`, `(60000,)`, `(10000, 28, 28)` and `(10000,)` for the
        official data. Label `i` names class `FASHION_MNIST_CLASS_NAMES[i]`.

    Raises:
        DatasetNotFoundError: If no complete copy is found (and the download is
            disabled, not allowed, or fails). The message lists every location
            searched and how to get the data.
        ValueError: If a file is invalid (see `read_idx_file()`), a split holds no
            images, or the image and label counts of a split differ.

    Example (needs the data, so not run as a doctest):
    >>> (x_train, y_train), (x_test, y_test) = load_fashion_mnist()  # doctest: +SKIP
    >>> x_train.shape, y_test.shape  # doctest: +SKIP
    ((60000, 28, 28), (10000,))
    >>> FASHION_MNIST_CLASS_NAMES[9]
    'Ankle boot'
    """

    def find(directory: Path):
        paths = _find_copy(directory)
        complete = len(paths) == len(FILE_NAMES)
        return (paths, "") if complete else (None, _describe_gap(directory, paths))

    return search_copies(
        candidate_dirs(data_dir),
        find,
        lambda paths: _load_copy(paths, official=True),
        _download_to_keras_cache,
        download_line=f"download from {KERAS_ORIGIN} into {keras_cache_dir()}",
        may_download=data_dir is None and download,
        data_dir_given=data_dir is not None,
        not_found=_not_found_message,
    )


def search_copies(
    locations, find, read, fetch, *, download_line, may_download, data_dir_given, not_found
):
    """The first local copy in `locations`, read; else what `fetch` downloads, read.

    The one search of every named data set (`lenet_blocks.data_sources` uses it too).

    Args:
        locations: `DataLocation`s, in search order.
        find: `directory -> (found, why not)`: what `read` takes, or `None` and the reason.
        read: reads and checks what `find` (or `fetch`) gave.
        fetch: the download; it may raise any exception (Keras' fetch raises a bare one).
        download_line: how the report names the download.
        may_download: whether to try `fetch`; data_dir_given: why not, if not.
        not_found: `report lines -> DatasetNotFoundError message`.

    Raises:
        DatasetNotFoundError: no copy found and none downloaded; the message lists each place.
    """
    report = []
    for location in locations:
        found, gap = find(location.path)
        if found is not None:
            return read(found)
        report.append(f"{location.path} ({location.source}): {gap}")
    if data_dir_given:
        report.append(f"{download_line}: not attempted because data_dir was given")
    elif not may_download:
        report.append(f"{download_line}: disabled (download=False)")
    else:
        try:
            fetched = fetch()
        except Exception as error:
            report.append(f"{download_line}: failed ({type(error).__name__}: {error})")
        else:
            return read(fetched)
    raise DatasetNotFoundError(not_found(report)) from None


def _find_copy(directory: Path) -> dict[str, Path]:
    """Maps each name in `FILE_NAMES` present in `directory` to its path, `.gz` first."""
    found = {}
    for name in FILE_NAMES:
        for path in (directory / f"{name}.gz", directory / name):
            if path.is_file():
                found[name] = path
                break
    return found


def _describe_gap(directory: Path, found: dict[str, Path]) -> str:
    """Says why `directory` does not hold a complete copy."""
    if not directory.is_dir():
        return "no such directory"
    missing = [f"{name}[.gz]" for name in FILE_NAMES if name not in found]
    return "missing " + ", ".join(missing)


def _download_to_keras_cache() -> dict[str, Path]:
    """Downloads the four `.gz` files as Keras does and returns their paths."""
    import keras  # Imported lazily: only the download needs Keras.

    cache_dir = str(_keras_home())
    paths = {}
    for name in FILE_NAMES:
        fname = f"{name}.gz"
        local = keras.utils.get_file(
            fname,
            origin=KERAS_ORIGIN + fname,
            cache_subdir=KERAS_CACHE_SUBDIR,
            cache_dir=cache_dir,
        )
        paths[name] = Path(local)
    return paths


def load_idx_directory(
    directory: PathLike,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Reads a directory of the four IDX files in `FILE_NAMES` holding a data set of one's own.

    Any image size and any item counts; no checksum (the files are the user's data, even
    with the official item counts). Label values are checked by `lenet_blocks.data_sources`.

    Args:
        directory: The directory holding the files (each as `NAME.gz` or `NAME`).

    Returns:
        `((x_train, y_train), (x_test, y_test))` as read-only `uint8` arrays.

    Raises:
        FileNotFoundError: If a file is missing (the message names them).
        ValueError: If a file is invalid (see `read_idx_file()`), a split holds no images,
            or the image and label counts of a split differ.

    Example:
    >>> import tempfile
    >>> load_idx_directory(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    FileNotFoundError: ...: missing train-images-idx3-ubyte[.gz], ...
    """
    directory = Path(directory)
    paths = _find_copy(directory)
    if len(paths) != len(FILE_NAMES):
        raise FileNotFoundError(f"{directory}: {_describe_gap(directory, paths)}")
    return _load_copy(paths, official=False)


def _load_copy(
    paths: dict[str, Path], official: bool
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Reads and validates the train and test splits from the four file paths.

    `official`: the files are asked for as Fashion-MNIST: full-size files are checksummed and
    the labels must name its ten classes.
    """
    train = _load_split(paths[TRAIN_IMAGES], paths[TRAIN_LABELS], official)
    test = _load_split(paths[TEST_IMAGES], paths[TEST_LABELS], official)
    return train, test


def _load_split(
    images_path: Path, labels_path: Path, official: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Reads one split and checks that it has images, and as many labels as images."""

    def known(path: Path) -> tuple[int, str, str] | None:
        name = path.name.removesuffix(".gz")
        return (
            (_OFFICIAL_ITEM_COUNTS[name], FILE_SHA256[name], "Fashion-MNIST") if official else None
        )

    images = read_idx_file(images_path, "images", official=known(images_path))
    if len(images) == 0:
        raise ValueError(f"{images_path} holds no images; a split needs at least one image.")
    if official and images.shape[1:] != (28, 28):
        raise ValueError(
            f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28 for "
            "Fashion-MNIST (a set of your own: pass its directory as the data set instead)."
        )
    labels = read_idx_file(labels_path, "labels", official=known(labels_path))
    if official:
        check_label_range(labels_path, labels, _NUM_CLASSES)
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels; the files must come from the same copy."
        )
    return images, labels


def _not_found_message(report: list[str]) -> str:
    """Builds the `DatasetNotFoundError` message from the per-location report."""
    searched = "\n".join(f"  - {line}" for line in report)
    wanted = ", ".join(f"{name}.gz" for name in FILE_NAMES)
    return (
        "Fashion-MNIST not found. Looked for "
        f"{wanted} (or the same names without .gz) in:\n"
        f"{searched}\n"
        "To get the data, do one of:\n"
        f"  - install the Debian package: apt-get install dataset-fashion-mnist "
        f"(installs to {DEBIAN_DATA_DIR});\n"
        "  - pass the directory holding the files with the `--data-dir` flag of the "
        "`lenet-blocks` CLI (or `data_dir=` in Python);\n"
        f"  - set the {DATA_DIR_ENV_VAR} environment variable to that directory;\n"
        "  - connect to the internet and call with download=True, which lets Keras "
        f"download it into {keras_cache_dir()}."
    )
