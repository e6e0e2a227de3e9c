"""Rebuilds the shipped Fashion-MNIST weights of every preset, with their manifest.

For each preset it runs the package's own training command (`lenet-blocks train --preset P
--seed 0 --output runs/pretrained/P`: the preset's recipe on the full training set, 10% held
out for validation), saves the trained weights of `build_lenet(P)` to
`lenet_blocks/weights/P.fashion_mnist.weights.h5`, copies the run record (`metrics.json`) to
`lenet_blocks/weights/records/P.json` and writes `lenet_blocks/weights/manifest.json` (SHA256,
size, command, seed, date, parameters, test accuracy, training time, versions): nothing in it
is typed by hand. A finished run in `runs/pretrained/P` is reused, not retrained.

Usage (from the repository root, with the package installed):
    python scripts/build_pretrained_weights.py [PRESET ...]   # default: every preset
"""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras

import lenet_blocks as lb

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = ROOT / "lenet_blocks" / "weights"
RUNS_DIR = Path("runs") / "pretrained"
DATASET = "fashion_mnist"
SEED = 0
TABLE_START, TABLE_END = "<!-- weights table: start -->", "<!-- weights table: end -->"


def train_command(preset: str) -> list[str]:
    return [
        "lenet-blocks", "train", "--preset", preset, "--seed", str(SEED),
        "--output", str(RUNS_DIR / preset),
    ]  # fmt: skip


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_one(preset: str) -> dict:
    command = train_command(preset)
    subprocess.run([sys.executable, "-m", "lenet_blocks", *command[1:]], check=True, cwd=ROOT)
    run = ROOT / RUNS_DIR / preset
    trained = lb.load_model(run / "model.keras", compile=False)
    model = lb.build_lenet(preset)
    for layer in model.layers:  # by name: a trained model may have augmentation layers first
        if layer.weights:
            layer.set_weights(trained.get_layer(layer.name).get_weights())
    weights = WEIGHTS_DIR / f"{preset}.{DATASET}.weights.h5"
    model.save_weights(weights)
    record = WEIGHTS_DIR / "records" / f"{preset}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run / "metrics.json", record)
    metrics = json.loads(record.read_text())
    return {
        "preset": preset,
        "dataset": DATASET,
        "file": weights.name,
        "sha256": sha256(weights),
        "bytes": weights.stat().st_size,
        "command": " ".join(command),
        "seed": SEED,
        "date": datetime.datetime.fromtimestamp(
            (run / "metrics.json").stat().st_mtime, datetime.timezone.utc
        ).strftime("%Y-%m-%d"),
        "parameters": model.count_params(),
        "test_accuracy": metrics["test_accuracy"],
        "test_samples": metrics["test_samples"],
        "train_seconds": metrics["train_seconds"],
        "epochs": metrics["epochs"],
        "record": f"records/{record.name}",
        "versions": {
            "lenet_blocks": lb.__version__,
            "keras": keras.__version__,
            "keras_backend": keras.backend.backend(),
            "tensorflow": metrics["versions"].get("tensorflow"),
        },
    }


def main(argv: list[str]) -> int:
    presets = argv or lb.list_presets()
    manifest_path = WEIGHTS_DIR / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    for preset in presets:
        print(f"build_pretrained_weights: {preset}", flush=True)
        manifest[preset] = {DATASET: build_one(preset)}
        ordered = {name: manifest[name] for name in lb.list_presets() if name in manifest}
        manifest_path.write_text(json.dumps(ordered, indent=2) + "\n")
    write_docs_table()
    return 0


def write_docs_table() -> None:
    """Replaces the table between the markers of docs/pretrained.md with the manifest's."""
    from lenet_blocks import pretrained

    pretrained._manifest.cache_clear()
    docs = ROOT / "docs" / "pretrained.md"
    text = docs.read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    docs.write_text(f"{text[:start]}\n{pretrained.weights_table()}\n{text[end:]}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
