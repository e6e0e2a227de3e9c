"""End-to-end tests of the `lenet-blocks` command line, in real subprocesses (in process where a
test checks only how an error is reported)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import run_cli as lenet_blocks
from idx_helpers import make_dataset, write_dataset
from PIL import Image

from lenet_blocks import cli
from lenet_blocks.console import is_native_log_line

HEAVY_MODULES = ("tensorflow", "keras", "keras_tuner", "jax", "torch")
CHECK_IMPORTS = """
import sys
from lenet_blocks.cli import main
for argv in (["--help"], ["--version"], ["train", "--help"], ["train", "--epochs", "x"]):
    try:
        main(argv)
    except SystemExit:
        pass
print("HEAVY", sorted(name for name in sys.modules if name.split(".")[0] in %r))
"""


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


def test_bad_model_file_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    (tmp_path / "bad.keras").write_text("nope")
    argv = ["predict", str(tmp_path / "bad.keras"), str(tmp_path / "x.npy")]
    assert cli.main(argv) == cli.EXIT_USAGE
    stderr = capsys.readouterr().err
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "not a `.keras` model file" in stderr and "Traceback" not in stderr
    with pytest.raises(ValueError, match=r"not a `\.keras` model file"):
        cli.main(["--debug", *argv])  # raised on: Python prints the traceback, exit status 1


def test_help_version_and_usage_errors_import_no_tensorflow():
    result = subprocess.run(
        [sys.executable, "-c", CHECK_IMPORTS % (HEAVY_MODULES,)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: lenet-blocks" in result.stdout and "lenet_blocks 0." in result.stdout
    assert "invalid int value: 'x'" in result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_evaluate_stderr_has_no_tensorflow_log_lines(trained_run):
    root, data_dir, _ = trained_run
    result = lenet_blocks("evaluate", root / "run" / "model.keras", "--data-dir", data_dir)
    assert result.returncode == 0, result.stderr
    native = [line for line in result.stderr.splitlines() if is_native_log_line(line.encode())]
    assert native == []
    assert "cuInit" not in result.stderr and "cuda drivers" not in result.stderr


@pytest.mark.parametrize(
    ("command", "resumes"), [("train", True), ("tune", True), ("predict", False)]
)
def test_interrupt_message_fits_the_command(monkeypatch, capsys, command, resumes):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, command, interrupted)
    argv = {"train": ["train"], "tune": ["tune"], "predict": ["predict", "m.keras", "x.npy"]}
    assert cli.main(argv[command]) == cli.EXIT_INTERRUPTED
    message = capsys.readouterr().err
    assert message.startswith(f"lenet-blocks {command}: interrupted")
    assert ("resumes" in message) is resumes


def test_unexpected_error_is_one_line_naming_its_type(monkeypatch, capsys):
    def broken(args):
        raise KeyError("no such thing\nsecond line")

    monkeypatch.setitem(cli.COMMANDS, "predict", broken)
    assert cli.main(["predict", "m.keras", "x.npy"]) == cli.EXIT_FAILURE
    message = capsys.readouterr().err
    assert len(message.strip().splitlines()) == 1
    assert "KeyError" in message and "--debug" in message
