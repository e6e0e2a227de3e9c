"""Tests of `lenet_blocks.tuning`: reference defaults, the search space, budget, tuners, resume,
leaderboard. Synthetic data (64 training images), one epoch, at most three trials per search."""

import csv
import importlib.util
import json
import pathlib
import shutil

import keras
import keras_tuner as kt
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

import lenet_blocks as lb
from lenet_blocks.inference import model_class_names
from lenet_blocks.objectives import loss_and_metrics
from lenet_blocks.pipeline import EpochCounter, make_dataset
from lenet_blocks.presets import get_preset
from lenet_blocks.tuning import (
    HYPERPARAMETERS,
    LEADERBOARD_COLUMNS,
    TUNER_KINDS,
    HyperLeNet,
    diff_from_reference,
    format_leaderboard,
    leaderboard,
    make_tuner,
    read_leaderboard_csv,
    reference_hyperparameters,
    write_leaderboard_csv,
)
from lenet_blocks.tuning.space import search_space_markdown

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "tuning.md"


def synthetic(n, seed, channel_axis=True):
    rng = np.random.default_rng(seed)
    shape = (n, 28, 28, 1) if channel_axis else (n, 28, 28)
    return rng.integers(0, 256, shape).astype("uint8"), rng.integers(0, 10, n)


X, Y = synthetic(64, 0)
X_VAL, Y_VAL = synthetic(32, 1)


def search(tuner, **kwargs):
    tuner.search(X, Y, epochs=1, validation_data=(X_VAL, Y_VAL), verbose=0, **kwargs)
    return tuner


class RecordingFit:
    """Stands in for `model.fit`: records its arguments and trains nothing."""

    def __init__(self):
        self.args = None
        self.kwargs = None

    def __call__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        return keras.callbacks.History()

    @property
    def batches(self):
        """The training batches (images, labels) given to `model.fit`, as NumPy arrays."""
        return [(x.numpy(), y.numpy()) for x, y in self.args[0]]


def batch_sizes(dataset):
    return [int(x.shape[0]) for x, _ in dataset]


def build(fixed=None, **kwargs):
    hp = kt.HyperParameters()
    model = HyperLeNet(fixed=fixed, **kwargs).build(hp)
    return hp, model


def config_json(model):
    """The model config as JSON (a reloaded config has lists where the built one has tuples)."""
    return json.dumps(model.get_config(), sort_keys=True, default=str)


def fingerprint(fixed):
    """What an override can change: the model config, the optimizer, the loss, the fit batch
    size, the callbacks of `fit`."""
    keras.backend.clear_session()  # automatic names (e.g. the optimizer's) start afresh
    hypermodel = HyperLeNet(fixed=fixed)
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    recorder = RecordingFit()
    model.fit = recorder
    hypermodel.fit(hp, model, X, Y, epochs=1)
    optimizer = model.optimizer
    return (
        config_json(model),
        type(optimizer).__name__,
        json.dumps(optimizer.get_config(), sort_keys=True, default=str),
        json.dumps(model.loss.get_config(), sort_keys=True, default=str),
        batch_sizes(recorder.args[0]),
        [type(callback).__name__ for callback in recorder.kwargs["callbacks"]],
    ), hp.values


# -- the reference ------------------------------------------------------------------------


def test_defaults_build_the_notebook_model():
    _, model = build()
    keras.backend.clear_session()
    reference = lb.build_lenet()
    assert model.get_config() == reference.get_config()
    assert [w.shape for w in model.weights] == [w.shape for w in reference.weights]
    assert model.count_params() == 44426


def test_class_names_travel_with_every_model_and_must_name_every_class():
    model = HyperLeNet(classes=2, class_names=["cat", "dog"]).build(kt.HyperParameters())
    assert model_class_names(model) == ("cat", "dog")
    with pytest.raises(ValueError, match=r"`class_names` must name each of the 10 classes"):
        HyperLeNet(class_names=["cat"])


def test_defaults_compile_the_notebook_optimizer_and_loss():
    _, model = build()
    optimizer = model.optimizer
    assert type(optimizer) is keras.optimizers.SGD
    config = optimizer.get_config()
    expected = keras.optimizers.SGD(learning_rate=0.9).get_config()
    assert config.pop("name").startswith("sgd") and expected.pop("name").startswith("sgd")
    assert config == expected
    assert optimizer.momentum == 0.0 and optimizer.nesterov is False
    assert optimizer.weight_decay is None
    assert float(optimizer.learning_rate) == pytest.approx(0.9)
    loss, metrics = loss_and_metrics(model)
    assert type(model.loss) is type(loss) and model.loss.get_config() == loss.get_config()
    compiled = model.get_compile_config()["metrics"]
    assert [m["config"]["name"] for m in compiled] == [m.name for m in metrics] == ["accuracy"]


def test_defaults_fit_with_batch_size_32_and_forward_every_argument():
    hp, model = build()
    recorder = RecordingFit()
    model.fit = recorder
    callback = keras.callbacks.History()
    HyperLeNet().fit(
        hp,
        model,
        X,
        Y,
        epochs=3,
        validation_data=(X_VAL, Y_VAL),
        callbacks=[callback],
        shuffle=False,
        verbose=0,
    )
    # The arrays reach model.fit as the pipeline's batches of 32, in order (shuffle=False).
    assert batch_sizes(recorder.args[0]) == [32, 32]
    images, labels = zip(*recorder.batches, strict=True)
    np.testing.assert_array_equal(np.concatenate(images), X.astype("float32"))
    np.testing.assert_array_equal(np.concatenate(labels), Y)
    assert recorder.kwargs["callbacks"] == [callback]
    assert recorder.kwargs["epochs"] == 3 and recorder.kwargs["verbose"] == 0
    assert "batch_size" not in recorder.kwargs and recorder.kwargs["shuffle"] is False
    validation = recorder.kwargs["validation_data"]
    assert batch_sizes(validation) == [32]
    np.testing.assert_array_equal(next(iter(validation))[0].numpy(), X_VAL.astype("float32"))


def recorded_fit(fixed, x, y, **kwargs):
    """The `RecordingFit` that `HyperLeNet(fixed=fixed, seed=0).fit(hp, model, x, y)` called."""
    hypermodel = HyperLeNet(fixed=fixed, seed=0)
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    model.fit = RecordingFit()
    hypermodel.fit(hp, model, x, y, epochs=1, **kwargs)
    return model.fit


def test_fit_feeds_arrays_through_the_training_pipeline():
    """The tuner's batches are those of `pipeline.make_dataset`, as in training."""
    x, y = synthetic(48, 3, channel_axis=False)  # uint8 (n, 28, 28), as the datasets load
    recorder = recorded_fit({"batch_size": 16}, x, y, shuffle=False)
    expected = make_dataset(x, y, batch_size=16)
    assert recorder.args[0].element_spec == expected.element_spec
    assert recorder.args[0].element_spec[0].dtype == tf.float32
    for (got_x, got_y), (want_x, want_y) in zip(recorder.batches, expected, strict=True):
        np.testing.assert_array_equal(got_x, want_x.numpy())
        np.testing.assert_array_equal(got_y, want_y.numpy())


def test_fit_shuffles_the_arrays_each_epoch_in_an_order_drawn_from_seed_and_epoch():
    recorder = recorded_fit({"batch_size": 64}, X, Y)
    (counter,) = [c for c in recorder.kwargs["callbacks"] if isinstance(c, EpochCounter)]
    ((_, first),) = recorder.batches  # one epoch
    counter.on_epoch_begin(1)
    ((_, second),) = recorder.batches
    counter.on_epoch_begin(0)
    ((_, again),) = recorder.batches
    assert sorted(first) == sorted(Y) and not np.array_equal(first, Y)
    assert not np.array_equal(first, second)  # reshuffled for the next epoch
    np.testing.assert_array_equal(first, again)  # a function of (seed, epoch): resumable


def test_reference_values_are_the_defaults_and_the_notebook_preset():
    hp, _ = build()
    reference = reference_hyperparameters()
    assert hp.values == reference
    assert all(reference[name] == HYPERPARAMETERS[name].default for name in reference)
    notebook = get_preset("notebook")
    model, training = notebook["model"], notebook["training"]
    assert (reference["filters_1"], reference["filters_2"]) == model["filters"]
    assert reference["kernel_size"] == model["kernel_size"]
    assert reference["padding"] == model["padding"]
    assert reference["block_pooling"] == model["block_pooling"]
    assert reference["activation"] == model["activation"]
    assert reference["classifier_activation"] == model["classifier_activation"]
    assert (reference["units_1"], reference["units_2"]) == model["units"]
    assert reference["optimizer"] == training["optimizer"]
    assert reference["sgd_learning_rate"] == training["learning_rate"]
    assert reference["batch_size"] == training["batch_size"]


# -- the search space ---------------------------------------------------------------------

# name -> (what else must be fixed for it to be active, a value other than the default)
OVERRIDES = {
    "blocks": ({}, 3),
    "filters_1": ({}, 12),
    "filters_2": ({}, 32),
    "filters_3": ({"blocks": 3}, 128),
    "kernel_size": ({}, 3),
    "padding": ({}, "same"),
    "convolutions": ({}, 2),
    "block_pooling": ({}, "avg"),
    "global_pooling": ({}, "avg"),
    "batch_norm": ({}, True),
    "activation": ({}, "relu"),
    "classifier_activation": ({}, "softmax"),
    "units_1": ({}, 240),
    "units_2": ({}, 42),
    "dropout": ({}, 0.3),
    "include_rescaling": ({}, True),
    "augmentation": ({}, "translate_zoom"),
    "horizontal_flip": ({}, True),
    "random_erasing": ({}, 0.25),
    "mixing": ({}, "mixup"),
    "label_smoothing": ({}, 0.1),
    "optimizer": ({}, "adamw"),
    "lr_schedule": ({}, "one_cycle"),
    "use_ema": ({}, True),
    "sgd_learning_rate": ({}, 0.05),
    "adam_learning_rate": ({"optimizer": "adam"}, 3e-4),
    "adamw_learning_rate": ({"optimizer": "adamw"}, 3e-4),
    "momentum": ({}, 0.9),
    "nesterov": ({}, True),
    "weight_decay": ({}, 1e-4),
    "batch_size": ({}, 128),
}


def test_every_hyperparameter_has_an_override_test():
    assert set(OVERRIDES) == set(HYPERPARAMETERS)


@pytest.mark.parametrize("name", list(OVERRIDES))
def test_fixed_override_changes_the_model_optimizer_or_batch_size(name):
    base, value = OVERRIDES[name]
    assert value != HYPERPARAMETERS[name].default
    before, _ = fingerprint(base)
    after, values = fingerprint({**base, name: value})
    assert values[name] == value
    assert after != before


def test_learning_rate_range_is_conditional_on_the_optimizer():
    hp, _ = build()
    space = {parameter.name: parameter for parameter in hp.space}
    sgd = space["sgd_learning_rate"]
    assert sgd.min_value <= 0.9 <= sgd.max_value and sgd.sampling == "log"
    rates = [name for name in HYPERPARAMETERS if name.endswith("_learning_rate")]
    assert rates == ["sgd_learning_rate", "adam_learning_rate", "adamw_learning_rate"]
    for name in rates:
        (condition,) = space[name].conditions
        assert condition.name == "optimizer" and list(condition.values) == [name.split("_")[0]]
    adam = space["adam_learning_rate"]
    assert (adam.min_value, adam.max_value) == (1e-4, 1e-2)
    assert not adam.min_value <= 0.9 <= adam.max_value
    assert "adam_learning_rate" not in hp.values  # inactive under the default sgd


def test_adam_trial_uses_the_adam_learning_rate():
    hp, model = build({"optimizer": "adam", "adam_learning_rate": 0.002})
    assert type(model.optimizer) is keras.optimizers.Adam
    assert float(model.optimizer.learning_rate) == pytest.approx(0.002)
    assert "sgd_learning_rate" not in hp.values and "momentum" not in hp.values


KERAS_TUNER_TYPES = {"choice": "Choice", "boolean": "Boolean", "float_log": "Float"}


def test_registration_follows_the_table():
    """Each row registers as its kind, with its values, default and condition, in table order."""
    hp, _ = build()
    assert [parameter.name for parameter in hp.space] == list(HYPERPARAMETERS)
    for parameter, spec in zip(hp.space, HYPERPARAMETERS.values(), strict=True):
        assert type(parameter).__name__ == KERAS_TUNER_TYPES[spec.kind]
        assert parameter.default == spec.default
        conditions = [(c.name, tuple(c.values)) for c in parameter.conditions]
        assert conditions == ([] if spec.active_when is None else [spec.active_when])
        if spec.kind == "choice":
            assert tuple(parameter.values) == spec.values
        if spec.kind == "float_log":
            assert (parameter.min_value, parameter.max_value) == spec.values
            assert parameter.sampling == "log"


@pytest.mark.parametrize("name", list(HYPERPARAMETERS))
def test_fixed_accepts_the_searched_values_and_rejects_another_kind(name):
    spec = HYPERPARAMETERS[name]
    searched = spec.values if spec.kind != "float_log" else (*spec.values, spec.default)
    for value in searched:
        assert HyperLeNet(fixed={name: value}).fixed == {name: value}
    wrong = 1.5 if isinstance(spec.default, str) else "x"
    with pytest.raises(ValueError, match=rf"^`fixed\[{name!r}\]` must be .* Received: fixed="):
        HyperLeNet(fixed={name: wrong})


def test_tuner_space_holds_every_hyperparameter(tmp_path):
    tuner = make_tuner("random", HyperLeNet(), tmp_path, "space", max_trials=1)
    assert {parameter.name for parameter in tuner.oracle.get_space().space} == set(HYPERPARAMETERS)


@settings(max_examples=6)
@given(seed=st.integers(0, 2**31 - 1))
def test_every_sampled_configuration_builds(seed):
    """Random points of the space (as RandomSearch draws them) build a 10-class model."""
    space = kt.HyperParameters()
    HyperLeNet().build(space)
    hp = kt.HyperParameters()
    for index, parameter in enumerate(space.space):
        hp.merge([parameter])
        if hp.is_active(parameter):
            hp.values[parameter.name] = parameter.random_sample(seed + index)
    keras.backend.clear_session()
    model = HyperLeNet().build(hp)
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize(
    ("fixed", "match"),
    [
        ({"learning_rate": 0.1}, "one of"),
        ({"optimizer": "rmsprop"}, r"fixed\['optimizer'\]"),
        ({"blocks": 4}, r"fixed\['blocks'\]"),
        ({"batch_norm": 1}, "a bool"),
        ({"batch_size": 0}, "a positive int"),
        ({"dropout": 1.0}, r"\[0, 1\)"),
        ({"activation": "wiggly"}, "Keras activation"),
        ({"adam_learning_rate": -1.0}, "> 0"),
    ],
)
def test_fixed_rejects_unknown_names_and_bad_values(fixed, match):
    with pytest.raises(ValueError, match=match):
        HyperLeNet(fixed=fixed)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"input_shape": (28, 28)}, "input_shape"),
        ({"classes": 0}, "classes"),
        ({"max_params": 0}, "max_params"),
        ({"seed": "1"}, "seed"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`.*Received: {argument}="):
        HyperLeNet(**kwargs)


# -- models -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fixed",
    [
        {},
        {
            "blocks": 3,
            "batch_norm": True,
            "dropout": 0.2,
            "include_rescaling": True,
            "augmentation": "translate_zoom",
            "activation": "gelu",
            "classifier_activation": "softmax",
            "optimizer": "adamw",
            "weight_decay": 1e-3,
        },
    ],
    ids=["reference", "every-layer-option"],
)
def test_built_models_save_and_reload_safely(tmp_path, fixed):
    _, model = build(fixed)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = lb.load_model(path)
    assert config_json(loaded) == config_json(model)
    assert type(loaded.optimizer) is type(model.optimizer)
    np.testing.assert_allclose(
        loaded.predict(X[:4], verbose=0), model.predict(X[:4], verbose=0), rtol=1e-6
    )


def test_augmentation_acts_in_training_only():
    _, model = build({"augmentation": "translate", "include_rescaling": True}, seed=0)
    assert [layer.name for layer in model.layers][:2] == ["images", "augment_translation"]
    images = X[:8].astype("float32")
    inference = model(images, training=False)
    np.testing.assert_allclose(model(images, training=False), inference)
    assert not np.allclose(model(images, training=True), inference)


def test_seed_makes_builds_reproducible():
    _, first = build({"activation": "relu"}, seed=3)
    _, second = build({"activation": "relu"}, seed=3)
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


# -- fit ----------------------------------------------------------------------------------


class BatchCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def test_fit_trains_with_the_batch_size_and_records_size_and_epochs():
    hypermodel = HyperLeNet(fixed={"batch_size": 16})
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    counter = BatchCounter()
    x, y = synthetic(64, 2, channel_axis=False)  # (n, 28, 28): fit adds the channel axis
    history = hypermodel.fit(
        hp, model, x, y, epochs=1, validation_data=(x[:16], y[:16]), callbacks=[counter], verbose=0
    )
    assert counter.batches == 64 // 16
    assert history.history["num_params"] == [44426]
    assert history.history["epochs_trained"] == [1]
    assert "val_accuracy" in history.history


def test_cosine_schedule_decays_the_learning_rate_to_zero_over_fit():
    fixed = {"optimizer": "adam", "adam_learning_rate": 0.002, "lr_schedule": "cosine"}
    hypermodel = HyperLeNet(fixed={**fixed, "batch_size": 16})
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    x, y = synthetic(64, 2)
    rates = []
    recorder = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: rates.append(float(model.optimizer.learning_rate))
    )
    hypermodel.fit(hp, model, x, y, epochs=3, callbacks=[recorder], verbose=0)
    # The recorder runs before the schedule: it sees the rate of the previous step.
    assert rates[0] == pytest.approx(0.002)
    assert 0.002 * 0.5 < rates[1] < 0.002  # decayed during epoch 1 (of 3)
    assert rates[2] < rates[1]
    assert float(model.optimizer.learning_rate) < 0.002 * 0.1


def test_fit_batches_an_unbatched_dataset_and_rejects_a_batched_one():
    hypermodel = HyperLeNet(fixed={"batch_size": 16})
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    dataset = tf.data.Dataset.from_tensor_slices((X, Y))
    counter = BatchCounter()
    hypermodel.fit(hp, model, dataset, epochs=1, callbacks=[counter], verbose=0)
    assert counter.batches == 64 // 16
    with pytest.raises(kt.errors.FatalValueError, match="already batched"):
        hypermodel.fit(hp, model, dataset.batch(8), epochs=1, verbose=0)


def test_fit_rejects_a_batch_size_argument():
    hp, model = build()
    with pytest.raises(kt.errors.FatalValueError, match=r"fixed=.*batch_size"):
        HyperLeNet().fit(hp, model, X, Y, batch_size=64)


# -- budget -------------------------------------------------------------------------------


def test_budget_rejects_an_oversized_model_before_training():
    hypermodel = HyperLeNet(max_params=44425)
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    recorder = RecordingFit()
    model.fit = recorder
    with pytest.raises(kt.errors.FailedTrialError, match=r"44,426 parameters.*max_params=44,425"):
        hypermodel.fit(hp, model, X, Y, epochs=1)
    assert recorder.kwargs is None  # model.fit was never called
    assert int(model.optimizer.iterations) == 0


def test_budget_allows_a_model_within_it():
    hypermodel = HyperLeNet(max_params=44426)
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    model.fit = RecordingFit()
    hypermodel.fit(hp, model, X, Y, epochs=1)
    assert batch_sizes(model.fit.args[0]) == [32, 32]


class DrawRecordingHyperLeNet(HyperLeNet):
    """Records the parameter count of every configuration the oracle draws."""

    drawn: list

    def parameter_count(self, values):
        count = super().parameter_count(values)
        self.drawn.append(count)
        return count


def test_rejected_draws_do_not_count_as_trials(tmp_path):
    """Only filters_1 and filters_2 are searched; most of their 16 pairs are over the budget."""
    fixed = {name: spec.default for name, spec in HYPERPARAMETERS.items() if "filters" not in name}
    fixed["batch_size"] = 64
    hypermodel = DrawRecordingHyperLeNet(max_params=50_000, fixed=fixed, seed=0)
    hypermodel.drawn = []
    tuner = make_tuner("random", hypermodel, tmp_path, "budget", max_trials=2, seed=3)
    search(tuner)
    rows = leaderboard(tuner)
    assert len(rows) == 2 and all(row["status"] == "COMPLETED" for row in rows)
    assert all(row["num_params"] <= 50_000 for row in rows)
    assert any(count > 50_000 for count in hypermodel.drawn)  # some draws were rejected


def test_a_budget_no_draw_fits_starts_no_trial(tmp_path):
    fixed = {name: spec.default for name, spec in HYPERPARAMETERS.items() if name != "units_1"}
    hypermodel = HyperLeNet(max_params=1000, fixed=fixed)
    tuner = make_tuner("random", hypermodel, tmp_path, "budget", max_trials=1)
    search(tuner)
    assert leaderboard(tuner) == []


# -- tuners, resume, leaderboard ------------------------------------------------------------


@pytest.fixture(scope="module")
def random_search(tmp_path_factory):
    """A finished random search of two trials (shared: only read by the tests using it)."""
    directory = tmp_path_factory.mktemp("tuning")
    tuner = make_tuner("random", HyperLeNet(seed=0), directory, "random", max_trials=2, seed=1)
    search(tuner)
    return tuner, directory


def test_random_search_runs_end_to_end(random_search):
    tuner, _ = random_search
    trials = tuner.oracle.trials.values()
    assert len(trials) == 2 and all(trial.status == "COMPLETED" for trial in trials)
    assert 0.0 <= tuner.oracle.get_best_trials(1)[0].score <= 1.0
    (best,) = tuner.get_best_hyperparameters(1)
    assert set(best.values) <= set(HYPERPARAMETERS)


@pytest.mark.skipif(
    not (importlib.util.find_spec("scipy") and importlib.util.find_spec("sklearn")),
    reason="keras-tuner's BayesianOptimization needs scipy and scikit-learn",
)
def test_bayesian_search_runs_end_to_end(tmp_path):
    tuner = search(
        make_tuner("bayesian", HyperLeNet(seed=0), tmp_path, "bayes", max_trials=2, seed=1)
    )
    rows = leaderboard(tuner)
    assert [row["status"] for row in rows] == ["COMPLETED", "COMPLETED"]


def test_hyperband_search_runs_end_to_end_and_continues_a_trial(tmp_path):
    tuner = make_tuner(
        "hyperband", HyperLeNet(seed=0), tmp_path, "hb", max_trials=3, max_epochs=2, factor=2
    )
    rows = {row["trial_id"]: row for row in leaderboard(search(tuner))}
    assert [rows[trial_id]["status"] for trial_id in sorted(rows)] == ["COMPLETED"] * 3
    continued = [t for t in tuner.oracle.trials.values() if "tuner/trial_id" in t.hyperparameters]
    assert len(continued) == 1  # the second rung trains the best first-rung model on
    assert rows[continued[0].trial_id]["epochs"] == 2
    assert sorted(row["epochs"] for row in rows.values()) == [1, 1, 2]


class CountingHyperLeNet(HyperLeNet):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.fits = 0

    def fit(self, hp, model, *args, **kwargs):
        self.fits += 1
        return super().fit(hp, model, *args, **kwargs)


def test_resume_keeps_completed_trials_and_runs_only_the_missing_one(random_search, tmp_path):
    finished, directory = random_search
    shutil.copytree(directory / "random", tmp_path / "random")
    before = {trial_id: t.score for trial_id, t in finished.oracle.trials.items()}
    hypermodel = CountingHyperLeNet(seed=0)
    tuner = search(make_tuner("random", hypermodel, tmp_path, "random", max_trials=3, seed=1))
    assert hypermodel.fits == 1
    trials = tuner.oracle.trials
    assert len(trials) == 3 and all(t.status == "COMPLETED" for t in trials.values())
    assert {trial_id: trials[trial_id].score for trial_id in before} == before


def test_resume_of_a_finished_search_runs_nothing(random_search, tmp_path):
    _, directory = random_search
    shutil.copytree(directory / "random", tmp_path / "random")
    hypermodel = CountingHyperLeNet(seed=0)
    search(make_tuner("random", hypermodel, tmp_path, "random", max_trials=2, seed=1))
    assert hypermodel.fits == 0


def test_leaderboard_rows(random_search):
    tuner, _ = random_search
    rows = leaderboard(tuner)
    assert [tuple(row) for row in rows] == [LEADERBOARD_COLUMNS] * 2
    assert [row["rank"] for row in rows] == [1, 2]
    assert rows[0]["val_accuracy"] >= rows[1]["val_accuracy"]
    for row in rows:
        trial = tuner.oracle.trials[row["trial_id"]]
        assert row["status"] == "COMPLETED" and row["message"] is None
        assert row["val_accuracy"] == pytest.approx(trial.score)
        assert row["epochs"] == 1
        assert row["changed_hyperparameters"] == diff_from_reference(trial.hyperparameters)
        keras.backend.clear_session()
        model = HyperLeNet().build(trial.hyperparameters.copy())
        assert row["num_params"] == model.count_params()


def test_write_leaderboard_csv_round_trips_and_replaces_atomically(random_search, tmp_path):
    tuner, _ = random_search
    rows = leaderboard(tuner)
    path = tmp_path / "out" / "leaderboard.csv"
    write_leaderboard_csv(rows, path)
    with path.open(newline="") as file:
        read = list(csv.DictReader(file))
    assert tuple(read[0]) == LEADERBOARD_COLUMNS
    assert [r["trial_id"] for r in read] == [row["trial_id"] for row in rows]
    assert json.loads(read[0]["changed_hyperparameters"]) == rows[0]["changed_hyperparameters"]
    assert read[0]["message"] == ""
    # A failing write leaves the previous file whole and no temporary file behind.
    broken = [{**rows[0], "changed_hyperparameters": {"x": object()}}]
    with pytest.raises(TypeError):
        write_leaderboard_csv(broken, path)
    with path.open(newline="") as file:
        assert list(csv.DictReader(file)) == read
    assert sorted(p.name for p in path.parent.iterdir()) == ["leaderboard.csv"]


def test_read_leaderboard_csv_gives_back_the_rows(random_search, tmp_path):
    tuner, _ = random_search
    rows = leaderboard(tuner)
    failed = {**rows[0], "rank": None, "status": "FAILED", "val_accuracy": None, "epochs": None}
    rows.append({**failed, "trial_id": "9", "message": "FailedTrialError: too big"})
    write_leaderboard_csv(rows, tmp_path / "leaderboard.csv")
    read = read_leaderboard_csv(tmp_path / "leaderboard.csv")
    assert read == rows
    assert format_leaderboard(read) == format_leaderboard(rows)


# -- helpers and arguments ----------------------------------------------------------------


def test_diff_from_reference():
    assert diff_from_reference(reference_hyperparameters()) == {}
    values = {
        **reference_hyperparameters(),
        "blocks": 3,
        "filters_3": 64,
        "dropout": 0,
        "tuner/epochs": 4,
    }
    assert diff_from_reference(values) == {"blocks": 3, "filters_3": 64}
    hp, _ = build({"optimizer": "adam"})
    assert diff_from_reference(hp) == {"optimizer": "adam", "adam_learning_rate": 1e-3}


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"kind": "grid", "max_trials": 1}, "kind"),
        ({"kind": "random"}, "max_trials"),
        ({"kind": "bayesian", "max_trials": 0}, "max_trials"),
        ({"kind": "hyperband"}, "max_epochs"),
        ({"kind": "random", "max_trials": 1, "executions_per_trial": 0}, "executions_per_trial"),
    ],
)
def test_make_tuner_rejects_bad_arguments(tmp_path, kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`.*Received: {argument}="):
        make_tuner(hypermodel=HyperLeNet(), directory=tmp_path, project_name="p", **kwargs)


def test_tuner_kinds_and_objective(tmp_path):
    assert TUNER_KINDS == ("random", "bayesian", "hyperband")
    tuner = make_tuner("random", HyperLeNet(), tmp_path, "objective", max_trials=1)
    assert tuner.oracle.objective.name == "val_accuracy"
    assert tuner.oracle.objective.direction == "max"


def test_docs_table_matches_the_search_space():
    assert search_space_markdown() in DOCS.read_text(encoding="utf-8")


def test_tuners_silence_keras_tuners_stray_print(tmp_path, capsys):
    """keras-tuner 1.4.8's `Parent.to_proto` prints a word per condition (distributed searches)."""
    from keras_tuner.src.engine import conditions

    make_tuner("random", HyperLeNet(), tmp_path, "quiet", max_trials=1)
    capsys.readouterr()
    proto = conditions.Parent("optimizer", ["sgd"]).to_proto()
    assert proto.parent.name == "optimizer"
    assert capsys.readouterr().out == ""


def test_bayesian_without_its_extra_says_how_to_install_it(monkeypatch, tmp_path):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "sklearn" else find_spec(name)
    )
    with pytest.raises(ValueError, match=r"needs sklearn: pip install 'lenet_blocks\[bayesian\]'"):
        make_tuner("bayesian", HyperLeNet(), tmp_path, "p", max_trials=1)
