"""Keras-free report helpers shared by the runs: compact JSON, atomic text files, Markdown
tables."""

from __future__ import annotations

import json
from pathlib import Path

from lenet_blocks.artifacts import write_with


def dumps(value, inline_depth: int, depth: int = 0) -> str:
    """JSON with one line per item down to `inline_depth` levels, each deeper value inline.

    Example:
    >>> print(dumps({"figures": {"a": {"median": 1.0}}}, inline_depth=1))
    {
      "figures": {"a": {"median": 1.0}}
    }
    """
    if depth >= inline_depth or not isinstance(value, dict | list) or not value:
        return json.dumps(value)
    items = value.items() if isinstance(value, dict) else ((None, item) for item in value)
    pad = "  " * (depth + 1)
    body = ",\n".join(
        pad + ("" if key is None else f"{json.dumps(key)}: ") + dumps(item, inline_depth, depth + 1)
        for key, item in items
    )
    brackets = "{}" if isinstance(value, dict) else "[]"
    return f"{brackets[0]}\n{body}\n{'  ' * depth}{brackets[1]}"


def write_text(path: Path, text: str) -> Path:
    """Writes `text` atomically."""
    return write_with(path, lambda tmp: tmp.write_text(text))


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]
