"""End-to-end tests of `lenet-blocks tune`: every tuner kind, budget, kill and resume (in process
where a test checks only how an error is reported)."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import run_cli
from idx_helpers import make_dataset, write_dataset

from lenet_blocks import cli

KILL_IN_SECOND_TRIAL = """
import os, signal, sys
import keras
from lenet_blocks.search import run_search

class KillInSecondTrial(keras.callbacks.Callback):
    trainings = 0
    def on_train_begin(self, logs=None):
        KillInSecondTrial.trainings += 1
    def on_train_batch_end(self, batch, logs=None):
        if KillInSecondTrial.trainings == 2:
            os.kill(os.getpid(), signal.SIGKILL)

run_search(sys.argv[1], data_dir=sys.argv[2], max_trials=3, epochs=1, verbose=0,
           callbacks=[KillInSecondTrial()])
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("search-data")
    return write_dataset(root, make_dataset(num_train=96, num_test=24, seed=2))


def tune(*args):
    return run_cli("tune", *args)


def read_leaderboard(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.parametrize("kind", ["random", "bayesian", "hyperband"])
def test_each_tuner_kind_runs_end_to_end_and_writes_results(kind, data_dir, tmp_path):
    result = tune(
        "--tuner", kind, "--data-dir", data_dir, "--output", tmp_path, "--max-trials", "2",
        "--epochs", "2" if kind == "hyperband" else "1", "--fixed", "batch_size=32",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rank  trial  val_acc" in result.stdout and "Best trial" in result.stdout
    names = {path.name for path in tmp_path.iterdir()}
    assert {"best_model.keras", "best_hyperparameters.json", "leaderboard.csv", "search.png"} <= (
        names
    )
    best = json.loads((tmp_path / "best_hyperparameters.json").read_text())
    assert best["search"]["kind"] == kind and best["hyperparameters"]["batch_size"] == 32
    assert 0.0 <= best["test_accuracy"] <= 1.0
    rows = read_leaderboard(tmp_path / "leaderboard.csv")
    assert rows[0]["rank"] == "1" and rows[0]["trial_id"] == best["trial_id"]


def test_a_budget_no_configuration_fits_starts_no_trial(data_dir, tmp_path, capsys):
    from lenet_blocks.tuning import HYPERPARAMETERS

    held = {name: row.default for name, row in HYPERPARAMETERS.items() if name != "units_1"}
    fixed = [arg for name, v in held.items() for arg in ("--fixed", f"{name}={json.dumps(v)}")]
    code = cli.main(
        [
            *("tune", "--data-dir", str(data_dir), "--output", str(tmp_path)),
            *("--max-trials", "2", "--epochs", "1", "--max-params", "1000", *fixed),
        ]
    )  # in process: the error is the point
    stderr = capsys.readouterr().err
    assert code == cli.EXIT_FAILURE, stderr
    assert "started: no configuration drawn" in stderr
    assert "max_params=1,000" in stderr and "Traceback" not in stderr
    assert not list((tmp_path / "tuner").glob("*/trial_*"))


def test_killed_search_resumes_without_losing_or_repeating_trials(data_dir, tmp_path):
    killed = subprocess.run(
        [sys.executable, "-c", KILL_IN_SECOND_TRIAL, str(tmp_path), str(data_dir)],
        capture_output=True,
        timeout=600,
    )
    assert killed.returncode == -9
    project = tmp_path / "tuner" / "lenet"
    completed_before = {
        path.parent.name: path.read_text()
        for path in project.glob("trial_*/trial.json")
        if json.loads(path.read_text())["status"] == "COMPLETED"
    }
    assert len(completed_before) == 1

    resumed = tune("--data-dir", data_dir, "--output", tmp_path, "--max-trials", "3",
                   "--epochs", "1", "--verbose", "0")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = read_leaderboard(tmp_path / "leaderboard.csv")
    assert len(rows) == 3 and all(row["status"] == "COMPLETED" for row in rows)
    for trial_dir, content in completed_before.items():
        assert (project / trial_dir / "trial.json").read_text() == content


def test_bad_fixed_value_is_a_clear_error(data_dir, tmp_path, capsys):
    argv = ["tune", "--data-dir", str(data_dir), "--output", str(tmp_path), "--fixed", "activation"]
    assert cli.main(argv) == cli.EXIT_USAGE
    stderr = capsys.readouterr().err
    assert "`--fixed` must be NAME=VALUE" in stderr and "Traceback" not in stderr


def test_a_second_search_on_the_same_folder_is_refused(tmp_path, data_dir):
    from lenet_blocks.locking import DirectoryLockedError, lock_directory
    from lenet_blocks.tuning import run_search

    with lock_directory(tmp_path, "search"), pytest.raises(DirectoryLockedError, match="PID"):
        run_search(tmp_path, data_dir=data_dir, max_trials=1, epochs=1, verbose=0)


@pytest.mark.parametrize(
    "names", [["cat"], ["cat", "cat"], ["cat", ""], ["cat", 2], "ab"], ids=repr
)
def test_hyperlenet_class_names_are_checked_as_a_data_sets_are(names):
    from lenet_blocks.tuning import HyperLeNet

    with pytest.raises(ValueError, match=r"^`class_names` must name each of the 2 classes with"):
        HyperLeNet(classes=2, class_names=names)
    assert HyperLeNet(classes=2, class_names=["cat", "dog"]).class_names == ("cat", "dog")


def test_on_jax_the_space_holds_the_weight_average_off_and_refuses_it_fixed(monkeypatch):
    import keras
    import keras_tuner

    from lenet_blocks.tuning import HyperLeNet

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    hp = keras_tuner.HyperParameters()
    HyperLeNet(fixed={"batch_size": 64}).build(hp)
    assert hp.get("use_ema") is False
    assert [type(row).__name__ for row in hp.space if row.name == "use_ema"] == ["Fixed"]
    with pytest.raises(ValueError, match=r"^`use_ema` needs the TensorFlow .* backend=jax$"):
        HyperLeNet(fixed={"use_ema": True})


def write_mixed_size_folder(root, count: int = 10):
    """Two class folders of grayscale PNGs, half of them 28x28 and half 32x32."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, kind in enumerate(("dark", "light")):
        (root / kind).mkdir(parents=True)
        for index in range(count):
            size = 28 if index % 2 else 32
            pixels = rng.integers(0, 100, size=(size, size), dtype=np.uint8) + 150 * label
            Image.fromarray(pixels, "L").save(root / kind / f"{index}.png")
    return root


def test_tune_reads_an_image_folder_of_mixed_sizes_at_the_image_size_given(tmp_path, capsys):
    from lenet_blocks import cli, load_model
    from lenet_blocks.inference import model_class_names

    folder = write_mixed_size_folder(tmp_path / "images")
    argv = ["tune", "--dataset", str(folder), "--output", str(tmp_path / "search")]
    argv += ["--max-trials", "1", "--epochs", "1", "--fixed", "batch_size=8", "--verbose", "0"]
    assert cli.main(argv) == cli.EXIT_USAGE  # the sizes differ: refused without --image-size
    assert "give `image_size` (--image-size HxW)" in capsys.readouterr().err

    assert cli.main([*argv, "--image-size", "28x28", "--color-mode", "rgb"]) == 0
    model = load_model(tmp_path / "search" / "best_model.keras")
    assert model.input_shape == (None, 28, 28, 3)
    assert model_class_names(model) == ("dark", "light")
