"""Small argument checks shared by the modules that validate user input (no Keras import).

Example:
>>> is_positive_int(3), is_positive_int(True), is_positive_int(0)
(True, False, False)
"""

from __future__ import annotations


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
