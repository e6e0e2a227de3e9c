"""The Keras backend of a command: chosen before Keras is imported, checked to be installed.

Keras reads its backend once, from `KERAS_BACKEND`, when it is first imported. `lenet-blocks
--backend {tensorflow,jax,torch} COMMAND` (or `KERAS_BACKEND`; the flag wins) goes through
`select_backend`, which refuses a backend whose library is missing with the command that
installs it, then sets `KERAS_BACKEND` for this process and the processes it starts. This
module imports no Keras, so that it can run first.

Example:
>>> requested_backend("jax", {"KERAS_BACKEND": "torch"})
'jax'
>>> requested_backend(None, {"KERAS_BACKEND": "torch"})
'torch'
>>> requested_backend(None, {}) is None
True
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping

__all__ = [
    "BACKENDS",
    "BACKEND_ENV_VAR",
    "TENSORFLOW_ONLY",
    "BackendNotInstalledError",
    "check_tensorflow_only",
    "requested_backend",
    "select_backend",
]

BACKEND_ENV_VAR = "KERAS_BACKEND"
BACKENDS = ("tensorflow", "jax", "torch")
_LIBRARIES = {  # backend -> (module Keras imports for it, the command that installs it)
    "tensorflow": ("tensorflow", "pip install tensorflow"),
    "jax": ("jax", "pip install jax  (or: bash scripts/setup_backends.sh jax)"),
    "torch": ("torch", "pip install torch  (or: bash scripts/setup_backends.sh torch)"),
}
TENSORFLOW_ONLY = {
    # (command, argument): (whether the argument's value asks for it, what it is)
    ("train", "distribution"): (lambda value: value != "none", "tf.distribute training"),
    ("tune", "workers"): (bool, "the distributed search"),
}
"""What only the TensorFlow backend runs, by the command and argument that ask for it."""


class BackendNotInstalledError(ValueError):
    """The library of the requested Keras backend is not installed."""


def requested_backend(flag: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The backend asked for: `flag` (`--backend`), else `KERAS_BACKEND`, else `None`.

    Args:
        flag: the `--backend` value, or `None`.
        environ: the environment to read `KERAS_BACKEND` from.

    Raises:
        ValueError: `KERAS_BACKEND` names no backend of `BACKENDS` (and no flag overrides it).
    """
    if flag is not None:
        return flag
    value = environ.get(BACKEND_ENV_VAR) or None
    if value is not None and value not in BACKENDS:
        raise ValueError(
            f"`{BACKEND_ENV_VAR}` must be one of {', '.join(BACKENDS)}. "
            f"Received: {BACKEND_ENV_VAR}={value!r}"
        )
    return value


def select_backend(name: str, find_spec=importlib.util.find_spec) -> str:
    """Makes `name` the Keras backend of this process (and of the processes it starts).

    Call it before Keras is imported. When Keras is imported already, `name` must be the
    backend it runs on.

    Args:
        name: one of `BACKENDS`.
        find_spec: how a module is looked up (`importlib.util.find_spec`; tests replace it).

    Returns:
        `name`.

    Raises:
        BackendNotInstalledError: the backend's library is not installed (the message gives
            the install command).
        ValueError: an unknown `name`, or Keras already runs on another backend here.

    Example:
    >>> select_backend("torch", find_spec=lambda module: None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lenet_blocks.backends.BackendNotInstalledError: The torch backend needs torch, ...
    """
    if name not in BACKENDS:
        raise ValueError(
            f"`backend` must be one of {', '.join(BACKENDS)}. Received: backend={name!r}"
        )
    module, install = _LIBRARIES[name]
    if sys.modules.get(module) is None and find_spec(module) is None:
        raise BackendNotInstalledError(
            f"The {name} backend needs {module}, which is not installed here; "
            f"install it with: {install}"
        )
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != name:
        raise ValueError(
            f"Keras is imported already, on the {keras.backend.backend()} backend; start a new "
            f"process for another. Received: backend={name!r}"
        )
    os.environ[BACKEND_ENV_VAR] = name
    return name


def check_tensorflow_only(command: str, arguments: Mapping[str, object], backend: str) -> None:
    """Refuses, in one line, what `TENSORFLOW_ONLY` lists when `backend` is not TensorFlow.

    Args:
        command: the CLI command (`train`, `tune`, ...).
        arguments: its parsed arguments, by name.
        backend: the Keras backend the command runs on.

    Raises:
        ValueError: `arguments` ask for a TensorFlow-only feature on another backend.

    Example:
    >>> check_tensorflow_only("train", {"distribution": "none"}, "jax")
    >>> check_tensorflow_only("train", {"distribution": "mirrored"}, "jax")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: tf.distribute training runs on the TensorFlow backend only ... --backend jax
    """
    if backend == "tensorflow":
        return
    for (name, argument), (asks, what) in TENSORFLOW_ONLY.items():
        value = arguments.get(argument)
        if name == command and asks(value):
            flag = "--" + argument.replace("_", "-")
            raise ValueError(
                f"{what} runs on the TensorFlow backend only (--backend tensorflow). "
                f"Received: {flag} {value} with --backend {backend}"
            )
