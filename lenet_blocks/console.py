"""What the command line shows: its own lines, not TensorFlow's native log lines.

TensorFlow and absl write C++ log lines straight to file descriptor 2 when they load
(`cudart_stub.cc:31] Could not find cuda drivers ...`, `cuda_platform.cc:52] failed call to
cuInit ...`), some of them before `TF_CPP_MIN_LOG_LEVEL` is read, so that variable alone does not
silence them. `native_logs_filtered()` routes descriptor 2 through a pipe for the duration of a
command and drops those lines; everything else (Python warnings, errors, progress on stderr)
passes through unchanged. `lenet-blocks --debug` turns the filter off.

Example:
>>> is_native_log_line(b"I0000 00:00:1796114329.081140    5807 cudart_stub.cc:31] No GPU.")
True
>>> is_native_log_line(b"lenet-blocks train: error: `epochs` must be a positive int.")
False
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

__all__ = ["is_native_log_line", "native_logs_filtered", "one_line"]

_NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] "  # absl / TF C++ log format
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|WARNING:absl:"  # absl's Python logging handler
    rb"|To enable the following instructions: .* rebuild TensorFlow)"
)


def is_native_log_line(line: bytes) -> bool:
    """Whether `line` is one of TensorFlow's or absl's own log lines."""
    return _NATIVE_LOG_LINE.match(line) is not None


@contextlib.contextmanager
def native_logs_filtered() -> Iterator[None]:
    """Drops TensorFlow's and absl's log lines from file descriptor 2 inside the block.

    Child processes started inside the block inherit the filtered descriptor. The level of
    TensorFlow's C++ logging is also lowered (`TF_CPP_MIN_LOG_LEVEL=2`) unless already set.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    saved = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)

    source, target = os.fdopen(read_end, "rb"), os.fdopen(os.dup(saved), "wb", 0)

    def pump() -> None:
        with source, target:
            for line in source:
                if not is_native_log_line(line):
                    target.write(line)

    thread = threading.Thread(target=pump, name="native-log-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end held here, so `pump` ends
        os.close(saved)
        thread.join(timeout=5)


def one_line(error: BaseException) -> str:
    """The message of `error` on one line (whitespace runs collapsed).

    Example:
    >>> one_line(ValueError("`epochs` must be\\n  a positive int."))
    '`epochs` must be a positive int.'
    """
    return " ".join(str(error).split()) or type(error).__name__
