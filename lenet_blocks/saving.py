"""`load_model`: load a `.keras` file of this package safely, with clear errors, on any backend."""

from __future__ import annotations

import json
import math
import os
import re
import reprlib
import tempfile
import warnings
import zipfile
from collections.abc import Iterator

import keras

import lenet_blocks.layers  # noqa: F401  (registers the layers before deserialization)
from lenet_blocks import losses  # noqa: F401  (registers RBFLoss/RBFAccuracy for compiled files)
from lenet_blocks.limits import check_params, max_params
from lenet_blocks.validation import is_positive_int

CONFIG_FILE = "config.json"
# The most bytes `config.json` may declare; a LeNet's is about 10 KB, and a model of thousands
# of layers a few MB.
MAX_CONFIG_BYTES = 2**26
_SIZE_FIELDS = ("filters", "kernel_size", "units")
# What Keras raises for a file it cannot build (a hand-edited config meets any of them).
_LOAD_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    KeyError,
    IndexError,
    AttributeError,
    ValueError,
    TypeError,
    RuntimeError,  # RecursionError for a deeply nested file, "could not find layer" from Keras
)
# A compiled model saved on the torch backend records its optimizer as
# `keras.src.backend.torch.optimizers.torch_sgd.SGD`: importable only where torch is, and a
# torch-only optimizer even where it imports.
_BACKEND_MODULE = re.compile(r"^keras\.src\.backend\.(?P<backend>\w+)\.")


def load_model(
    path: str | os.PathLike, compile: bool = True, safe_mode: bool = True
) -> keras.Model:
    """Loads a `.keras` model file, safely by default; no `custom_objects` needed.

    Files move between backends: a file saved on TensorFlow, JAX or PyTorch loads on any of
    them. A compiled model saved on PyTorch records a torch-only optimizer class; it is
    restored as the public Keras optimizer of the same name and configuration, with its state
    (iterations, momentums). Should no public optimizer of that name exist, the model is loaded
    uncompiled, then compiled with `objectives.loss_and_metrics` and Keras' default optimizer
    (rmsprop), and a `UserWarning` says that the optimizer and its state were not restored.
    On PyTorch, a file that asks for `jit_compile=True` (TensorFlow's and JAX's XLA default)
    runs with PyTorch's default, `"auto"` (no `torch.compile`).

    The file is checked before anything is built from it: its `config.json` must declare at
    most `MAX_CONFIG_BYTES`; with `safe_mode`, a config holding Python bytecode (a `Lambda`
    layer or any other serialized lambda) is refused, since loading it would run that code;
    and a layer whose config declares more parameters than `lenet_blocks.limits.max_params()`
    (one int `filters` or `units` times the fan-in of its declared input shape: Keras'
    `Conv2D` and `Dense`, the package's `ConvBlock`) is refused before its weights are
    allocated; raise the budget with `LENET_BLOCKS_MAX_PARAMS`. The package's own layers also
    check their parameter count when they are built, from their actual input shape.

    Args:
        path: path of a `.keras` file.
        compile: bool. Whether to restore the training configuration (optimizer, loss).
        safe_mode: bool. `False` loads Python bytecode in the file (lambdas); only for a file
            you trust, as in `keras.saving.load_model`.

    Returns:
        The `keras.Model`.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if `path` is not a readable `.keras` archive (truncated, corrupt, another
            format, or a config Keras cannot build), holds Python bytecode (with
            `safe_mode`), or declares a layer over the parameter budget; the message names
            the file, and the layer where one is at fault.

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
        config = _read_config(path)
    except _LOAD_ERRORS as error:
        raise ValueError(f"Could not load the model file {path!r}: {error}") from None
    if config is not None:
        if safe_mode:
            _refuse_python_code(path, config)
        _check_layer_sizes(path, config)
    try:
        optimizer = _foreign_optimizer(config) if compile and config is not None else None
        if optimizer is not None and _public_optimizer(optimizer) is None:
            return _load_without_optimizer(path, optimizer, safe_mode)
        portable = _portable_config(config, optimizer) if compile and config is not None else None
        if portable is None:
            return keras.saving.load_model(path, compile=compile, safe_mode=safe_mode)
        return _load_with_config(path, portable, safe_mode)
    except _LOAD_ERRORS as error:
        raise ValueError(f"Could not load the model file {path!r}: {error}") from None


def _read_config(path: str) -> dict | None:
    with zipfile.ZipFile(path) as archive:
        size = archive.getinfo(CONFIG_FILE).file_size
        if size > MAX_CONFIG_BYTES:
            raise ValueError(
                f"its {CONFIG_FILE} declares {size} bytes, over the limit of {MAX_CONFIG_BYTES}"
            )
        config = json.loads(archive.read(CONFIG_FILE))
    return config if isinstance(config, dict) else None  # Keras reports what is wrong


def _objects(config: dict) -> Iterator[tuple[dict, dict | None]]:
    """Every serialized object in `config` (`{"class_name": ..., "config": {...}}`), with the
    innermost layer (an object whose config has a `name`) holding it, or `None`.

    Iterative, so that a deeply nested file is no `RecursionError`.
    """
    stack: list[tuple[object, dict | None]] = [(config, None)]
    while stack:
        node, layer = stack.pop()
        if isinstance(node, list):
            stack.extend((item, layer) for item in node)
        elif isinstance(node, dict):
            inner = node.get("config")
            if isinstance(node.get("class_name"), str) and isinstance(inner, dict):
                yield node, layer
                if isinstance(inner.get("name"), str):
                    layer = node
            stack.extend((value, layer) for value in node.values())


def _describe(layer: dict | None) -> str:
    if layer is None:
        return "the model"
    return f"layer {layer['config']['name']!r} ({layer['class_name']})"


def _refuse_python_code(path: str, config: dict) -> None:
    for node, layer in _objects(config):
        if node["class_name"] == "__lambda__":
            raise ValueError(
                f"{path!r}: {_describe(layer)} holds Python bytecode (a lambda), which "
                "load_model refuses because loading it would run that code. Rebuild the model "
                "without Lambda layers or lambdas (named, registered functions and layers load "
                "safely), or, for a file you trust, call "
                "lenet_blocks.load_model(path, safe_mode=False)."
            )


def _check_layer_sizes(path: str, config: dict) -> None:
    """Refuses a Keras layer whose config declares more parameters than the budget."""
    limit = max_params()
    for node, _ in _objects(config):
        count = _declared_params(node)
        if count > limit:
            inner = node["config"]
            sizes = ", ".join(
                f"{key}={reprlib.repr(inner[key])}" for key in _SIZE_FIELDS if key in inner
            )
            name = reprlib.repr(inner.get("name"))
            check_params(f"{path!r}: layer {name} ({node['class_name']}, {sizes})", count, limit)


def _declared_params(node: dict) -> int:
    """Parameters of a layer with one int `filters` (convolution) or `units` (dense), estimated
    from its config and declared input shape; 0 for other objects."""
    inner = node["config"]
    widths = _positive_ints(inner.get("filters", inner.get("units")))
    if len(widths) != 1:
        return 0
    shape = _declared_input_shape(node)
    fan_in = shape[-1] if shape else 1
    if "filters" in inner:
        kernel = _positive_ints(inner.get("kernel_size"))
        spatial_dims = max(len(shape) - 2, 1)
        fan_in *= kernel[0] ** spatial_dims if len(kernel) == 1 else math.prod(kernel)
    return (fan_in + 1) * widths[0]


def _declared_input_shape(node: dict) -> list[int]:
    """The input shape a layer is built with: its `build_config`, else the shape of the first
    tensor it is called on; unknown dimensions count as 1."""
    build_config = node.get("build_config")
    shape = build_config.get("input_shape") if isinstance(build_config, dict) else None
    if shape is None:
        try:
            shape = node["inbound_nodes"][0]["args"][0]["config"]["shape"]
        except (KeyError, IndexError, TypeError):
            shape = None
    if isinstance(shape, list) and shape and isinstance(shape[0], list):
        shape = shape[0]  # several inputs: the first
    if not isinstance(shape, list):
        return []
    return [dim if is_positive_int(dim) else 1 for dim in shape]


def _positive_ints(value) -> list[int]:
    values = value if isinstance(value, list) else [value]
    return [v for v in values if is_positive_int(v)]


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


def _load_with_config(path: str, config: dict, safe_mode: bool) -> keras.Model:
    """Loads `path` with its `config.json` replaced by `config` (in a temporary copy)."""
    with tempfile.TemporaryDirectory(prefix="lenet-blocks-load-") as directory:
        patched = os.path.join(directory, os.path.basename(path))
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(patched, "w") as target:
            for entry in source.infolist():
                data = source.read(entry)
                if entry.filename == CONFIG_FILE:
                    data = json.dumps(config).encode("utf-8")
                target.writestr(entry, data)
        return keras.saving.load_model(patched, compile=True, safe_mode=safe_mode)


def _load_without_optimizer(path: str, optimizer: dict, safe_mode: bool) -> keras.Model:
    from lenet_blocks.objectives import loss_and_metrics

    model = keras.saving.load_model(path, compile=False, safe_mode=safe_mode)
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
