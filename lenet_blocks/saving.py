"""`load_model`: load a `.keras` file of this package safely, with clear errors."""

from __future__ import annotations

import os
import zipfile

import keras

import lenet_blocks.layers  # noqa: F401  (registers the layers before deserialization)


def load_model(path: str | os.PathLike, compile: bool = True) -> keras.Model:
    """Loads a `.keras` model file with `safe_mode=True`; no `custom_objects` needed.

    Args:
        path: path of a `.keras` file.
        compile: bool. Whether to restore the training configuration (optimizer, loss).

    Returns:
        The `keras.Model`.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if `path` is not a readable `.keras` archive (truncated, corrupt, or
            another format); the message names the file.

    Example:
    >>> import tempfile, pathlib
    >>> from lenet_blocks import build_lenet
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "lenet.keras"
    >>> build_lenet().save(path)
    >>> load_model(path).count_params()
    44426
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at {path!r}.")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path!r} is not a `.keras` model file (not a zip archive: truncated, corrupt, or "
            "another format)."
        )
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, TypeError) as error:
        raise ValueError(f"Could not load the model file {path!r}: {error}") from None
