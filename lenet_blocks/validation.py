"""Small argument checks shared by the modules that validate user input (no Keras import).

Example:
>>> is_positive_int(3), is_positive_int(True), is_positive_int(0)
(True, False, False)
"""

from __future__ import annotations

import os
from collections.abc import Iterable


def is_positive_int(value) -> bool:
    """Whether `value` is an `int` >= 1 (a `bool` is not).

    Example:
    >>> is_positive_int(2), is_positive_int(2.0)
    (True, False)
    """
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def is_number(value) -> bool:
    """Whether `value` is an `int` or a `float` (a `bool` is not).

    Example:
    >>> is_number(0.5), is_number(False), is_number("1")
    (True, False, False)
    """
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_class_names(names: Iterable[str] | None, classes: int) -> tuple[str, ...] | None:
    """`names` as a tuple, checked: one distinct, non-empty `str` per class; `None` stays `None`.

    Args:
        names: the names of the classes (label `i` is `names[i]`), or `None`.
        classes: int. The number of classes they must name.

    Raises:
        ValueError: `names` is a single string, not `classes` long, or holds an empty, a
            non-string or a repeated name.

    Example:
    >>> check_class_names(["cat", "dog"], 2)
    ('cat', 'dog')
    >>> check_class_names(["cat", "cat"], 2)
    Traceback (most recent call last):
    ...
    ValueError: `class_names` must name each of the 2 classes with a distinct, non-empty str. Received: class_names=['cat', 'cat']
    """  # noqa: E501
    if names is None:
        return None
    checked = None if isinstance(names, str) or not isinstance(names, Iterable) else tuple(names)
    if (
        checked is None
        or len(checked) != classes
        or not all(isinstance(name, str) and name for name in checked)
        or len(set(checked)) != len(checked)
    ):
        raise ValueError(
            f"`class_names` must name each of the {classes} classes with a distinct, non-empty "
            f"str. Received: class_names={names!r}"
        )
    return checked


def path_for_message(path: str | os.PathLike) -> str:
    r"""`path` as a message prints it: as it is, or quoted and escaped by `repr` when it holds a
    newline or another unprintable character (a file name not in UTF-8 among them).

    Example:
    >>> path_for_message("photos/cat")
    'photos/cat'
    >>> print(path_for_message("photos/a\nb"))
    'photos/a\nb'
    """
    text = os.fspath(path)
    return text if text.isprintable() else repr(text)


def printable_line(text: str) -> str:
    r"""`text` with each unprintable character (a newline, ...) escaped as `repr` escapes it.

    Example:
    >>> print(printable_line("line 1\nline 2"))
    line 1\nline 2
    """
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)
