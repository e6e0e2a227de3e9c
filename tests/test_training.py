"""Tests of training runs: artifacts, resume after a real kill, non-finite loss, settings."""

import json
import os
import subprocess
import sys

import keras
import pytest
from idx_helpers import make_dataset, write_dataset

import lenet_blocks as lb
from lenet_blocks import cli
from lenet_blocks.locking import DirectoryLockedError, lock_directory
from lenet_blocks.settings import RunSettings
from lenet_blocks.training import NonFiniteLossError, train

KILL_AFTER_EPOCH = """
import os, signal, sys
import keras
from lenet_blocks.training import train

class KillAfterEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)

train(sys.argv[1], data_dir=sys.argv[2], epochs=4, verbose=0, callbacks=[KillAfterEpoch()])
"""


WAIT_AFTER_FIRST_EPOCH = """
import sys
import keras
from lenet_blocks.training import train

class WaitAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            print("epoch 1 done", flush=True)
            sys.stdin.readline()

train(sys.argv[1], data_dir=sys.argv[2], epochs=2, verbose=0, callbacks=[WaitAfterFirstEpoch()])
"""


@pytest.fixture
def tiny_data():
    return make_dataset(num_train=120, num_test=30, seed=3)


@pytest.fixture
def tiny_data_dir(tmp_path, tiny_data):
    return write_dataset(tmp_path / "data", tiny_data)


def test_run_writes_every_artifact(tmp_path, tiny_data):
    metrics = train(tmp_path / "run", data=tiny_data, epochs=2, verbose=0)
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["confusion_matrix.png", "metrics.json", "model.keras", "training_curves.png"]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == json.loads(
        json.dumps(metrics)
    )
    assert len(metrics["history"]["val_accuracy"]) == metrics["epochs"] == 2
    assert metrics["test_samples"] == 30 and metrics["train_samples"] == 108
    assert sum(map(sum, metrics["confusion_matrix"])) == 30
    model = lb.load_model(tmp_path / "run" / "model.keras")
    assert model.count_params() == metrics["parameters"] == 44426


def test_metrics_record_settings_timing_and_versions(tmp_path, tiny_data):
    metrics = train(tmp_path / "run", data=tiny_data, epochs=1, seed=5, verbose=0)
    assert metrics["settings"]["seed"] == 5 and metrics["settings"]["learning_rate"] == 0.9
    assert metrics["train_samples_per_second"] > 0
    assert {"keras", "tensorflow", "python", "lenet_blocks"} <= set(metrics["versions"])


def test_finished_run_with_same_settings_is_returned_not_retrained(tmp_path, tiny_data):
    first = train(tmp_path / "run", data=tiny_data, epochs=1, verbose=0)
    model_file = tmp_path / "run" / "model.keras"
    written = model_file.stat().st_mtime_ns
    assert train(tmp_path / "run", data=tiny_data, epochs=1, verbose=0) == json.loads(
        json.dumps(first)
    )
    assert model_file.stat().st_mtime_ns == written


def test_finished_run_with_other_settings_needs_overwrite(tmp_path, tiny_data):
    train(tmp_path / "run", data=tiny_data, epochs=1, verbose=0)
    with pytest.raises(FileExistsError, match=r"other settings.*overwrite"):
        train(tmp_path / "run", data=tiny_data, epochs=2, verbose=0)
    assert train(tmp_path / "run", data=tiny_data, epochs=2, verbose=0, overwrite=True)


def test_same_seed_gives_same_test_loss(tmp_path, tiny_data):
    first = train(tmp_path / "a", data=tiny_data, epochs=1, seed=1, verbose=0)
    second = train(tmp_path / "b", data=tiny_data, epochs=1, seed=1, verbose=0)
    assert first["test_loss"] == second["test_loss"]


def test_killed_run_resumes_from_last_completed_epoch(tmp_path, tiny_data_dir):
    run = tmp_path / "run"
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_EPOCH, str(run), str(tiny_data_dir), "2"],
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -9
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["epochs_done"] == 2
    assert not (run / "metrics.json").exists() and not (run / "model.keras").exists()

    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "lenet_blocks",
            "train",
            "--output",
            str(run),
            "--data-dir",
            str(tiny_data_dir),
            "--epochs",
            "4",
            "--verbose",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "after epoch 2" in resumed.stdout
    assert "Epoch 3/4" in resumed.stdout and "Epoch 1/4" not in resumed.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 4 and len(metrics["history"]["loss"]) == 4
    assert metrics["history"]["loss"][:2] == state["history"]["loss"]
    assert not (run / "checkpoint").exists()


def test_second_run_on_a_directory_in_use_is_refused_with_the_holders_pid(
    tmp_path, tiny_data_dir, capsys
):
    run = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-c", WAIT_AFTER_FIRST_EPOCH, str(run), str(tiny_data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout.readline() == "epoch 1 done\n"
        second = cli.main(
            [
                *("train", "--output", str(run), "--data-dir", str(tiny_data_dir)),
                *("--epochs", "2", "--learning-rate", "0.1"),
            ]
        )  # in this process: another one than the first run's
        first.stdin.write("\n")
        first.stdin.close()
        assert first.wait(timeout=300) == 0
    finally:
        first.kill()
    assert second == cli.EXIT_USAGE
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"is in use by another run (PID {first.pid})" in errors[0]
    assert json.loads((run / "metrics.json").read_text())["settings"]["learning_rate"] == 0.9


def test_run_on_a_locked_directory_is_refused(tmp_path, tiny_data):
    with lock_directory(tmp_path / "run"), pytest.raises(DirectoryLockedError):
        train(tmp_path / "run", data=tiny_data, epochs=1, verbose=0)


def test_checkpoint_with_other_settings_is_refused(tmp_path, tiny_data):
    with pytest.raises(RuntimeError, match="stopped after 1 epochs"):
        train(
            tmp_path / "run", data=tiny_data, epochs=3, verbose=0, callbacks=[StopAfterFirstEpoch()]
        )
    with pytest.raises(ValueError, match="other settings"):
        train(tmp_path / "run", data=tiny_data, epochs=3, learning_rate=0.1, verbose=0)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": -1}, "batch_size"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"momentum": 1.5}, "momentum"),
        ({"validation_split": 0.0}, "validation_split"),
        ({"seed": -1}, "seed"),
        ({"model_overrides": {"activation": len}}, "model_overrides"),
        ({"lr_schedule": "step"}, "lr_schedule"),
        ({"augmentation": "flip"}, "augmentation"),
    ],
)
def test_bad_setting_names_argument(kwargs, argument):
    with pytest.raises(ValueError, match=rf"`{argument}` must .*Received: {argument}="):
        RunSettings(**kwargs)


class StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


def test_output_that_is_a_file_is_refused_before_loading_data(tmp_path):
    (tmp_path / "run").write_text("")
    with pytest.raises(FileExistsError, match=r"run is a file, not a run directory"):
        train(tmp_path / "run", data_dir=tmp_path / "no-data-here", verbose=0)


def test_output_that_cannot_be_created_is_refused_before_loading_data(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"file/run cannot be locked"):
        train(tmp_path / "file" / "run", data_dir=tmp_path / "no-data-here", verbose=0)


@pytest.mark.parametrize(
    ("num_train", "validation_split", "message"),
    [
        (0, 0.1, "`data`: x_train holds 0 images and y_train 0 labels"),
        (1, 0.5, "it leaves 0 for training and 1 for validation. Received: validation_split=0.5"),
    ],
)
def test_data_that_leaves_no_training_images_is_one_value_error(
    tmp_path, tiny_data, num_train, validation_split, message
):
    (x, y), test = tiny_data
    with pytest.raises(ValueError, match=message):
        train(
            tmp_path / "run",
            data=((x[:num_train], y[:num_train]), test),
            validation_split=validation_split,
            verbose=0,
        )


@pytest.fixture
def stopped_run(tmp_path, tiny_data):
    """A run directory whose checkpoint holds one of three epochs."""
    with pytest.raises(RuntimeError, match="stopped after 1 epochs"):
        train(
            tmp_path / "run", data=tiny_data, epochs=3, verbose=0, callbacks=[StopAfterFirstEpoch()]
        )
    return tmp_path / "run"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("checkpoint/state.json", b"", r"state.json is damaged: not JSON"),
        (
            "checkpoint/state.json",
            b'{"epochs_done": 1}',
            "state.json is damaged: it has no 'settings' entry",
        ),
        ("checkpoint/epoch-0001.weights.h5", b"\x89HDF", r"epoch-0001.weights.h5 is damaged"),
        ("metrics.json", b"{", r"metrics.json is damaged: not JSON"),
        ("metrics.json", b'{"history": {}}', "metrics.json is damaged: it has no 'settings' entry"),
    ],
)
def test_damaged_run_file_is_a_value_error_naming_it(
    stopped_run, tiny_data, name, content, message
):
    (stopped_run / name).write_bytes(content)
    with pytest.raises(ValueError, match=rf"{message}.*--overwrite"):
        train(stopped_run, data=tiny_data, epochs=3, verbose=0)
    assert train(stopped_run, data=tiny_data, epochs=3, verbose=0, overwrite=True)["epochs"] == 3


def test_missing_checkpoint_weights_are_a_value_error_naming_them(stopped_run, tiny_data):
    (stopped_run / "checkpoint" / "epoch-0001.weights.h5").unlink()
    with pytest.raises(ValueError, match=r"epoch-0001.weights.h5 is missing.*--overwrite"):
        train(stopped_run, data=tiny_data, epochs=3, verbose=0)


def test_non_finite_loss_in_the_first_epoch_claims_no_checkpoint(tmp_path, tiny_data):
    with pytest.raises(NonFiniteLossError, match="No epoch completed") as error:
        train(
            tmp_path / "run",
            data=tiny_data,
            learning_rate=1e30,
            model_overrides={"activation": "relu", "classifier_activation": None},
            verbose=0,
        )
    assert "checkpoint" not in str(error.value).replace("no checkpoint", "")
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_settings_object_or_its_fields(tmp_path, tiny_data):
    settings = RunSettings(epochs=1, seed=2)
    metrics = train(tmp_path / "run", settings, data=tiny_data, verbose=0)
    assert metrics["settings"] == settings.to_dict()
    with pytest.raises(ValueError, match="not both"):
        train(tmp_path / "run", settings, data=tiny_data, epochs=2)


def test_cosine_schedule_and_augmentation_are_recorded_and_saved(tmp_path, tiny_data):
    metrics = train(
        tmp_path / "run",
        data=tiny_data,
        epochs=2,
        optimizer="adam",
        learning_rate=0.01,
        lr_schedule="cosine",
        augmentation="translate",
        verbose=0,
    )
    assert metrics["epochs"] == 2
    assert metrics["settings"]["lr_schedule"] == "cosine"
    assert metrics["settings"]["augmentation"] == "translate"
    model = lb.load_model(tmp_path / "run" / "model.keras")
    assert model.layers[1].name == "augment_translation"
    assert model.count_params() == metrics["parameters"] == 44426
    # The schedule ran to its end: the saved optimizer's rate is far below the initial 0.01.
    assert float(model.optimizer.learning_rate) < 0.01 * 0.2


def test_steps_per_execution_computes_the_same_run(tmp_path, tiny_data):
    one = train(tmp_path / "one", data=tiny_data, epochs=2, verbose=0)
    many = train(tmp_path / "many", data=tiny_data, epochs=2, steps_per_execution=4, verbose=0)
    assert many["settings"] == one["settings"]
    assert many["test_loss"] == pytest.approx(one["test_loss"], rel=1e-5)
    with pytest.raises(ValueError, match="Received: steps_per_execution=0"):
        train(tmp_path / "bad", data=tiny_data, steps_per_execution=0)


def test_preset_training_entry_gives_schedule_and_augmentation_defaults():
    settings = RunSettings("notebook")
    assert (settings.lr_schedule, settings.augmentation) == ("constant", "none")


@pytest.mark.integration
@pytest.mark.skipif(
    not os.path.isdir("/usr/share/datasets/fashion-mnist"), reason="Fashion-MNIST not installed"
)
def test_one_epoch_on_real_fashion_mnist_learns(tmp_path):
    metrics = train(
        tmp_path / "run",
        epochs=1,
        batch_size=128,
        optimizer="adam",
        learning_rate=1e-3,
        model_overrides={
            "include_rescaling": True,
            "activation": "relu",
            "classifier_activation": "softmax",
        },
        verbose=0,
    )
    assert metrics["train_samples"] == 54000 and metrics["test_samples"] == 10000
    assert metrics["test_accuracy"] > 0.7


def test_runs_recorded_before_datasets_read_as_fashion_mnist_runs():
    recorded = RunSettings(epochs=2).to_dict()
    for name in ("dataset", "image_size", "color_mode", "skip_bad_files"):
        del recorded[name]

    assert RunSettings.from_dict(recorded) == RunSettings(epochs=2, dataset="fashion_mnist")


def test_data_set_settings_round_trip_and_are_checked():
    settings = RunSettings(dataset="photos", image_size=[24, 32], color_mode="rgb")
    assert RunSettings.from_dict(settings.to_dict()) == settings
    assert settings.image_size == (24, 32)
    with pytest.raises(ValueError, match="`color_mode` must be one of"):
        RunSettings(color_mode="cmyk")
    with pytest.raises(ValueError, match=r"`image_size` must be \(height, width\)"):
        RunSettings(image_size=(32,))
