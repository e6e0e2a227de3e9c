"""Exports the shipped `notebook` and `lenet5_1998` models to every format of the Keras backend.

Each artifact is verified on the Fashion-MNIST test set (`export_model`'s checks); the reports
go to `docs/results/export_BACKEND.json`, and the table of every backend's results found there
to `docs/export_figures.md` (docs/deploy.md and docs/keras_hub.md link it). Run it once per
backend:

    .venv/bin/python scripts/export_figures.py
    KERAS_BACKEND=jax .venv-jax/bin/python scripts/export_figures.py
    KERAS_BACKEND=torch .venv-torch/bin/python scripts/export_figures.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import keras

from lenet_blocks import build_lenet
from lenet_blocks.artifacts import write_json, write_with
from lenet_blocks.datasets import load_fashion_mnist
from lenet_blocks.export import BACKEND_FORMATS, ExportError, export_model

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
TABLE = ROOT / "docs" / "export_figures.md"
PRESETS = ("notebook", "lenet5_1998")
NAMES = {"tflite": "lenet.tflite", "onnx": "lenet.onnx"}


def main() -> None:
    backend = keras.backend.backend()
    (x_train, _), test = load_fashion_mnist()
    kinds = [(format, None, False) for format in BACKEND_FORMATS[backend]]
    if backend == "tensorflow":  # int8 converts a SavedModel with TFLite's converter
        kinds += [("tflite", "int8", False), ("tflite", "int8", True)]
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for preset in PRESETS:
            model = build_lenet(preset, weights="fashion_mnist")
            for format, quantize, full_integer in kinds:
                name = NAMES.get(format, format)
                prefix = ("full_" if full_integer else "") + ("int8_" if quantize else "")
                path = Path(workdir) / preset / f"{prefix}{name}"
                int8 = {"quantize": quantize, "calibration_images": x_train} if quantize else {}
                if full_integer:
                    int8["full_integer"] = True
                try:
                    report = export_model(model, path, format, evaluation_data=test, **int8)
                except ExportError as error:  # e.g. an int8 model over its accuracy drop
                    message = " ".join(str(error).replace(str(path), "OUTPUT").split())
                    report = {"format": format, "error": message[:300].replace("|", "/")}
                kind = f"{quantize}{', full integer' if full_integer else ''}" if quantize else None
                report.update(preset=preset, backend=backend, quantize=kind)
                report.pop("path", None)
                rows.append(report)
                print(preset, format, quantize, report.get("max_abs_diff", report.get("error")))
    write_json(RESULTS / f"export_{backend}.json", rows)
    write_table()


def write_table() -> None:
    lines = [
        "# Export figures",
        "",
        "Written by `scripts/export_figures.py` (one run per backend); each artifact verified",
        "on the 10,000 Fashion-MNIST test images against the Keras model with the shipped weights.",
        "",
        "| backend | preset | format | size (bytes) | max abs diff | allowed | Keras accuracy "
        "| exported accuracy | same top class |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    # int8 is checked by accuracy drop (at most 2 points), not by output difference.
    for file in sorted(RESULTS.glob("export_*.json")):
        for row in json.loads(file.read_text()):
            kind = row["format"] + (f" ({row['quantize']})" if row.get("quantize") else "")
            head = f"| {row['backend']} | {row['preset']} | {kind} |"
            if "error" in row:
                lines.append(f"{head} fails: {row['error']} | | | | | |")
                continue
            allowed = row["allowed_abs_diff"]
            allowed = "by accuracy drop" if allowed is None else f"{allowed:.2g}"
            lines.append(
                f"{head} {row['size_bytes']:,} | {row['max_abs_diff']:.2g} | "
                f"{allowed} | {row['keras_accuracy']:.4f} | "
                f"{row['exported_accuracy']:.4f} | {row['prediction_agreement']:.2%} |"
            )
    write_with(TABLE, lambda path: path.write_text("\n".join(lines) + "\n"))


if __name__ == "__main__":
    main()
