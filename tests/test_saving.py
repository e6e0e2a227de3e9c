"""Tests of lossless, safe `.keras` saving and of `load_model`'s errors."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import lenet_blocks as lb

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
