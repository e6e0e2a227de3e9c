"""The report of an export as the few lines the CLI prints.

Example:
>>> describe_kind("tflite", "int8")
'tflite (int8)'
"""

from __future__ import annotations


def describe_kind(format: str, quantize: str | None) -> str:
    """The format as messages name it: `"tflite"`, `"tflite (int8)"`, ...

    Args:
        format: the export format.
        quantize: `None` or the quantization (`"int8"`).

    Example:
    >>> describe_kind("onnx", None)
    'onnx'
    """
    return format + (f" ({quantize})" if quantize else "")


def format_report(report: dict) -> str:
    """The report of `export_model` as a few human-readable lines (what the CLI prints).

    Args:
        report: the dict `export_model` returns.

    Example:
    >>> print(format_report({"format": "onnx", "quantize": None, "path": "m.onnx",
    ...     "size_bytes": 180567, "verification_samples": 64, "max_abs_diff": 1.2e-7,
    ...     "allowed_abs_diff": 1.02e-5, "keras_float32_error": 1e-7, "keras_accuracy": None,
    ...     "exported_accuracy": None, "accuracy_drop": None, "prediction_agreement": 1.0}))
    exported onnx to m.onnx (180,567 bytes)
    verified on 64 images: max abs diff 1.2e-07 (allowed 1e-05), same top class on 100.00%
    Keras model's own float32 error (vs. float64): 1e-07
    """
    kind = describe_kind(report["format"], report.get("quantize"))
    lines = [f"exported {kind} to {report['path']} ({report['size_bytes']:,} bytes)"]
    parity = f"max abs diff {report['max_abs_diff']:.2g}"
    if report.get("allowed_abs_diff") is not None:
        parity += f" (allowed {report['allowed_abs_diff']:.2g})"
    lines.append(
        f"verified on {report['verification_samples']} images: {parity}, same top class on "
        f"{report['prediction_agreement']:.2%}"
    )
    if report.get("keras_float32_error") is not None:
        lines.append(
            f"Keras model's own float32 error (vs. float64): {report['keras_float32_error']:.2g}"
        )
    if report.get("keras_accuracy") is not None:
        line = (
            f"accuracy: keras {report['keras_accuracy']:.4f}, exported "
            f"{report['exported_accuracy']:.4f} (drop {100 * report['accuracy_drop']:.2f} points"
        )
        if report.get("max_accuracy_drop") is not None:
            line += f", allowed {100 * report['max_accuracy_drop']:.2f}"
        lines.append(line + ")")
    return "\n".join(lines)
