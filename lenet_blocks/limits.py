"""Size limits checked before anything is allocated (no Keras import).

A model, a layer or a file that would need more than these is refused with a one-line
`ValueError` before memory is allocated. Raise a limit for a run with the environment variable
(e.g. `LENET_BLOCKS_MAX_PARAMS=500000000`), or pass the argument where a function takes one.

Example:
>>> max_params({})
100000000
>>> max_params({"LENET_BLOCKS_MAX_PARAMS": "5000"})
5000
"""

from __future__ import annotations

import os
from collections.abc import Mapping

MAX_PARAMS = 100_000_000
MAX_PARAMS_ENV_VAR = "LENET_BLOCKS_MAX_PARAMS"


def max_params(environ: Mapping[str, str] | None = None) -> int:
    """The parameter budget of one model or layer: `$LENET_BLOCKS_MAX_PARAMS`, else `MAX_PARAMS`.

    Raises:
        ValueError: the environment variable is not a positive integer.
    """
    text = (os.environ if environ is None else environ).get(MAX_PARAMS_ENV_VAR)
    if text is None:
        return MAX_PARAMS
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(
            f"`{MAX_PARAMS_ENV_VAR}` must be a positive integer. "
            f"Received: {MAX_PARAMS_ENV_VAR}={text!r}"
        )
    return int(text)


def check_params(what: str, count: int, limit: int | None = None) -> None:
    """Raises `ValueError` if `count` parameters exceed the budget (`limit`, else `max_params()`).

    Example:
    >>> check_params("layer 'head'", 10**12, limit=1000)
    Traceback (most recent call last):
    ...
    ValueError: layer 'head' would have 1,000,000,000,000 parameters, over the limit of 1,000 ...
    """
    limit = max_params() if limit is None else limit
    if count > limit:
        raise ValueError(
            f"{what} would have {count:,} parameters, over the limit of {limit:,} "
            f"(raise it with {MAX_PARAMS_ENV_VAR})."
        )
