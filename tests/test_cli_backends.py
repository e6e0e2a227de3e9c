"""`lenet-blocks --backend`: every command on the Keras backend of this test run, and the
one-line errors for a backend that is not installed and for what only TensorFlow runs.

Backend-agnostic (`tests/conftest.py`): CI runs this module on TensorFlow (`.venv`), JAX
(`.venv-jax`) and PyTorch (`.venv-torch`); each run drives the CLI in-process on its own
backend with a tiny synthetic data set, and one subprocess checks that the flag is applied
before Keras is imported.
"""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from idx_helpers import make_dataset, write_dataset

from lenet_blocks import backends, cli
from lenet_blocks.export import BACKEND_FORMATS

BACKEND = keras.backend.backend()
OTHERS = [name for name in backends.BACKENDS if name != BACKEND]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`lenet-blocks --backend BACKEND train` on 48 synthetic images, one epoch: its folder."""
    root = tmp_path_factory.mktemp("cli_backends")
    data_dir = write_dataset(root / "data", make_dataset(num_train=48, num_test=16))
    output = root / "run"
    argv = ["--backend", BACKEND, "train", "--data-dir", data_dir, "--output", output]
    argv += ["--epochs", "1", "--batch-size", "16", "--verbose", "0"]
    assert cli.main([str(arg) for arg in argv]) == 0
    return root


def one_line_error(capsys, command: str) -> str:
    """The error `main` printed: exactly one line, naming the command."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"lenet-blocks {command}: error: ")
    return lines[0]


def test_train_writes_a_model_of_this_backend(trained):
    assert (trained / "run" / "model.keras").is_file()
    assert '"keras_backend": "' + BACKEND + '"' in (trained / "run" / "metrics.json").read_text()


def test_evaluate_and_predict_after_the_command_name(trained, capsys):
    model = str(trained / "run" / "model.keras")
    data_dir = str(trained / "data")
    assert cli.main(["evaluate", model, "--data-dir", data_dir, "--backend", BACKEND]) == 0
    assert "test accuracy" in capsys.readouterr().out
    image = trained / "image.npy"
    np.save(image, np.zeros((28, 28), "uint8"))
    assert cli.main(["predict", model, str(image), "--top-k", "2", "--backend", BACKEND]) == 0
    assert str(image) in capsys.readouterr().out


def test_presets_lists_every_preset(capsys):
    assert cli.main(["--backend", BACKEND, "presets"]) == 0
    assert "notebook:" in capsys.readouterr().out


def test_tune_runs_one_trial(trained, capsys):
    argv = ["--backend", BACKEND, "tune", "--data-dir", str(trained / "data")]
    argv += ["--output", str(trained / "tune"), "--max-trials", "1", "--epochs", "1"]
    assert cli.main([*argv, "--verbose", "0"]) == 0
    assert (trained / "tune" / "leaderboard.csv").is_file()


def test_export_works_where_the_backend_exports_else_says_why_in_one_line(trained, capsys):
    argv = ["--backend", BACKEND, "export", str(trained / "run" / "model.keras")]
    argv += ["--format", "tflite", "--output", str(trained / "lenet.tflite")]
    status = cli.main([*argv, "--data-dir", str(trained / "data")])
    if "tflite" in BACKEND_FORMATS[BACKEND]:
        assert status == 0 and (trained / "lenet.tflite").is_file()
    else:
        assert status == cli.EXIT_USAGE and not (trained / "lenet.tflite").exists()
        assert "cannot be exported on the" in one_line_error(capsys, "export")


@pytest.mark.parametrize("backend", OTHERS)
def test_a_backend_that_is_not_installed_is_one_line_with_the_install_command(
    backend, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, backend, None)  # what an uninstalled module looks like
    assert cli.main(["--backend", backend, "presets"]) == cli.EXIT_USAGE
    line = one_line_error(capsys, "presets")
    assert f"The {backend} backend needs {backend}, which is not installed" in line
    assert f"pip install {backend}" in line


def test_an_unknown_keras_backend_variable_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv(backends.BACKEND_ENV_VAR, "theano")
    assert cli.main(["presets"]) == cli.EXIT_USAGE
    assert "Received: KERAS_BACKEND='theano'" in one_line_error(capsys, "presets")


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["train", "--distribution", "mirrored"], "--distribution mirrored"),
        (["train", "--distribution", "multi-worker"], "--distribution multi-worker"),
        (["tune", "--workers", "2"], "--workers 2"),
    ],
)
def test_what_only_tensorflow_runs_is_refused_in_one_line_elsewhere(argv, flag, capsys):
    if BACKEND == "tensorflow":
        with pytest.raises(ValueError, match=f"Received: {flag} with --backend jax"):
            backends.check_tensorflow_only(
                argv[0], vars(cli.build_parser().parse_args(argv)), "jax"
            )
        return
    assert cli.main(["--backend", BACKEND, *argv]) == cli.EXIT_USAGE
    line = one_line_error(capsys, argv[0])
    assert "runs on the TensorFlow backend only" in line and flag in line


def test_the_flag_wins_over_the_variable_and_is_set_before_keras_is_imported():
    other = OTHERS[0]  # never imported: the flag wins before anything looks at it
    script = (
        "from lenet_blocks import cli; import sys; status = cli.main(sys.argv[1:]); "
        "import keras; print(status, keras.backend.backend())"
    )
    env = {**os.environ, backends.BACKEND_ENV_VAR: other}
    process = subprocess.run(
        [sys.executable, "-c", script, "presets", "--backend", BACKEND],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.strip().splitlines()[-1] == f"0 {BACKEND}"
