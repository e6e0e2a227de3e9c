"""Argument checks of the registered layers: each layer validates its own constructor arguments
with these, so `from_config` of a hand-edited file is as safe as the constructor.

Each check returns the value (normalized where that is its job) or raises a one-line
`ValueError` naming the argument, the rule and the value received.

Example:
>>> int_pair("pool_size", 2)
(2, 2)
>>> rate("dropout", True)
Traceback (most recent call last):
...
ValueError: `dropout` must be a float in [0, 1). Received: dropout=True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

from lenet_blocks.limits import check_params
from lenet_blocks.validation import is_number, is_positive_int

PADDINGS = ("valid", "same")


def fail(arg: str, rule: str, value):
    """Raises the one-line `ValueError` of a failed check: the argument, its rule, the value."""
    raise ValueError(f"`{arg}` must be {rule}. Received: {arg}={value!r}")


def positive_int(arg: str, value) -> int:
    """`value` if it is an int >= 1 (not a bool)."""
    if not is_positive_int(value):
        fail(arg, "a positive int", value)
    return value


def positive_ints(arg: str, values, allow_empty: bool = True) -> tuple[int, ...]:
    """`values` as a tuple if it is a sequence (not a string) of positive ints.

    Example:
    >>> positive_ints("units", [120, 84])
    (120, 84)
    """
    valid = isinstance(values, Sequence) and not isinstance(values, str | bytes)
    if not valid or not all(is_positive_int(v) for v in values) or not (allow_empty or values):
        fail(
            arg, "a sequence of positive ints" + ("" if allow_empty else " (at least one)"), values
        )
    return tuple(values)


def int_pair(arg: str, value) -> tuple[int, int]:
    """A positive int `n` as `(n, n)`, or a pair of positive ints as a tuple."""
    values = tuple(value) if isinstance(value, list | tuple) else (value, value)
    if len(values) != 2 or not all(is_positive_int(v) for v in values):
        fail(arg, "a positive int or a pair of positive ints", value)
    return values


def one_of(arg: str, value, choices: tuple):
    """`value` if it is one of `choices` (a bool never is)."""
    if isinstance(value, bool) or not isinstance(value, str | None) or value not in choices:
        fail(arg, f"one of {choices}", value)
    return value


def boolean(arg: str, value) -> bool:
    """`value` if it is a bool."""
    if not isinstance(value, bool):
        fail(arg, "a bool", value)
    return value


def rate(arg: str, value) -> float:
    """`value` as a float if it is a number in [0, 1)."""
    if not is_number(value) or not 0 <= value < 1:
        fail(arg, "a float in [0, 1)", value)
    return float(value)


def finite_number(arg: str, value) -> float:
    """`value` as a float if it is a finite number."""
    if not is_number(value) or not math.isfinite(value):
        fail(arg, "a finite number", value)
    return float(value)


def activation_name(arg: str, value, allow_none: bool = False, extra: tuple = ()):
    """`value` if it names a Keras activation (or is one of `extra`, or `None` if allowed)."""
    if (value is None and allow_none) or (isinstance(value, str) and value in extra):
        return value
    try:
        valid = isinstance(value, str) and keras.activations.get(value) is not None
    except ValueError:
        valid = False
    if not valid:
        rule = "the name of a Keras activation" + (" or None" if allow_none else "")
        fail(arg, f"{rule}, e.g. 'sigmoid'", value)
    return value


def initializer(arg: str, value):
    """`keras.initializers.get(value)`, refusing what is not an initializer (`None` included).

    Example:
    >>> type(initializer("bias_initializer", "zeros")).__name__
    'Zeros'
    """
    try:
        resolved = keras.initializers.get(value)
    except (ValueError, TypeError):
        resolved = None
    if resolved is None:
        fail(arg, "a Keras initializer (a name such as 'zeros', a config or an instance)", value)
    return resolved


def class_names(value, classes: int) -> tuple[str, ...] | None:
    """`None`, or `value` as a tuple of `classes` distinct non-empty strings.

    Example:
    >>> class_names(["cat", "dog"], 2)
    ('cat', 'dog')
    """
    if value is None:
        return None
    valid = isinstance(value, Sequence) and not isinstance(value, str | bytes)
    names = tuple(value) if valid else ()
    if (
        not valid
        or len(names) != classes
        or not all(isinstance(n, str) and n for n in names)
        or len(set(names)) != len(names)
    ):
        fail("class_names", f"None or {classes} distinct non-empty strings (one per class)", value)
    return names


def check_weights_fit(layer: keras.layers.Layer, count: int) -> None:
    """Refuses to build `layer` with `count` parameters over `lenet_blocks.limits.max_params()`."""
    check_params(f"Layer {layer.name!r} ({type(layer).__name__})", count)
