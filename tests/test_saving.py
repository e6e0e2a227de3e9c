"""Tests of lossless, safe `.keras` saving and of `load_model`'s errors."""

import json
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
from idx_helpers import MEMORY_CAP_AVAILABLE, run_memory_capped, write_keras_config

import lenet_blocks as lb
from lenet_blocks import saving

FRESH_INTERPRETER_CHECK = """
import sys
import keras
import numpy as np
import lenet_blocks.layers  # registers the layers, nothing else
model = keras.models.load_model(sys.argv[1], safe_mode=True)
np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
"""


def as_json(config):
    """A config as JSON text: tuples and lists compare equal, as in a saved file."""
    return json.dumps(config, sort_keys=True)


def trained_model(**kwargs):
    model = lb.build_lenet(**kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.9), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 28, 28, 1)).astype("float32")
    model.fit(x, rng.integers(0, 10, 16), epochs=1, verbose=0)
    return model


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"batch_norm": True, "dropout": 0.3, "include_rescaling": True, "activation": "relu"}],
    ids=["notebook", "bn-dropout-rescaling"],
)
def test_fresh_interpreter_reload_is_bit_identical(kwargs, tmp_path):
    model = trained_model(**kwargs)
    x = np.random.default_rng(1).integers(0, 256, (8, 28, 28, 1)).astype("float32")
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    subprocess.run(
        [
            sys.executable,
            "-c",
            FRESH_INTERPRETER_CHECK,
            str(tmp_path / "m.keras"),
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        check=True,
        capture_output=True,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), model.predict(x, verbose=0))


def test_load_model_restores_model_and_optimizer(tmp_path):
    model = trained_model()
    model.save(tmp_path / "m.keras")
    restored = lb.load_model(tmp_path / "m.keras")
    assert as_json(restored.get_config()) == as_json(model.get_config())
    assert restored.optimizer.learning_rate.numpy() == pytest.approx(0.9)


@pytest.mark.parametrize("preset", lb.list_presets())
def test_model_config_json_round_trip(preset):
    model = lb.build_lenet(preset)
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
    restored = keras.saving.deserialize_keras_object(serialized, safe_mode=True)
    assert as_json(restored.get_config()) == as_json(model.get_config())
    from_config = keras.Model.from_config(model.get_config())
    assert as_json(from_config.get_config()) == as_json(model.get_config())


def test_load_model_missing_file(tmp_path):
    missing = tmp_path / "absent.keras"
    with pytest.raises(FileNotFoundError, match=r"absent\.keras"):
        lb.load_model(missing)


def test_load_model_truncated_file(tmp_path):
    path = tmp_path / "m.keras"
    lb.build_lenet().save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"m\.keras"):
        lb.load_model(path)


def test_load_model_non_keras_file(tmp_path):
    path = tmp_path / "notes.keras"
    path.write_text("not a model")
    with pytest.raises(ValueError, match=r"notes\.keras.*not a `\.keras` model file"):
        lb.load_model(path)


# Safe loading and size limits (issue 15 items 6 and 7).


def plain_keras_model() -> keras.Model:
    """Keras' own layers only: Conv2D(6, 5) -> Flatten -> Dense(10), 34,726 parameters."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(6, 5, name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="dense")(x))


def layer_config(config: dict, name: str) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["name"] == name)["config"]


def set_field(name: str, key: str, value):
    def edit(config):
        layer_config(config, name)[key] = value

    return edit


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Paths of a saved `build_lenet()` and of a saved `plain_keras_model()`."""
    directory = tmp_path_factory.mktemp("saved")
    lb.build_lenet().save(directory / "lenet.keras")
    plain_keras_model().save(directory / "plain.keras")
    return {"lenet": directory / "lenet.keras", "plain": directory / "plain.keras"}


def lambda_model_file(path):
    inputs = keras.Input((28, 28, 1))
    doubled = keras.layers.Lambda(lambda x: x * 2, name="double")(inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns that a lambda is unsafe to reload
        keras.Model(inputs, doubled).save(path)
    return path


def test_lambda_layer_refused_saying_why_and_how_to_rebuild(tmp_path):
    path = lambda_model_file(tmp_path / "lambda.keras")

    with pytest.raises(ValueError) as info:
        lb.load_model(path)

    message = str(info.value)
    assert message.startswith(f"{str(path)!r}: layer 'double' (Lambda) holds Python bytecode")
    assert "loading it would run that code" in message
    assert "Rebuild the model without Lambda layers" in message
    assert "lenet_blocks.load_model(path, safe_mode=False)" in message
    assert "enable_unsafe_deserialization" not in message and "\n" not in message


def test_safe_mode_false_loads_a_trusted_lambda_file(tmp_path):
    path = lambda_model_file(tmp_path / "lambda.keras")

    model = lb.load_model(path, safe_mode=False)

    np.testing.assert_array_equal(model.predict(np.ones((1, 28, 28, 1)), verbose=0), 2.0)


LOAD_IN_CHILD = """
for path in sys.argv[1:]:
    try:
        print("loaded", load_model(path).count_params())
    except ValueError as error:
        print(error)
"""

ABSURD_SIZES = {
    "classifier-units": ("lenet", "head", "units", [10**9, 84]),
    "convblock-filters": ("lenet", "block1", "filters", 10**9),
    "convblock-filters-1e7": ("lenet", "block2", "filters", 10**7),
    "dense-units": ("plain", "dense", "units", 10**9),
    "conv2d-filters-1e7": ("plain", "conv", "filters", 10**7),
    "conv2d-kernel": ("plain", "conv", "kernel_size", [10**5, 10**5]),
}


@pytest.mark.skipif(not MEMORY_CAP_AVAILABLE, reason="needs Linux' RLIMIT_AS")
def test_absurd_sizes_refused_in_bounded_memory(saved, tmp_path):
    paths = [
        write_keras_config(saved[model], tmp_path / f"{case}.keras", set_field(layer, key, value))
        for case, (model, layer, key, value) in ABSURD_SIZES.items()
    ]

    result = run_memory_capped(
        "import sys\nfrom lenet_blocks import load_model",
        LOAD_IN_CHILD,
        str(saved["lenet"]),
        *map(str, paths),
        headroom=2**30,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    control, *lines = result.stdout.splitlines()
    assert control == "loaded 44426"  # the cap leaves room for a real load
    assert len(lines) == len(paths)
    for line, path, (_, layer, _, _) in zip(lines, paths, ABSURD_SIZES.values(), strict=True):
        assert str(path) in line and f"'{layer}'" in line
        assert "parameters, over the limit of 100,000,000" in line
        assert "LENET_BLOCKS_MAX_PARAMS" in line


def test_refusal_names_the_layer_and_the_value(saved, tmp_path):
    path = write_keras_config(
        saved["plain"], tmp_path / "m.keras", set_field("dense", "units", 10**9)
    )

    with pytest.raises(ValueError) as info:
        lb.load_model(path, compile=False)

    assert str(info.value) == (
        f"{str(path)!r}: layer 'dense' (Dense, units=1000000000) would have 3,457,000,000,000 "
        "parameters, over the limit of 100,000,000 (raise it with LENET_BLOCKS_MAX_PARAMS)."
    )


def test_budget_is_raised_with_the_environment_variable(saved, monkeypatch):
    monkeypatch.setenv("LENET_BLOCKS_MAX_PARAMS", "30000")
    with pytest.raises(ValueError, match=r"layer 'dense' \(Dense, units=10\) would have 34,570"):
        lb.load_model(saved["plain"])

    monkeypatch.setenv("LENET_BLOCKS_MAX_PARAMS", "40000")
    assert lb.load_model(saved["plain"]).count_params() == 34726


def test_config_declared_over_the_size_limit_refused_unread(saved, monkeypatch):
    monkeypatch.setattr(saving, "MAX_CONFIG_BYTES", 100)

    with pytest.raises(ValueError, match=r"lenet\.keras.*config\.json declares \d+ bytes, over"):
        lb.load_model(saved["lenet"])


@pytest.mark.parametrize(
    "content",
    [b"[" * 10**5 + b"]" * 10**5, b"{", b"\xff\xfe", b"[]", b'{"class_name": "Functional"}'],
    ids=["deeply-nested", "bad-json", "not-utf8", "a-list", "no-config"],
)
def test_malformed_config_is_one_line_value_error(saved, tmp_path, content):
    path = write_keras_config(saved["lenet"], tmp_path / "m.keras", content)

    with pytest.raises(ValueError, match=r"m\.keras") as info:
        lb.load_model(path)

    assert "\n" not in str(info.value)
