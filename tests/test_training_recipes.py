"""The search's training recipes in training runs: `label_smoothing`, `mixing`, `use_ema`,
`horizontal_flip`, `random_erasing` (settings, model and compile, the batches and callbacks of
`fit`, exact resume, the CLI flags).

Tiny synthetic data, in-process `train` and `cli.main` calls.
"""

import json
import re

import keras
import numpy as np
import pytest
from idx_helpers import make_dataset

import lenet_blocks as lb
from lenet_blocks import cli, presets
from lenet_blocks.checkpoint import EpochCheckpoint
from lenet_blocks.compile import compile_lenet
from lenet_blocks.losses import SmoothedCrossentropy
from lenet_blocks.pipeline import EpochCounter
from lenet_blocks.regularization import EpochSeed, TorchEpochSeed
from lenet_blocks.settings import RECORDED_DEFAULTS, RunSettings
from lenet_blocks.training import StopOnNonFiniteLoss, build_compiled_model, train

RECIPES = ("label_smoothing", "mixing", "use_ema", "horizontal_flip", "random_erasing")
# Every recipe whose state a resume must restore: the mixing draws and the weight average.
RESUMED = {
    "epochs": 2,
    "batch_size": 32,
    "optimizer": "adam",
    "learning_rate": 0.003,
    "mixing": "mixup",
    "use_ema": True,
    "model_overrides": {"activation": "relu", "include_rescaling": True},
    "seed": 4,
}


@pytest.fixture(scope="module")
def data():
    return make_dataset(num_train=200, num_test=30, seed=6)


class StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


class FailAtLastEpochEnd(keras.callbacks.Callback):
    """Fails after the last epoch's checkpoint, before `metrics.json` is written."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.params["epochs"]:
            raise KeyboardInterrupt


class FitSpy:
    """Records the training data and callbacks of every `keras.Model.fit` call, then fits."""

    def __init__(self, monkeypatch):
        self.calls = []
        fit = keras.Model.fit

        def spy(model, x=None, *args, **kwargs):
            self.calls.append((x, kwargs["callbacks"]))
            return fit(model, x, *args, **kwargs)

        monkeypatch.setattr(keras.Model, "fit", spy)


def test_defaults_are_the_recipes_off_and_recorded_runs_used_them():
    settings = RunSettings()
    expected = {"label_smoothing": 0.0, "mixing": "none", "use_ema": False}
    expected.update(horizontal_flip=False, random_erasing=0.0)
    assert {name: getattr(settings, name) for name in RECIPES} == expected
    assert {name: RECORDED_DEFAULTS[name] for name in RECIPES} == expected


def test_every_recipe_reaches_the_model_and_its_compile():
    settings = RunSettings(
        label_smoothing=0.1,
        use_ema=True,
        horizontal_flip=True,
        random_erasing=0.5,
        model_overrides={"classifier_activation": "softmax"},
    )
    model = build_compiled_model(settings)
    assert isinstance(model.loss, SmoothedCrossentropy) and model.loss.label_smoothing == 0.1
    assert model.optimizer.use_ema
    layers = {type(layer).__name__ for layer in model.layers}
    assert {"RandomFlip", "RandomErasing"} <= layers
    assert max(model.get_layer("augment_erasing").factor) == 0.5


def test_mixing_compiles_for_soft_labels_and_the_defaults_for_integer_labels():
    mixed = build_compiled_model(RunSettings(mixing="cutmix"))
    assert isinstance(mixed.loss, SmoothedCrossentropy) and mixed.loss.label_smoothing == 0.0
    plain = build_compiled_model(RunSettings())
    assert isinstance(plain.loss, keras.losses.SparseCategoricalCrossentropy)
    assert not plain.optimizer.use_ema
    assert not any(layer.name.startswith("augment") for layer in plain.layers)


def test_training_batches_are_mixed_and_the_average_is_swapped_after_the_checkpoint(
    tmp_path, data, monkeypatch
):
    spy = FitSpy(monkeypatch)
    user = keras.callbacks.Callback()
    train(tmp_path / "run", data=data, epochs=1, mixing="mixup", use_ema=True, seed=1,
          verbose=0, callbacks=[user])  # fmt: skip
    ((batches, callbacks),) = spy.calls
    _, labels = next(iter(batches))
    assert labels.shape == (32, 10)  # soft one-hot labels
    labels = labels.numpy()
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, rtol=1e-5)
    assert ((labels > 0) & (labels < 1)).any(axis=1).mean() > 0.5  # most samples are mixed
    kinds = [type(callback) for callback in callbacks]
    assert kinds == [
        EpochSeed,
        EpochCounter,
        TorchEpochSeed,  # PyTorch's dropout masks from (seed, epoch); a no-op elsewhere
        StopOnNonFiniteLoss,
        EpochCheckpoint,  # saves the trained weights, which a resumed run goes on from
        keras.callbacks.SwapEMAWeights,
        keras.callbacks.Callback,  # the user's callbacks see the averaged weights
    ]
    assert callbacks[5].swap_on_epoch and callbacks[-1] is user


def test_without_mixing_and_average_the_batches_and_callbacks_are_the_runs_own(
    tmp_path, data, monkeypatch
):
    spy = FitSpy(monkeypatch)
    train(tmp_path / "run", data=data, epochs=1, verbose=0)
    ((batches, callbacks),) = spy.calls
    assert next(iter(batches))[1].shape == (32,)
    kinds = [type(callback) for callback in callbacks]
    assert kinds == [EpochCounter, TorchEpochSeed, StopOnNonFiniteLoss, EpochCheckpoint]


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("label_smoothing", 1.0, "`label_smoothing` must be a float in [0, 1). "),
        ("label_smoothing", -0.1, "`label_smoothing` must be a float in [0, 1). "),
        ("label_smoothing", "0.1", "`label_smoothing` must be a float in [0, 1). "),
        ("random_erasing", 1.5, "`random_erasing` must be a float in [0, 1]. "),
        ("random_erasing", float("nan"), "`random_erasing` must be a float in [0, 1]. "),
        ("mixing", "blend", "`mixing` must be one of ('none', 'mixup', 'cutmix'). "),
        ("use_ema", 1, "`use_ema` must be a bool. "),
        ("horizontal_flip", "yes", "`horizontal_flip` must be a bool. "),
    ],
)
def test_a_bad_recipe_is_a_one_line_value_error(tmp_path, setting, value, message):
    expected = re.escape(f"{message}Received: {setting}={value!r}") + "$"
    with pytest.raises(ValueError, match=expected):
        RunSettings(**{setting: value})
    with pytest.raises(ValueError, match=expected):
        train(tmp_path / "run", **{setting: value})
    assert not (tmp_path / "run").exists()


def test_the_edges_of_the_ranges_are_settings():
    settings = RunSettings(label_smoothing=0.0, random_erasing=1.0)
    assert (settings.label_smoothing, settings.random_erasing) == (0.0, 1.0)


@pytest.mark.parametrize("recipe", [{"label_smoothing": 0.1}, {"mixing": "mixup"}])
def test_soft_label_recipes_are_refused_for_an_rbf_output(recipe):
    with pytest.raises(ValueError, match=r"RBF output.*Received: label_smoothing="):
        build_compiled_model(RunSettings(preset="lenet5_1998", **recipe))


@pytest.mark.parametrize("recipe", [{"mixing": "cutmix"}, {"use_ema": True}])
def test_multi_worker_runs_refuse_mixing_and_the_average(tmp_path, recipe):
    with pytest.raises(ValueError, match=r"multi-worker'\. Received: mixing="):
        train(tmp_path / "run", distribution="multi-worker", **recipe)
    assert not (tmp_path / "run").exists()


def test_recipes_round_trip_and_runs_recorded_before_them_compare_equal():
    settings = RunSettings(
        label_smoothing=0.05, mixing="cutmix", use_ema=True, horizontal_flip=True,
        random_erasing=0.25,
    )  # fmt: skip
    assert RunSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    recorded = RunSettings(preset="modern", epochs=2).to_dict()
    for name in RECIPES:
        del recorded[name]
    assert RunSettings.from_dict(recorded) == RunSettings(preset="modern", epochs=2)


def test_a_finished_run_recorded_before_the_recipes_is_returned_as_it_is(tmp_path, data):
    run = tmp_path / "run"
    train(run, data=data, epochs=1, verbose=0)
    metrics = json.loads((run / "metrics.json").read_text())
    for name in RECIPES:
        del metrics["settings"][name]
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert train(run, data=data, epochs=1, verbose=0) == metrics
    with pytest.raises(FileExistsError, match="other settings"):
        train(run, data=data, epochs=1, verbose=0, use_ema=True)


def test_a_presets_training_entry_can_carry_recipes(monkeypatch):
    monkeypatch.setitem(presets.PRESETS["notebook"]["training"], "mixing", "mixup")
    monkeypatch.setitem(presets.PRESETS["notebook"]["training"], "use_ema", True)
    assert (RunSettings().mixing, RunSettings().use_ema) == ("mixup", True)
    assert RunSettings(mixing="none", use_ema=False).mixing == "none"
    assert RunSettings.from_dict({"preset": "notebook"}).mixing == "none"  # recorded before


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data):
    run = tmp_path_factory.mktemp("uninterrupted")
    train(run, data=data, verbose=0, **RESUMED)
    return run


def assert_same_run(run, reference):
    metrics, expected = (json.loads((r / "metrics.json").read_text()) for r in (run, reference))
    for entry in (metrics, expected):
        del entry["history"]["train_seconds"]
    assert metrics["history"] == expected["history"]
    assert metrics["test_loss"] == expected["test_loss"]
    weights, wanted = (lb.load_model(r / "model.keras").get_weights() for r in (run, reference))
    for actual, expected_weights in zip(weights, wanted, strict=True):
        np.testing.assert_array_equal(actual, expected_weights)


def test_a_mixed_averaged_run_resumed_after_its_first_epoch_equals_the_uninterrupted_run(
    tmp_path, data, uninterrupted
):
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="stopped after 1 epochs"):
        train(run, data=data, verbose=0, callbacks=[StopAfterFirstEpoch()], **RESUMED)
    train(run, data=data, verbose=0, **RESUMED)
    assert_same_run(run, uninterrupted)


def test_a_run_stopped_after_its_last_epoch_ends_with_the_averaged_weights(
    tmp_path, data, uninterrupted
):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(run, data=data, verbose=0, callbacks=[FailAtLastEpochEnd()], **RESUMED)
    assert not (run / "metrics.json").exists()
    train(run, data=data, verbose=0, **RESUMED)  # nothing left to train: only the results
    assert_same_run(run, uninterrupted)


def test_the_averaged_weights_are_not_the_trained_ones(uninterrupted, tmp_path, data):
    trained = train(tmp_path / "run", data=data, verbose=0, **{**RESUMED, "use_ema": False})
    averaged = json.loads((uninterrupted / "metrics.json").read_text())
    np.testing.assert_allclose(trained["history"]["loss"], averaged["history"]["loss"], rtol=1e-6)
    assert trained["history"]["val_loss"] != averaged["history"]["val_loss"]  # other weights
    assert trained["test_loss"] != averaged["test_loss"]


def write_archive(path):
    (x_train, y_train), (x_test, y_test) = make_dataset(num_train=60, num_test=10, seed=2)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def test_cli_train_flags_reach_the_run(tmp_path):
    archive = write_archive(tmp_path / "data.npz")
    status = cli.main(
        [
            "train", "--dataset", str(archive), "--output", str(tmp_path / "run"),
            "--epochs", "1", "--batch-size", "16", "--verbose", "0",
            "--label-smoothing", "0.1", "--mixing", "cutmix", "--use-ema",
            "--horizontal-flip", "--random-erasing", "0.25",
        ]
    )  # fmt: skip
    assert status == 0
    settings = json.loads((tmp_path / "run" / "metrics.json").read_text())["settings"]
    assert {name: settings[name] for name in RECIPES} == {
        "label_smoothing": 0.1,
        "mixing": "cutmix",
        "use_ema": True,
        "horizontal_flip": True,
        "random_erasing": 0.25,
    }
    model = lb.load_model(tmp_path / "run" / "model.keras")
    assert {"augment_flip", "augment_erasing"} <= {layer.name for layer in model.layers}


def test_cli_train_help_shows_the_recipe_flags(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--label-smoothing", "--mixing", "--use-ema", "--no-use-ema"):
        assert flag in text
    assert "--horizontal-flip" in text and "--random-erasing" in text


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--label-smoothing", "1.5"], "Received: label_smoothing=1.5"),
        (["--random-erasing", "2"], "Received: random_erasing=2.0"),
    ],
)
def test_cli_bad_recipe_values_exit_2_with_one_line(tmp_path, capsys, flags, message):
    status = cli.main(["train", "--output", str(tmp_path / "run"), *flags])
    assert status == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error and error.startswith("lenet-blocks train")


@pytest.mark.parametrize("flags", [["--mixing", "blend"], ["--label-smoothing", "a lot"]])
def test_cli_unparsable_recipe_values_are_usage_errors(capsys, flags):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", *flags])
    assert exit_.value.code == 2
    assert flags[0] in capsys.readouterr().err


JAX_EMA_REFUSAL = r"^`use_ema` needs the TensorFlow or PyTorch backend: .* Received: backend=jax$"


def test_the_average_is_refused_on_jax_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ValueError, match=JAX_EMA_REFUSAL):
        train(tmp_path / "run", use_ema=True)
    assert not (tmp_path / "run").exists()


def test_the_compile_refuses_the_average_on_jax_only(monkeypatch):
    model = lb.build_lenet()
    compile_lenet(model, "sgd", 0.1, use_ema=True)  # TensorFlow keeps the average
    assert model.optimizer.use_ema
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ValueError, match=JAX_EMA_REFUSAL):
        compile_lenet(model, "sgd", 0.1, use_ema=True)
    compile_lenet(model, "sgd", 0.1)
