"""Image-folder data sets: one subfolder per class of PNG/JPEG files, read by Keras.

`scan_image_folder` checks the whole tree before anything trains (every file is opened and
verified by PIL, no pixel array is kept) and settles the images' shape; `folder_datasets` then
reads it with `keras.utils.image_dataset_from_directory`, which decodes the files batch by
batch at every epoch: nothing is cached in memory.

Layouts: `ROOT/CLASS/*.png` (a validation split is drawn from it, seeded), or `ROOT/train/CLASS/`
with `ROOT/test/CLASS/` (the test split; its class folders must be the training ones).
Resize rule: without `image_size` every image must have the size of the first one (in sorted
order); with `image_size=(height, width)` each is resized to it (bilinear, aspect ratio not kept,
Keras' default). Channels: grayscale when every image is (PIL modes `1`, `L`, `LA`, `I`,
`I;16`), else RGB (alpha dropped); `color_mode=` decides instead.

Hidden files and folders (`.name`: macOS' `._photo.png` and `.DS_Store`, `.thumbnails/`) are
ignored by the check and by the training alike: Keras skips hidden class folders only, so when
a class folder holds hidden files it would read, Keras is given a tree of links to the checked
files instead (as when bad files are skipped). Paths in messages are printed as they are, or
quoted and escaped (`repr`) when they hold a newline or another unprintable character, so that
every message is one line (`validation.path_for_message`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from lenet_blocks import datasets
from lenet_blocks.choices import COLOR_MODES
from lenet_blocks.validation import path_for_message, printable_line

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageFolder",
    "evaluation_dataset",
    "folder_datasets",
    "is_split_tree",
    "scan_image_folder",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16")
_FORMATS = ("PNG", "JPEG")


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    """A checked image-folder tree, ready for `folder_datasets`.

    Attributes:
        path: the tree as the user gave it.
        train_dir: the folder of the training class folders (what Keras reads).
        test_dir: the folder of the test class folders, or `None` (no `test/` part).
        class_names: the class folder names, sorted (label `i` is `class_names[i]`).
        image_shape: `(height, width, channels)` of the images Keras yields.
        train_files, test_files: the numbers of images read.
        skipped: the files left out (`skip_bad_files=True`), each with its reason.
    """

    path: Path
    train_dir: Path
    test_dir: Path | None
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    train_files: int
    test_files: int
    skipped: tuple[str, ...] = ()
    # The temporary tree of links to the kept files, when files were skipped: it lives as long
    # as this object, since Keras reads the files at every epoch.
    workspace: object = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def color_mode(self) -> str:
        return "grayscale" if self.image_shape[-1] == 1 else "rgb"

    def split_sizes(self, validation_split: float) -> tuple[int, int]:
        """`(training, validation)` image counts of Keras' `validation_split` of the training files.

        Args:
            validation_split: float. The fraction of the training files Keras holds out.

        Example:
        >>> folder = ImageFolder(Path("t"), Path("t"), None, ("a", "b"), (8, 8, 1), 25, 0)
        >>> folder.split_sizes(0.1)
        (23, 2)
        """
        validation = int(validation_split * self.train_files)  # as Keras rounds it
        return self.train_files - validation, validation


def is_split_tree(path: Path) -> bool:
    """Whether `path` has `train/` and `test/` parts rather than class folders."""
    return (path / "train").is_dir() and (path / "test").is_dir()


def scan_image_folder(
    path: str | os.PathLike,
    *,
    image_size: tuple[int, int] | None = None,
    color_mode: str | None = None,
    skip_bad_files: bool = False,
) -> ImageFolder:
    """Checks an image-folder tree and settles the shape of its images (see the module docs).

    Args:
        path: the tree: class folders, or `train/` and `test/` parts holding them.
        image_size: `(height, width)` to resize every image to; `None`: they must agree.
        color_mode: `"grayscale"`, `"rgb"`, or `None` (from the images).
        skip_bad_files: leave unreadable and non-PNG/JPEG files out (they are counted in
            `skipped`) instead of refusing the tree. Hidden files and folders (`.name`) are
            always ignored, by Keras too (see the module docs).

    Raises:
        FileNotFoundError: `path` is no directory.
        ValueError: one line naming the file or folder: a file that is not a readable PNG/JPEG
            image, an empty class folder, fewer than two classes, images of different sizes
            without `image_size`, a test part whose classes differ, a bad argument.

    Example:
    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("cat", "dog"):
    ...     (root / name).mkdir()
    ...     Image.new("L", (12, 10)).save(root / name / "1.png")
    >>> folder = scan_image_folder(root)
    >>> folder.class_names, folder.image_shape
    (('cat', 'dog'), (10, 12, 1))
    """
    if color_mode is not None and color_mode not in COLOR_MODES:
        raise ValueError(
            f"`color_mode` must be one of {COLOR_MODES} or None. "
            f"Received: color_mode={color_mode!r}"
        )
    if image_size is not None:
        image_size = tuple(image_size)
        if len(image_size) != 2 or not all(
            isinstance(side, int) and side > 0 for side in image_size
        ):
            raise ValueError(
                "`image_size` must be (height, width), two positive ints. "
                f"Received: image_size={image_size!r}"
            )
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"No image folder at {str(root)!r}.")
    split = is_split_tree(root)
    train_dir = root / "train" if split else root
    skipped: list[str] = []
    hidden: list[Path] = []
    train = _class_files(train_dir, skip_bad_files, skipped, hidden)
    test = _class_files(root / "test", skip_bad_files, skipped, hidden) if split else None
    if test is not None and list(test) != list(train):
        raise ValueError(
            f"{path_for_message(root / 'test')}: its class folders {list(test)} must be those "
            f"of {path_for_message(train_dir)}: {list(train)}."
        )
    everything = [
        item for files in (train, test or {}) for folder in files.values() for item in folder
    ]
    first_path, (first_size, _) = everything[0]
    if image_size is None:
        for file, (size, _) in everything:
            if size != first_size:
                raise ValueError(
                    f"{path_for_message(file)}: image is {size[1]}x{size[0]} (height x width) "
                    f"but {path_for_message(first_path)} is {first_size[1]}x{first_size[0]}; "
                    "give `image_size` (--image-size HxW) to resize every image."
                )
        image_size = (first_size[1], first_size[0])
    if color_mode is None:
        gray = all(mode in _GRAY_MODES for _, (_, mode) in everything)
        color_mode = "grayscale" if gray else "rgb"
    workspace = None
    if skipped or hidden:  # Keras reads the kept files only: links to them
        workspace = tempfile.TemporaryDirectory(prefix="lenet-blocks-images-")
        train_dir = _link_tree(Path(workspace.name) / "train", train)
        if test is not None:
            _link_tree(Path(workspace.name) / "test", test)
    return ImageFolder(
        path=root,
        train_dir=train_dir,
        test_dir=(train_dir.parent / "test" if workspace else root / "test") if split else None,
        class_names=tuple(train),
        image_shape=(*image_size, 1 if color_mode == "grayscale" else 3),
        train_files=sum(len(files) for files in train.values()),
        test_files=sum(len(files) for files in test.values()) if test else 0,
        skipped=tuple(skipped),
        workspace=workspace,
    )


def _class_files(
    directory: Path, skip: bool, skipped: list[str], hidden: list[Path]
) -> dict[str, list]:
    """`{class name: [(file, ((width, height), mode)), ...]}` of one tree, every file checked.

    Hidden files, and files in hidden folders, of a class folder are left out; those Keras may
    read (any with a suffix: `._1.png`, not `.DS_Store`) are added to `hidden`."""
    if not directory.is_dir():
        raise FileNotFoundError(f"No image folder at {str(directory)!r}.")
    classes: dict[str, list] = {}
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue  # Keras skips hidden class folders too
        if not entry.is_dir():
            _refuse(entry, "is not in a class folder (one subfolder per class)", skip, skipped)
            continue
        files = []
        for folder, subfolders, names in os.walk(entry):  # as Keras walks it: no links followed
            subfolders.sort()
            in_hidden = any(part.startswith(".") for part in Path(folder).relative_to(entry).parts)
            for name in sorted(names):
                file = Path(folder, name)
                if in_hidden or name.startswith("."):
                    if Path(name).suffix:
                        hidden.append(file)
                    continue
                described = _describe(file, skip, skipped)
                if described is not None:
                    files.append((file, described))
        if not files:
            raise ValueError(f"{path_for_message(entry)}: empty class folder (no PNG/JPEG images).")
        classes[entry.name] = files
    if len(classes) < 2:
        names = ", ".join(path_for_message(name) for name in classes) or "none"
        raise ValueError(
            f"{path_for_message(directory)}: a classifier needs at least two class folders. "
            f"Received: {len(classes)} ({names})."
        )
    return classes


def _describe(path: Path, skip: bool, skipped: list[str]):
    """`((width, height), mode)` of a verified PNG/JPEG file, or `None` when it is skipped."""
    from PIL import Image, UnidentifiedImageError

    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return _refuse(path, "is not a PNG/JPEG file (by its name)", skip, skipped)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                described = (image.size, image.mode, image.format)
                image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        reason = f"is not a readable image ({printable_line(str(error))})"
        return _refuse(path, reason, skip, skipped)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return _refuse(path, "declares too many pixels (PIL.Image.MAX_IMAGE_PIXELS)", skip, skipped)
    if described[2] not in _FORMATS:
        return _refuse(
            path, f"is a {printable_line(str(described[2]))} image, not PNG/JPEG", skip, skipped
        )
    return described[:2]


def _refuse(path: Path, reason: str, skip: bool, skipped: list[str]) -> None:
    if not skip:
        raise ValueError(
            f"{path_for_message(path)}: {reason}; remove it, or skip such files (--skip-bad-files)."
        )
    skipped.append(f"{path_for_message(path)}: {reason}")


def _link_tree(target: Path, classes: dict[str, list]) -> Path:
    """A tree of symbolic links to the kept files, in the layout Keras reads."""
    for name, files in classes.items():
        (target / name).mkdir(parents=True)
        for index, (file, _) in enumerate(files):
            (target / name / f"{index:08d}{file.suffix.lower()}").symlink_to(file.resolve())
    return target


def folder_datasets(folder: ImageFolder, batch_size: int, validation_split: float, seed: int):
    """`(train, validation, test)` `tf.data` datasets of float32 0-255 batches and int labels.

    The validation split is the `validation_split` fraction Keras draws from the training
    files with `seed`; the test split is the `test/` part, else the validation split itself.
    Training batches are reshuffled at every epoch; the others keep one order.

    Example:
    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("cat", "dog"):
    ...     (root / name).mkdir()
    ...     for index in range(5):
    ...         Image.new("L", (8, 8)).save(root / name / f"{index}.png")
    >>> train, validation, test = folder_datasets(scan_image_folder(root), 4, 0.2, seed=0)
    >>> [len(list(split.unbatch())) for split in (train, validation, test)]
    [8, 2, 2]
    """
    train, validation = _read_split(folder, batch_size, validation_split, seed)
    if folder.test_dir is None:
        return train, validation, validation
    return train, validation, _read(folder, folder.test_dir, batch_size, shuffle=False)


def folder_arrays(
    folder: ImageFolder, validation_split: float, seed: int, max_bytes: int | None = None
):
    """The tree as uint8 arrays `((x_train, y_train), (x_test, y_test))`, to hold in memory.

    For what needs its data in memory (the search). The test split is the `test/` part (the
    training split is then every training file), else Keras' seeded `validation_split` of the
    training files, as in `folder_datasets`. The pixels are Keras' resized ones rounded to
    uint8, and the memory the arrays take is checked against `max_bytes` before anything is
    read.

    Args:
        folder: a checked `ImageFolder` (`scan_image_folder`).
        validation_split: float. The fraction held out as the test split without a `test/` part.
        seed: int. The seed of Keras' split.
        max_bytes: the most bytes the images may take (default: `datasets.MAX_IDX_BYTES`).

    Raises:
        ValueError: the images would take more than `max_bytes`.

    Example:
    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("cat", "dog"):
    ...     (root / name).mkdir()
    ...     for index in range(5):
    ...         Image.new("L", (8, 8)).save(root / name / f"{index}.png")
    >>> (x_train, y_train), (x_test, y_test) = folder_arrays(scan_image_folder(root), 0.2, 0)
    >>> x_train.shape, x_test.shape, x_train.dtype.name
    ((8, 8, 8, 1), (2, 8, 8, 1), 'uint8')
    """
    limit = datasets.MAX_IDX_BYTES if max_bytes is None else max_bytes
    files = folder.train_files + folder.test_files
    needed = files * math.prod(folder.image_shape)  # the arrays below, allocated once
    if needed > limit:
        raise ValueError(
            f"{path_for_message(folder.path)}: its {files} images of {folder.image_shape} take "
            f"{needed} bytes in memory, over the limit of {limit} "
            f"(lenet_blocks.datasets.MAX_IDX_BYTES). Received: dataset={str(folder.path)!r}"
        )
    if folder.test_dir is None:
        train, test = _read_split(folder, 256, validation_split, seed)
        train_files, test_files = folder.split_sizes(validation_split)
    else:
        train = _read(folder, folder.train_dir, 256, shuffle=False)
        test = _read(folder, folder.test_dir, 256, shuffle=False)
        train_files, test_files = folder.train_files, folder.test_files
    return (
        _read_into_array(train, train_files, folder.image_shape),
        _read_into_array(test, test_files, folder.image_shape),
    )


def _read_split(folder: ImageFolder, batch_size: int, validation_split: float, seed: int):
    """Keras' seeded `(training, validation)` split of the training files."""
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the split's counts
        return _read(
            folder,
            folder.train_dir,
            batch_size,
            validation_split=validation_split,
            subset="both",
            seed=seed,
        )


def _read(folder: ImageFolder, directory: Path, batch_size: int, **options):
    """`keras.utils.image_dataset_from_directory` of `directory` at the folder's geometry."""
    import keras

    return keras.utils.image_dataset_from_directory(
        directory,
        labels="inferred",
        label_mode="int",
        class_names=list(folder.class_names),
        color_mode=folder.color_mode,
        batch_size=batch_size,
        image_size=folder.image_shape[:2],
        verbose=False,
        **options,
    )


def _read_into_array(dataset, capacity: int, image_shape: tuple[int, int, int]):
    """One pass over `dataset` (at most `capacity` images) into preallocated uint8 arrays."""
    images = np.empty((capacity, *image_shape), np.uint8)
    labels = np.empty(len(images), np.int64)
    count = 0
    for batch, batch_labels in dataset.as_numpy_iterator():
        end = count + len(batch)
        images[count:end] = np.clip(np.rint(batch), 0, 255)
        labels[count:end] = batch_labels
        count = end
    return images[:count], labels[:count]


def evaluation_dataset(folder: ImageFolder, batch_size: int):
    """The whole tree (its `test/` part when it has one) as one unshuffled dataset, to evaluate."""
    return _read(folder, folder.test_dir or folder.train_dir, batch_size, shuffle=False)
