"""The errors of an export: a converter failed, the artifact did not verify, a package is missing.

Example:
>>> issubclass(ExportVerificationError, ExportError), issubclass(ExportDependencyError, ImportError)
(True, True)
"""

from __future__ import annotations


class ExportError(RuntimeError):
    """An export could not be produced (a converter failed on the model)."""


class ExportVerificationError(ExportError):
    """The reloaded artifact's outputs do not match the Keras model's."""


class ExportDependencyError(ExportError, ImportError):
    """A package the format needs (tf2onnx, onnxruntime for ONNX) is not installed."""
