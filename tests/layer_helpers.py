"""`run_layer_test`: the checks every registered layer must pass, in the spirit of keras-hub's
`TestCase.run_layer_test` (config and JSON round trips, symbolic and eager shapes, a training
step, mixed precision, a `.keras` file round trip)."""

from __future__ import annotations

import json

import keras
import numpy as np

MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


def run_layer_test(cls, init_kwargs, input_shape, expected_output_shape, tmp_path):
    """Runs every generic check on `cls(**init_kwargs)` fed batches of `input_shape`.

    Args:
        cls: the layer class (registered in the `lenet_blocks` package).
        init_kwargs: dict of constructor arguments.
        input_shape: shape of the test batch, batch axis included.
        expected_output_shape: the output shape the layer must give for it.
        tmp_path: a folder for the `.keras` file.
    """
    check_config_round_trip(cls, init_kwargs)
    check_shapes_and_dtypes(cls, init_kwargs, input_shape, expected_output_shape)
    check_training_step(cls, init_kwargs, input_shape, expected_output_shape)
    for policy in MIXED_POLICIES:
        check_mixed_precision(cls, init_kwargs, input_shape, policy)
    check_keras_file_round_trip(cls, init_kwargs, input_shape, tmp_path / "layer.keras")


def check_config_round_trip(cls, init_kwargs):
    """`from_config(get_config())` and a JSON `serialize`/`deserialize` give the same layer."""
    layer = cls(**init_kwargs)
    assert cls.from_config(layer.get_config()).get_config() == layer.get_config()
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    assert serialized["registered_name"] == f"lenet_blocks>{cls.__name__}"
    restored = keras.saving.deserialize_keras_object(serialized, safe_mode=True)
    assert type(restored) is cls
    assert restored.get_config() == layer.get_config()


def check_shapes_and_dtypes(cls, init_kwargs, input_shape, expected_output_shape):
    """Symbolic, eager and `compute_output_shape` shapes agree; float32 in, float32 out."""
    layer = cls(**init_kwargs)
    symbolic = layer(keras.KerasTensor(input_shape))
    eager = layer(np.ones(input_shape, "float32"))
    assert tuple(symbolic.shape) == tuple(eager.shape) == expected_output_shape
    assert tuple(layer.compute_output_shape(input_shape)) == expected_output_shape
    assert symbolic.dtype == keras.backend.standardize_dtype(eager.dtype) == "float32"


def check_training_step(cls, init_kwargs, input_shape, expected_output_shape):
    """One SGD step on a random batch changes every trainable weight; the non-trainable ones
    stay as they are, but for batch normalization's moving statistics."""
    model = keras.Sequential(
        [keras.Input(input_shape[1:]), cls(**init_kwargs), keras.layers.Flatten()]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.weights]
    trainable = [id(w) for w in model.trainable_weights]
    x = np.random.default_rng(0).uniform(size=input_shape).astype("float32")
    outputs = int(np.prod(expected_output_shape[1:]))
    y = np.random.default_rng(1).uniform(size=(input_shape[0], outputs)).astype("float32")
    model.train_on_batch(x, y)
    for weight, old in zip(model.weights, before, strict=True):
        changed = not np.array_equal(keras.ops.convert_to_numpy(weight), old)
        if id(weight) in trainable:
            assert changed, f"{weight.path} did not train"
        elif "moving_" not in weight.path:
            assert not changed, f"non-trainable {weight.path} changed"


def check_mixed_precision(cls, init_kwargs, input_shape, policy):
    """Under a mixed policy the layer computes in the low dtype and keeps float32 weights."""
    layer = cls(**init_kwargs, dtype=policy)
    output = layer(np.ones(input_shape, "float32"))
    assert keras.backend.standardize_dtype(output.dtype) == policy.removeprefix("mixed_")
    assert all(w.dtype == "float32" for w in layer.weights)
    assert layer.get_config()["dtype"]["config"]["name"] == policy


def check_keras_file_round_trip(cls, init_kwargs, input_shape, path):
    """A model of the layer, its weights moved off their initial values, saves and reloads
    (`safe_mode=True`) with identical predictions."""
    model = keras.Sequential([keras.Input(input_shape[1:]), cls(**init_kwargs)])
    rng = np.random.default_rng(0)
    for weight in model.trainable_weights:
        weight.assign(keras.ops.convert_to_numpy(weight) + rng.normal(size=weight.shape) * 0.1)
    x = np.random.default_rng(0).uniform(size=input_shape).astype("float32")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
