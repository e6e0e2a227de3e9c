"""Fuzzing the parsers of users' data files: the arrays they promise or one documented error.

- `.npz` archives fed to `npz_archives.read_npz`: archives of random small arrays (stored or
  compressed), then damaged (bytes overwritten, cut short, garbage appended), members missing or
  renamed, hand-made `.npy` headers (negative, huge and invalid shapes, invalid or non-numeric
  dtypes, other format versions, header lengths of 4 GiB), deflate bombs, random bytes. Each
  read is the four arrays its headers declare (read-only) or a one-line `ValueError` naming the
  file, within `READ_SECONDS` and `PEAK_SLACK` of traced memory plus twice the bytes really
  stored: a declared size is never allocated.
- CIFAR-10 python batch files fed to `data_sources._read_cifar10_batch`: pickled dicts with
  other keys, types and sizes, damaged pickles, random bytes; the same contract.
- Image-folder trees fed to `image_folders.scan_image_folder`: random class folders (odd and
  hidden names, empty ones, nested ones, a split tree with other test classes) of PNG/JPEG
  files of several modes and sizes, non-image files, images with other formats or damaged
  content, with and without `skip_bad_files`, `image_size` and `color_mode`. An oracle written
  from docs/datasets.md says whether the tree is refused and, if not, its classes, counts,
  shape and skipped files (and Keras' `image_dataset_from_directory` reads as many files as
  the scan counts); a refusal must be a one-line `ValueError` naming a file or folder at fault.

Example counts are multiples of the Hypothesis profile's `max_examples` (see conftest.py).
The bugs the fuzz found are kept as explicit inputs (`CIFAR_BUGS`, the image-folder tests after
the fuzz), so that each stays fixed.
"""

import contextlib
import pickle
import struct
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from data_helpers import (
    cifar10_batch,
    image_bytes,
    npy_bytes,
    npy_members,
    npz_bytes,
    write_images,
)
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st

from lenet_blocks.data_sources import _read_cifar10_batch
from lenet_blocks.image_folders import scan_image_folder
from lenet_blocks.npz_archives import NPZ_KEYS, read_npz

PROFILE_EXAMPLES = settings.default.max_examples
NPZ_EXAMPLES_PER_PROFILE_EXAMPLE = 6
CIFAR_EXAMPLES_PER_PROFILE_EXAMPLE = 4
FOLDER_EXAMPLES_PER_PROFILE_EXAMPLE = 3

READ_SECONDS = 5.0
PEAK_SLACK = 4 * 2**20  # what Python, NumPy and zipfile use around a small read
BOMB_BYTES = 2**23  # zeros after a member's declared data, about 8 KiB once deflated
FUZZ_SETTINGS = {
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no slow explain
}


def sometimes(draw, tenths: int) -> bool:
    """True in about `tenths` out of 10 draws."""
    return draw(st.integers(0, 9)) < tenths


def damaged(draw, content: bytes) -> bytes:
    """`content` with up to three bytes overwritten, maybe cut short or with garbage after it."""
    content = bytearray(content)
    for position, value in draw(
        st.lists(st.tuples(st.integers(0), st.integers(0, 255)), min_size=1, max_size=3)
    ):
        content[position % len(content)] = value
    if sometimes(draw, 3):
        content = content[: draw(st.integers(0, len(content)))]
    if sometimes(draw, 1):
        content += draw(st.binary(min_size=1, max_size=64))
    return bytes(content)


def bounded_call(function, path: Path):
    """`(result or None, message or None, seconds, peak traced bytes)` of `function(path)`;
    a `ValueError` is the documented refusal, any other exception propagates."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        return function(path), None, time.monotonic() - start, tracemalloc.get_traced_memory()[1]
    except ValueError as error:
        return None, str(error), time.monotonic() - start, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def assert_one_line_naming(message: str, path: Path) -> None:
    assert str(path) in message, message
    assert "\n" not in message, message


def fresh_file(directory: Path, name: str, content: bytes) -> Path:
    """`content` at a new inode each time: an array still mapping the last file keeps its pages."""
    path = directory / name
    path.unlink(missing_ok=True)
    path.write_bytes(content)
    return path


# .npz archives.

DTYPES = ("uint8", "int64", "float32", "bool", ">i2")
SIZES = st.integers(0, 4)
# Shapes and dtypes a hand-made header may declare: negative, huge, not ints; not numbers.
HEADER_SHAPES = st.lists(
    st.integers(-3, 4) | st.sampled_from([2**31, 2**40, 2**63]), max_size=3
).map(tuple) | st.sampled_from([(1.5,), "(1,", [2], ((1,),), None])
HEADER_DESCRS = st.sampled_from(
    [
        *("|u1", "<i8", "<f4", "|b1", "|O", "|V0", "|V4", "<U3", "|S2", "<M8[s]", "zz", 3, None),
        *([("a", "|u1")], [("a", "|u1", (2,))], [("a",)], ("|u1", (2,))),
    ]
)


@st.composite
def arrays_strategy(draw) -> dict[str, np.ndarray]:
    arrays = {}
    for key in NPZ_KEYS:
        dtype = np.dtype(draw(st.sampled_from(DTYPES)))
        shape = tuple(draw(st.lists(SIZES, max_size=3)))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        array = rng.integers(0, 100, size=shape).astype(dtype)
        arrays[key] = np.asfortranarray(array) if sometimes(draw, 2) else array
    return arrays


@st.composite
def npz_cases(draw):
    """`(file bytes, expected arrays or None, bytes really stored, whether it must be refused)`."""
    compression = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    arrays = draw(arrays_strategy())
    members = npy_members(arrays)
    kind = draw(st.sampled_from(["valid", "damaged", "names", "header", "bomb", "random"]))
    event(f"npz: {kind}")
    if kind == "random":
        content = b"PK\x03\x04" * draw(st.booleans()) + draw(st.binary(max_size=300))
        return content, None, len(content), False
    refused, padding = False, 0
    if kind == "names":
        key = draw(st.sampled_from([f"{key}.npy" for key in NPZ_KEYS]))
        other = draw(st.sampled_from(["x_train", f"{key}.npz", key.upper(), f"dir/{key}", " "]))
        members[other] = members.pop(key)
        refused = True
    if kind == "header":
        key = draw(st.sampled_from([f"{key}.npy" for key in NPZ_KEYS]))
        version = draw(st.sampled_from([(1, 0), (2, 0), (3, 0), (9, 9)]))
        payload = draw(st.binary(max_size=64))
        header = npy_bytes(
            draw(HEADER_SHAPES), draw(HEADER_DESCRS), payload, draw(st.booleans()), version
        )
        if version != (1, 0) and sometimes(draw, 3):  # a header that declares 4 GiB
            header = header[:8] + struct.pack("<I", 2**32 - 1) + header[12:]
            padding = BOMB_BYTES if compression == zipfile.ZIP_DEFLATED else 0
            refused = True
        members[key] = header + bytes(padding)
    if kind == "bomb":  # a member that holds far more than its header declares
        key = draw(st.sampled_from([f"{key}.npy" for key in NPZ_KEYS]))
        members[key] += bytes(BOMB_BYTES)
        compression, refused, padding = zipfile.ZIP_DEFLATED, True, BOMB_BYTES
    stored = sum(len(member) for member in members.values()) - padding  # what a header may claim
    content = npz_bytes(members, compression)
    if kind == "damaged":
        return damaged(draw, content), None, len(content) + stored, False
    return content, arrays if kind == "valid" else None, stored, refused


@settings(max_examples=NPZ_EXAMPLES_PER_PROFILE_EXAMPLE * PROFILE_EXAMPLES, **FUZZ_SETTINGS)
@given(case=npz_cases())
def test_npz_reader_returns_the_declared_arrays_or_raises_value_error(tmp_path_factory, case):
    content, expected, stored, refused = case
    path = fresh_file(tmp_path_factory.getbasetemp(), "fuzz.npz", content)

    arrays, message, seconds, peak = bounded_call(read_npz, path)

    assert seconds < READ_SECONDS
    assert peak < PEAK_SLACK + 2 * stored
    if message is not None:
        assert_one_line_naming(message, path)
        assert expected is None, message
        event(f"npz refused: {message.removeprefix(f'{path}: ')[:24]}")
        return
    assert not refused
    assert set(arrays) == set(NPZ_KEYS)
    for key, array in arrays.items():
        assert isinstance(array, np.ndarray) and not array.flags.writeable
        assert array.dtype.kind in "biufc" and array.dtype.names is None
        if expected is not None:
            assert array.dtype == expected[key].dtype
            np.testing.assert_array_equal(array, expected[key])
    del arrays  # unmaps the file


# CIFAR-10 batch files.

IMAGE_ROWS = st.integers(0, 3)
DATA_VALUES = st.one_of(
    IMAGE_ROWS.map(lambda n: np.zeros((n, 3072), np.uint8)),
    st.sampled_from(
        [
            np.zeros((2, 3071), np.uint8),
            np.zeros((2, 3072), np.float32),
            np.zeros(3072, np.uint8),
            np.zeros((1, 3, 32, 32), np.uint8),
            [[0] * 3072],
            None,
            "data",
            b"\x00" * 3072,
        ]
    ),
)
LABEL_VALUES = st.one_of(
    st.lists(st.integers(-1, 12), max_size=4),
    IMAGE_ROWS.map(lambda n: np.arange(n, dtype=np.int64)),
    st.sampled_from([None, "01", {}, [0.5, 1.0], [[0], [1]], np.zeros((2, 1), np.uint8)]),
)
KEYS = st.sampled_from([b"data", "data", b"labels", "labels", b"batch_label", b"filenames", 7])


@st.composite
def cifar_cases(draw) -> bytes:
    """A batch file: a pickled dict of keys and values CIFAR-10's own and others, maybe not a
    dict, maybe damaged; sometimes random bytes."""
    if sometimes(draw, 1):
        event("cifar: random bytes")
        return draw(st.binary(max_size=200))
    rows = draw(IMAGE_ROWS)
    content = {b"data": np.zeros((rows, 3072), np.uint8), b"labels": list(range(rows))}
    if sometimes(draw, 6):
        event("cifar: other keys and values")
        for key in draw(st.lists(KEYS, max_size=3)):
            content[key] = draw(DATA_VALUES if "data" in str(key) else LABEL_VALUES)
        for key in draw(st.lists(st.sampled_from([b"data", b"labels"]), max_size=1)):
            del content[key]
    if sometimes(draw, 1):
        content = draw(st.sampled_from([[content], 3, None, "data"]))
    pickled = pickle.dumps(content, protocol=draw(st.integers(0, pickle.HIGHEST_PROTOCOL)))
    if sometimes(draw, 3):
        event("cifar: damaged pickle")
        return damaged(draw, pickled)
    return pickled


# The smallest inputs of each bug the fuzz found in `data_sources._read_cifar10_batch`.
CIFAR_BUGS = {
    "labels of another count than the images are returned": pickle.dumps(
        {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, protocol=2
    ),
    "labels that are no integers (a str) are returned": pickle.dumps(
        {b"data": np.zeros((2, 3072), np.uint8), b"labels": "01"}, protocol=2
    ),
    "a key that is not UTF-8 raises UnicodeDecodeError without the file": pickle.dumps(
        {b"\xff": 0, b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}, protocol=2
    ),
    "_codecs.encode with an unknown encoding raises LookupError": (
        b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x04\x00\x00\x00nope\x86R."
    ),
    "a FRAME longer than memory raises OverflowError": (
        b"\x80\x04\x95" + struct.pack("<Q", 2**63 + 1) + b"N."
    ),
    "a pickled ndarray with other sizes raises ValueError without the file": pickle.dumps(
        {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}, protocol=2
    ).replace(b"K\x01M\x00\x0c\x86", b"K\x02M\x00\x0c\x86"),
}


def with_cifar_bugs(test):
    """`test` with each input of `CIFAR_BUGS` as an explicit example."""
    for content in CIFAR_BUGS.values():
        test = example(content=content)(test)
    return test


@settings(max_examples=CIFAR_EXAMPLES_PER_PROFILE_EXAMPLE * PROFILE_EXAMPLES, **FUZZ_SETTINGS)
@with_cifar_bugs
@given(content=cifar_cases())
def test_cifar10_batch_reader_returns_a_batch_or_raises_value_error(tmp_path_factory, content):
    path = fresh_file(tmp_path_factory.getbasetemp(), "data_batch_1", content)

    batch, message, seconds, peak = bounded_call(_read_cifar10_batch, path)

    assert seconds < READ_SECONDS
    assert peak < PEAK_SLACK + 4 * len(content)
    if message is not None:
        assert_one_line_naming(message, path)
        return
    images, labels = batch
    assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)
    assert labels.dtype.kind in "iu" and labels.shape == (len(images),)


@pytest.mark.parametrize("bug", CIFAR_BUGS)
def test_cifar10_batch_reader_bugs_found_by_the_fuzz(tmp_path, bug):
    path = fresh_file(tmp_path, "data_batch_1", CIFAR_BUGS[bug])

    with pytest.raises(ValueError) as info:
        _read_cifar10_batch(path)
    assert_one_line_naming(str(info.value), path)


def test_cifar10_batch_reader_takes_a_batch_of_its_own_layout(tmp_path):
    """The fuzz's base case is one the reader takes (so its refusals are of the damage)."""
    path = fresh_file(tmp_path, "data_batch_1", pickle.dumps(cifar10_batch(3), protocol=2))

    images, labels = _read_cifar10_batch(path)

    assert images.shape == (3, 32, 32, 3) and labels.tolist() == [0, 1, 2]


# Image folders.

NAME_CHARS = "abcXYZ019 -_%#()[]'!,;=+~.éß中😀\n\t"
NAMES = st.text(NAME_CHARS, min_size=1, max_size=5).filter(
    lambda name: name not in (".", "..", "train", "test")
)
GRAY_MODES = ("1", "L", "LA", "I;16")
IMAGE_MODES = ("1", "L", "LA", "I;16", "RGB", "RGBA", "P")
BAD_FILES = {  # what each bad kind's file holds
    "text": lambda draw: b"notes",
    "garbage": lambda draw: b"x" + draw(st.binary(max_size=40)),
    "gif": lambda draw: image_bytes("L", (4, 4), "GIF"),
    "cut png": lambda draw: image_bytes("L", (4, 4))[:-12],
}
BAD_SUFFIXES = {
    "text": [".txt", "", ".csv", ".gif"],
    "garbage": [".png", ".jpg"],
    "gif": [".png"],
    "cut png": [".png"],
}


@st.composite
def class_files(draw, sizes):
    """`[(relative path, bytes, verdict)]` of one class folder: verdict `("image", size, gray)`,
    `"bad"` or `"hidden"`."""
    files = []
    for index in range(draw(st.integers(0 if sometimes(draw, 1) else 1, 4))):
        folder = draw(st.sampled_from(["", "", "", "sub/", "sub/deeper/", ".hidden/"]))
        kind = draw(st.sampled_from(["image"] * 6 + ["bad", "hidden"]))
        stem = f"{index}{draw(st.text(NAME_CHARS, max_size=3))}"
        if kind == "image":
            image_format = draw(st.sampled_from(["PNG", "PNG", "JPEG"]))
            mode = draw(st.sampled_from(IMAGE_MODES if image_format == "PNG" else ("L", "RGB")))
            suffix = draw(
                st.sampled_from(
                    [".png", ".PNG"] if image_format == "PNG" else [".jpg", ".jpeg", ".JPG"]
                )
            )
            size = draw(st.sampled_from(sizes))
            content, verdict = (
                image_bytes(mode, size, image_format),
                ("image", size, mode in GRAY_MODES),
            )
        elif kind == "bad":
            bad = draw(st.sampled_from(sorted(BAD_FILES)))
            suffix = draw(st.sampled_from(BAD_SUFFIXES[bad]))
            content, verdict = BAD_FILES[bad](draw), "bad"
        else:
            suffix, content, verdict = ".png", b"hidden, not an image", "hidden"
            stem = f".{stem}"
        if folder.startswith(".") and verdict != "hidden":
            verdict = "hidden"
        files.append((f"{folder}{stem}{suffix}", content, verdict))
    return files


@st.composite
def folder_trees(draw):
    """`(parts, options)`: parts `{part: {class: files}}` with part `""` (a flat tree) or
    `"train"` and `"test"`; root-level stray files of a flat tree under the class `None`."""
    sizes = [(4, 4), (5, 3)] if sometimes(draw, 2) else [(4, 4)]
    split = sometimes(draw, 3)
    train_names = draw(
        st.lists(NAMES, min_size=0 if sometimes(draw, 1) else 2, max_size=4, unique=True)
    )
    parts = {"train" if split else "": {name: draw(class_files(sizes)) for name in train_names}}
    if split:
        test_names = (
            train_names if sometimes(draw, 8) else draw(st.lists(NAMES, max_size=3, unique=True))
        )
        parts["test"] = {name: draw(class_files(sizes)) for name in test_names}
    elif sometimes(draw, 2):
        stray = draw(st.sampled_from(["readme.txt", "0.png", ".DS_Store"]))
        parts[""][None] = [(stray, b"x", "hidden" if stray.startswith(".") else "bad")]
    options = {
        "skip_bad_files": draw(st.booleans()),
        "image_size": draw(st.sampled_from([None, None, (6, 5)])),
        "color_mode": draw(st.sampled_from([None, None, "grayscale", "rgb"])),
    }
    return parts, options


def shown(path: Path) -> str:
    """A path as docs/datasets.md says messages print it: as it is, or escaped by `repr`."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def write_tree(root: Path, parts) -> None:
    root.mkdir()
    for part, classes in parts.items():
        (root / part).mkdir(exist_ok=True)
        for name, files in classes.items():
            folder = root / part / (name or "")
            folder.mkdir(parents=True, exist_ok=True)
            for relative, content, _ in files:
                (folder / relative).parent.mkdir(parents=True, exist_ok=True)
                (folder / relative).write_bytes(content)


def expected_scan(root: Path, parts, skip_bad_files, image_size, color_mode):
    """What docs/datasets.md says of the tree: `(paths at fault, None)` if it is refused,
    else `((), the ImageFolder's fields)`."""
    at_fault, kept, skipped, classes = [], [], 0, {}
    for part, part_classes in parts.items():
        directory = root / part
        names = []
        for name, files in part_classes.items():
            if name is not None and name.startswith("."):
                continue  # a hidden class folder is not read at all
            paths = [(directory / (name or "") / path, verdict) for path, _, verdict in files]
            bad = [path for path, verdict in paths if verdict == "bad"]
            skipped += len(bad)
            if bad and not skip_bad_files:
                at_fault += bad
            if name is None:
                continue
            names.append(name)
            images = [(v, part, path) for path, v in paths if v not in ("bad", "hidden")]
            if not images:
                at_fault.append(directory / name)
            kept += images
        if len(names) < 2:
            at_fault.append(directory)
        classes[part] = sorted(names)
    if "test" in classes and classes["test"] != classes["train"]:
        at_fault.append(root / "test")
    sizes = {verdict[1] for verdict, _, _ in kept}
    if image_size is None and len(sizes) > 1:
        at_fault += [path for _, _, path in kept]  # the first of another size than the first
    if at_fault:
        return at_fault, None
    if image_size is None:
        ((width, height),) = sizes
        image_size = (height, width)
    if color_mode is None:
        color_mode = "grayscale" if all(verdict[2] for verdict, _, _ in kept) else "rgb"
    fields = {
        "class_names": tuple(classes["train" if "train" in classes else ""]),
        "image_shape": (*image_size, 1 if color_mode == "grayscale" else 3),
        "train_files": sum(1 for _, part, _ in kept if part != "test"),
        "test_files": sum(1 for _, part, _ in kept if part == "test"),
        "skipped": skipped,
    }
    return (), fields


def keras_file_counts(folder) -> tuple[int, int]:
    """How many files `keras.utils.image_dataset_from_directory` reads of the folder's
    training and test parts: what the training gets."""
    import keras

    counts = []
    for directory in (folder.train_dir, folder.test_dir):
        dataset = directory and keras.utils.image_dataset_from_directory(
            directory, class_names=list(folder.class_names), verbose=False
        )
        counts.append(len(dataset.file_paths) if dataset else 0)
    return tuple(counts)


@settings(max_examples=FOLDER_EXAMPLES_PER_PROFILE_EXAMPLE * PROFILE_EXAMPLES, **FUZZ_SETTINGS)
@given(tree=folder_trees())
def test_image_folder_scan_agrees_with_the_documented_rules(tree):
    parts, options = tree
    with tempfile.TemporaryDirectory(prefix="lenet-fuzz-") as work:
        root = Path(work) / "tree"
        write_tree(root, parts)
        at_fault, fields = expected_scan(root, parts, **options)

        folder, message, seconds, _ = bounded_call(
            lambda path: scan_image_folder(path, **options), root
        )

        assert seconds < READ_SECONDS
        if fields is None:
            assert message is not None, f"accepted; expected a refusal naming one of {at_fault}"
            assert_one_line_naming(message, root)
            assert any(message.startswith(f"{shown(path)}: ") for path in at_fault), (
                message,
                at_fault,
            )
            event(f"folder refused: {message.rsplit(': ', 1)[-1][:30]}")
            return
        assert message is None, message
        event("folder read")
        assert folder.class_names == fields["class_names"]
        assert folder.image_shape == fields["image_shape"]
        assert (folder.train_files, folder.test_files) == (
            fields["train_files"],
            fields["test_files"],
        )
        assert len(folder.skipped) == fields["skipped"]
        assert all(str(root) in entry and "\n" not in entry for entry in folder.skipped)
        assert keras_file_counts(folder) == (folder.train_files, folder.test_files)
        with contextlib.suppress(AttributeError):
            folder.workspace.cleanup()


def test_hidden_files_the_scan_ignores_are_not_read_by_keras(tmp_path):
    """Hidden files in a class folder (cat/._1.png, macOS' AppleDouble files) and files in
    hidden subfolders: Keras' `image_dataset_from_directory` reads them (it skips hidden class
    folders only), so the scan gives Keras a tree without them."""
    import keras

    root = write_images(tmp_path / "tree", {"cat": 1, "dog": 1})
    (root / "cat" / "._1.png").write_bytes(b"\x00\x05\x16\x07junk")
    (root / "dog" / ".thumbnails").mkdir()
    (root / "dog" / ".thumbnails" / "0.png").write_bytes(b"junk")
    folder = scan_image_folder(root)

    dataset = keras.utils.image_dataset_from_directory(
        folder.train_dir, class_names=list(folder.class_names), verbose=False
    )

    assert len(dataset.file_paths) == folder.train_files == 2
    assert len(list(dataset.unbatch())) == 2  # every file Keras reads decodes
    assert folder.skipped == ()  # hidden files are ignored, not skipped as bad ones


def test_a_name_with_a_newline_keeps_the_error_on_one_line(tmp_path):
    root = write_images(tmp_path / "tree", {"cat": 1, "dog": 1})
    (root / "a\nb").mkdir()

    with pytest.raises(ValueError) as info:
        scan_image_folder(root)
    assert_one_line_naming(str(info.value).replace("a\nb", "a\\nb"), root)
    assert "\n" not in str(info.value)
