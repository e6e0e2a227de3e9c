"""End-to-end tests of the `lenet-blocks` command line, in real subprocesses."""

import json
import subprocess
import sys

import numpy as np
import pytest
from idx_helpers import make_dataset, write_dataset
from PIL import Image


def lenet_blocks(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "lenet_blocks", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One CLI training run on a tiny synthetic set, shared by the tests below."""
    root = tmp_path_factory.mktemp("cli")
    data_dir = write_dataset(root / "data", make_dataset(num_train=100, num_test=20, seed=1))
    result = lenet_blocks(
        "train", "--data-dir", data_dir, "--output", root / "run", "--epochs", "2",
        "--tensorboard", root / "logs", "--verbose", "2",
    )  # fmt: skip
    return root, data_dir, result


def test_train_prints_summary_walk_progress_and_result(trained_run):
    _, _, result = trained_run
    assert result.returncode == 0, result.stderr
    for expected in ("Total params: 44,426", "block1/conv", "(1, 24, 24, 6)", "Epoch 2/2"):
        assert expected in result.stdout
    assert "test accuracy" in result.stdout


def test_train_writes_every_output_file(trained_run):
    root, _, _ = trained_run
    names = sorted(path.name for path in (root / "run").iterdir())
    assert names == ["confusion_matrix.png", "metrics.json", "model.keras", "training_curves.png"]
    for png in ("confusion_matrix.png", "training_curves.png"):
        assert (root / "run" / png).read_bytes().startswith(b"\x89PNG")
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert metrics["settings"]["batch_size"] == 32 and metrics["settings"]["optimizer"] == "sgd"
    assert list((root / "logs").rglob("events.out.tfevents.*"))


def test_evaluate_reports_same_accuracy_as_training_run(trained_run, tmp_path):
    root, data_dir, _ = trained_run
    result = lenet_blocks(
        "evaluate", root / "run" / "model.keras", "--data-dir", data_dir,
        "--output", tmp_path / "eval.json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert evaluation["accuracy"] == metrics["test_accuracy"]
    assert "Ankle boot" in result.stdout


def test_predict_png_and_npy_top_k(trained_run, tmp_path):
    root, _, _ = trained_run
    Image.fromarray(np.full((40, 30), 200, "uint8")).save(tmp_path / "shirt.png")
    np.save(tmp_path / "batch.npy", np.zeros((2, 28, 28), "uint8"))
    result = lenet_blocks(
        "predict", root / "run" / "model.keras", tmp_path / "shirt.png", tmp_path / "batch.npy",
        "--top-k", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()[-3:]
    assert lines[0].startswith(f"{tmp_path / 'shirt.png'}[0]: ")
    assert lines[2].startswith(f"{tmp_path / 'batch.npy'}[1]: ")
    assert all(line.count("(") == 2 for line in lines)


def test_missing_data_gives_one_clear_error(tmp_path):
    result = lenet_blocks("train", "--data-dir", tmp_path / "nowhere", "--output", tmp_path / "r")
    assert result.returncode == 2
    assert "lenet-blocks train: error:" in result.stderr
    assert "apt-get install dataset-fashion-mnist" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_model_file_gives_clear_error(tmp_path):
    (tmp_path / "bad.keras").write_text("nope")
    result = lenet_blocks("predict", tmp_path / "bad.keras", tmp_path / "x.npy")
    assert result.returncode == 2
    assert "not a `.keras` model file" in result.stderr and "Traceback" not in result.stderr
