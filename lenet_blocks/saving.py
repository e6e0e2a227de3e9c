"""`load_model`: load a `.keras` file of this package safely, with clear errors, on any backend."""

from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
import zipfile

import keras

import lenet_blocks.layers  # noqa: F401  (registers the layers before deserialization)
from lenet_blocks import losses  # noqa: F401  (registers RBFLoss/RBFAccuracy for compiled files)

CONFIG_FILE = "config.json"
# A compiled model saved on the torch backend records its optimizer as
# `keras.src.backend.torch.optimizers.torch_sgd.SGD`: importable only where torch is, and a
# torch-only optimizer even where it imports.
_BACKEND_MODULE = re.compile(r"^keras\.src\.backend\.(?P<backend>\w+)\.")


def load_model(path: str | os.PathLike, compile: bool = True) -> keras.Model:
    """Loads a `.keras` model file with `safe_mode=True`; no `custom_objects` needed.

    Files move between backends: a file saved on TensorFlow, JAX or PyTorch loads on any of
    them. A compiled model saved on PyTorch records a torch-only optimizer class; it is
    restored as the public Keras optimizer of the same name and configuration, with its state
    (iterations, momentums). Should no public optimizer of that name exist, the model is loaded
    uncompiled, then compiled with `objectives.loss_and_metrics` and Keras' default optimizer
    (rmsprop), and a `UserWarning` says that the optimizer and its state were not restored.
    On PyTorch, a file that asks for `jit_compile=True` (TensorFlow's and JAX's XLA default)
    runs with PyTorch's default, `"auto"` (no `torch.compile`).

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
        config = _read_config(path) if compile else None
        optimizer = _foreign_optimizer(config) if config is not None else None
        if optimizer is not None and _public_optimizer(optimizer) is None:
            return _load_without_optimizer(path, optimizer)
        portable = _portable_config(config, optimizer) if config is not None else None
        if portable is None:
            return keras.saving.load_model(path, compile=compile, safe_mode=True)
        return _load_with_config(path, portable)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, TypeError) as error:
        raise ValueError(f"Could not load the model file {path!r}: {error}") from None


def _read_config(path: str) -> dict | None:
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read(CONFIG_FILE))
    return config if isinstance(config, dict) else None  # Keras reports what is wrong


def _foreign_optimizer(config: dict) -> dict | None:
    """The saved optimizer's config when its class belongs to another backend, else `None`."""
    optimizer = (config.get("compile_config") or {}).get("optimizer")
    if not isinstance(optimizer, dict):
        return None
    match = _BACKEND_MODULE.match(str(optimizer.get("module", "")))
    if match is None or match["backend"] == keras.backend.backend():
        return None
    return optimizer


def _public_optimizer(optimizer: dict) -> type | None:
    public = getattr(keras.optimizers, str(optimizer.get("class_name")), None)
    is_optimizer = isinstance(public, type) and issubclass(public, keras.optimizers.Optimizer)
    return public if is_optimizer else None


def _portable_config(config: dict, foreign_optimizer: dict | None) -> dict | None:
    """`config` with what only its saving backend can use replaced; `None` if there is none.

    - An optimizer class of another backend becomes the public Keras class of that name.
    - On PyTorch, `jit_compile: true` (what TensorFlow and JAX record for their default,
      XLA) becomes `"auto"`: on PyTorch `True` means `torch.compile`, which fails on some
      presets (d2l) and needs a C++ toolchain; `"auto"` is PyTorch's default (eager).
    """
    compile_config = config.get("compile_config")
    if not isinstance(compile_config, dict):
        return None
    changes = {}
    if foreign_optimizer is not None:
        changes["optimizer"] = dict(
            foreign_optimizer, module="keras.optimizers", registered_name=None
        )
    if keras.backend.backend() == "torch" and compile_config.get("jit_compile") is True:
        changes["jit_compile"] = "auto"
    if not changes:
        return None
    return dict(config, compile_config=dict(compile_config, **changes))


def _load_with_config(path: str, config: dict) -> keras.Model:
    """Loads `path` with its `config.json` replaced by `config` (in a temporary copy)."""
    with tempfile.TemporaryDirectory(prefix="lenet-blocks-load-") as directory:
        patched = os.path.join(directory, os.path.basename(path))
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(patched, "w") as target:
            for entry in source.infolist():
                data = source.read(entry)
                if entry.filename == CONFIG_FILE:
                    data = json.dumps(config).encode("utf-8")
                target.writestr(entry, data)
        return keras.saving.load_model(patched, compile=True, safe_mode=True)


def _load_without_optimizer(path: str, optimizer: dict) -> keras.Model:
    from lenet_blocks.objectives import loss_and_metrics

    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    loss, metrics = loss_and_metrics(model)
    model.compile(loss=loss, metrics=metrics)
    name = f"{optimizer.get('module')}.{optimizer.get('class_name')}"
    warnings.warn(
        f"{path!r} was saved with the optimizer {name}, which the {keras.backend.backend()} "
        "backend cannot use: the optimizer and its state were not restored. The model is "
        "compiled with the loss and metrics that fit its output layer and Keras' default "
        "optimizer (rmsprop); compile it again to choose the optimizer.",
        UserWarning,
        stacklevel=3,
    )
    return model
