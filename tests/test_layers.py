"""Layer tests in the spirit of keras-hub's `run_layer_test`, for every registered core layer."""

import json

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lenet_blocks.layers import ClassifierHead, ConvBlock

LAYER_CASES = [
    pytest.param(
        ConvBlock, {"filters": 6, "kernel_size": 5}, (2, 28, 28, 1), (2, 12, 12, 6), id="conv"
    ),
    pytest.param(
        ConvBlock,
        {"filters": 4, "kernel_size": 3, "padding": "same", "pooling": "avg", "batch_norm": True},
        (2, 10, 10, 3),
        (2, 5, 5, 4),
        id="conv-bn-avg",
    ),
    pytest.param(
        ClassifierHead, {"units": (120, 84), "classes": 10}, (2, 4, 4, 16), (2, 10), id="head"
    ),
    pytest.param(
        ClassifierHead,
        {"units": (8,), "classes": 3, "dropout": 0.5, "classifier_activation": None},
        (2, 5),
        (2, 3),
        id="head-dropout-logits",
    ),
]


@pytest.mark.parametrize(("cls", "kwargs", "input_shape", "output_shape"), LAYER_CASES)
def test_config_round_trip(cls, kwargs, input_shape, output_shape):
    layer = cls(**kwargs)
    assert cls.from_config(layer.get_config()).get_config() == layer.get_config()


@pytest.mark.parametrize(("cls", "kwargs", "input_shape", "output_shape"), LAYER_CASES)
def test_serialize_through_json_round_trip(cls, kwargs, input_shape, output_shape):
    layer = cls(**kwargs)
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    assert serialized["registered_name"] == f"lenet_blocks>{cls.__name__}"
    restored = keras.saving.deserialize_keras_object(serialized, safe_mode=True)
    assert type(restored) is cls
    assert restored.get_config() == layer.get_config()


@pytest.mark.parametrize(("cls", "kwargs", "input_shape", "output_shape"), LAYER_CASES)
def test_symbolic_and_eager_shapes_and_dtypes_agree(cls, kwargs, input_shape, output_shape):
    layer = cls(**kwargs)
    symbolic = layer(keras.KerasTensor(input_shape))
    eager = layer(np.ones(input_shape, "float32"))
    assert tuple(symbolic.shape) == tuple(eager.shape) == output_shape
    assert tuple(layer.compute_output_shape(input_shape)) == output_shape
    assert symbolic.dtype == keras.backend.standardize_dtype(eager.dtype) == "float32"


@pytest.mark.parametrize(("cls", "kwargs", "input_shape", "output_shape"), LAYER_CASES)
def test_one_training_step_changes_every_trainable_weight(cls, kwargs, input_shape, output_shape):
    model = keras.Sequential([keras.Input(input_shape[1:]), cls(**kwargs), keras.layers.Flatten()])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [w.numpy().copy() for w in model.trainable_weights]
    x = np.random.default_rng(0).uniform(size=input_shape).astype("float32")
    y = np.random.default_rng(1).uniform(size=(input_shape[0], int(np.prod(output_shape[1:]))))
    model.train_on_batch(x, y.astype("float32"))
    after = [w.numpy() for w in model.trainable_weights]
    assert before and all(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize(("cls", "kwargs", "input_shape", "output_shape"), LAYER_CASES)
def test_mixed_precision_computes_low_keeps_float32_weights(
    cls, kwargs, input_shape, output_shape, policy
):
    layer = cls(**kwargs, dtype=policy)
    output = layer(np.ones(input_shape, "float32"))
    compute_dtype = policy.removeprefix("mixed_")
    assert keras.backend.standardize_dtype(output.dtype) == compute_dtype
    assert all(w.dtype == "float32" for w in layer.weights)
    assert layer.get_config()["dtype"]["config"]["name"] == policy


@pytest.mark.parametrize(("cls", "kwargs", "input_shape", "output_shape"), LAYER_CASES)
def test_keras_file_round_trip_keeps_predictions(cls, kwargs, input_shape, output_shape, tmp_path):
    model = keras.Sequential([keras.Input(input_shape[1:]), cls(**kwargs)])
    x = np.random.default_rng(0).uniform(size=input_shape).astype("float32")
    path = tmp_path / "layer.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def test_conv_block_rejects_unknown_pooling():
    with pytest.raises(ValueError, match=r"`pooling` must be one of .*Received: pooling='min'"):
        ConvBlock(6, pooling="min")


def test_conv_block_with_batch_norm_has_no_conv_bias():
    block = ConvBlock(4, kernel_size=3, batch_norm=True)
    block.build((None, 8, 8, 1))
    assert block.conv.bias is None
    assert block.count_params() == 3 * 3 * 4 + 4 * 4


def test_dropout_is_active_in_training_only():
    head = ClassifierHead(units=(64,), classes=64, dropout=0.5, classifier_activation=None)
    x = np.ones((4, 16), "float32")

    def run(training):
        return keras.ops.convert_to_numpy(head(x, training=training))

    np.testing.assert_array_equal(run(False), run(False))
    assert not np.array_equal(run(True), run(False))


@given(
    height=st.integers(1, 20),
    width=st.integers(1, 20),
    channels=st.integers(1, 4),
    filters=st.integers(1, 8),
    kernel_size=st.integers(1, 5),
    padding=st.sampled_from(["valid", "same"]),
    pool_size=st.integers(1, 3),
)
def test_conv_block_output_shape_matches_arithmetic(
    height, width, channels, filters, kernel_size, padding, pool_size
):
    if padding == "valid":
        conv_h, conv_w = height - kernel_size + 1, width - kernel_size + 1
    else:
        conv_h, conv_w = height, width
    expected = (2, conv_h // pool_size, conv_w // pool_size, filters)
    if min(expected[1:3]) < 1:
        return
    block = ConvBlock(filters, kernel_size, padding=padding, pool_size=pool_size)
    assert tuple(block.compute_output_shape((2, height, width, channels))) == expected
    assert tuple(block(np.ones((2, height, width, channels), "float32")).shape) == expected
