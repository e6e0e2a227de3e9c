"""Layer tests: `run_layer_test` (tests/layer_helpers.py) for every registered layer, then each
layer's own behaviour (the LeNet-5 layers' own tests are in test_lenet5.py)."""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from layer_helpers import run_layer_test

from lenet_blocks.layers import (
    ClassifierHead,
    ConnectionTableConv2D,
    ConvBlock,
    RBFOutput,
    ScaledTanh,
    Subsampling,
)

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
        ConvBlock,
        {"filters": 4, "kernel_size": 3, "batch_norm": True, "convolutions": 2},
        (2, 10, 10, 3),
        (2, 4, 4, 4),
        id="conv-bn-two-convolutions",
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
    pytest.param(
        ClassifierHead,
        {"units": (4,), "classes": 2, "class_names": ("cat", "dog")},
        (2, 6),
        (2, 2),
        id="head-class-names",
    ),
    pytest.param(ScaledTanh, {}, (2, 5), (2, 5), id="scaled-tanh"),
    pytest.param(ScaledTanh, {"amplitude": 2.0, "slope": 0.5}, (2, 3, 3, 2), (2, 3, 3, 2), id="st"),
    pytest.param(Subsampling, {}, (2, 28, 28, 6), (2, 14, 14, 6), id="subsampling"),
    pytest.param(
        Subsampling,
        {"pool_size": (3, 2), "activation": "relu"},
        (2, 7, 9, 3),
        (2, 2, 4, 3),
        id="subsampling-3x2-relu",
    ),
    pytest.param(ConnectionTableConv2D, {}, (2, 14, 14, 6), (2, 10, 10, 16), id="c3"),
    pytest.param(
        ConnectionTableConv2D,
        {"table": [[1, 0, 1], [0, 1, 1]], "kernel_size": 3, "padding": "same", "activation": None},
        (2, 6, 6, 2),
        (2, 6, 6, 3),
        id="table-conv-custom",
    ),
    pytest.param(RBFOutput, {}, (2, 84), (2, 10), id="rbf"),
    pytest.param(
        RBFOutput,
        {"units": 2, "codes": [[1, -1, 1], [-1, 1, 1]], "trainable_codes": True},
        (2, 3),
        (2, 2),
        id="rbf-trainable-codes",
    ),
]


@pytest.mark.parametrize(("cls", "kwargs", "input_shape", "output_shape"), LAYER_CASES)
def test_layer_passes_every_generic_check(cls, kwargs, input_shape, output_shape, tmp_path):
    run_layer_test(cls, kwargs, input_shape, output_shape, tmp_path)


def test_every_registered_layer_is_tested():
    registered = {
        obj
        for name, obj in keras.saving.get_custom_objects().items()
        if name.startswith("lenet_blocks>")
        and isinstance(obj, type)
        and issubclass(obj, keras.layers.Layer)
        # keras-hub's classes: tests/test_hub.py runs keras-hub's own checks on them.
        and obj.__module__ != "lenet_blocks.hub"
    }
    assert registered == {case.values[0] for case in LAYER_CASES}


def test_conv_block_rejects_unknown_pooling():
    with pytest.raises(ValueError, match=r"`pooling` must be one of .*Received: pooling='min'"):
        ConvBlock(6, pooling="min")


def test_conv_block_with_batch_norm_has_no_conv_bias():
    block = ConvBlock(4, kernel_size=3, batch_norm=True)
    block.build((None, 8, 8, 1))
    assert block.conv.bias is None
    assert block.count_params() == 3 * 3 * 4 + 4 * 4


def test_conv_block_repeats_its_convolution_unit_before_the_pooling():
    block = ConvBlock(4, kernel_size=3, batch_norm=True, convolutions=3)
    block.build((None, 9, 9, 2))
    stages = [(type(stage).__name__, stage.name) for stage in block.stages]
    unit = [("Conv2D", "conv"), ("BatchNormalization", "norm"), ("Activation", "activation")]
    expected = [*unit]
    for index in (2, 3):
        expected += [(cls, f"{name}_{index}") for cls, name in unit]
    assert stages == [*expected, ("MaxPooling2D", "pool")]
    # the first unit pads as asked ("valid": 9 -> 7), the later ones "same" (7 -> 7)
    assert [stage.padding for stage in block.stages if hasattr(stage, "padding")][:3] == [
        "valid",
        "same",
        "same",
    ]
    assert block.count_params() == (3 * 3 * 2 * 4 + 4 * 4) + 2 * (3 * 3 * 4 * 4 + 4 * 4)


def test_first_convolution_unit_keeps_the_weight_paths_of_a_one_convolution_block():
    single, double = ConvBlock(4, name="block1"), ConvBlock(4, convolutions=2, name="block1")
    for block in (single, double):
        block.build((None, 12, 12, 1))
    single_paths = [weight.path for weight in single.weights]
    assert [weight.path for weight in double.weights][: len(single_paths)] == single_paths


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


@pytest.mark.parametrize(
    ("cls", "kwargs", "argument"),
    [
        (ConvBlock, {"filters": 6, "batch_norm": "abc"}, "batch_norm"),
        (ConvBlock, {"filters": 0}, "filters"),
        (ConvBlock, {"filters": 6, "kernel_size": 2.5}, "kernel_size"),
        (ConvBlock, {"filters": 6, "padding": "full"}, "padding"),
        (ConvBlock, {"filters": 6, "activation": "swishy"}, "activation"),
        (ConvBlock, {"filters": 6, "pool_size": True}, "pool_size"),
        (ConvBlock, {"filters": 6, "convolutions": 0}, "convolutions"),
        (ConvBlock, {"filters": 6, "convolutions": 10**9}, "convolutions"),
        (ClassifierHead, {"dropout": True}, "dropout"),
        (ClassifierHead, {"dropout": -5}, "dropout"),
        (ClassifierHead, {"units": b"x"}, "units"),
        (ClassifierHead, {"classes": 0}, "classes"),
        (ClassifierHead, {"classifier_activation": "nope"}, "classifier_activation"),
        (ScaledTanh, {"slope": float("nan")}, "slope"),
        (ScaledTanh, {"amplitude": float("inf")}, "amplitude"),
        (Subsampling, {"pool_size": (2, 0)}, "pool_size"),
        (ConnectionTableConv2D, {"kernel_size": -1}, "kernel_size"),
        (ConnectionTableConv2D, {"use_bias": 1}, "use_bias"),
        (RBFOutput, {"units": True}, "units"),
    ],
)
def test_layer_rejects_nonsense_in_constructor_and_from_config(cls, kwargs, argument):
    with pytest.raises(ValueError, match=rf"`{argument}` must .*Received: {argument}="):
        cls(**kwargs)
    config = {**cls().get_config(), **kwargs} if cls is not ConvBlock else {"filters": 6, **kwargs}
    # Keras' `from_config` wraps the layer's error in a TypeError that quotes it.
    with pytest.raises(
        (ValueError, TypeError), match=rf"`{argument}` must .*Received: {argument}="
    ):
        cls.from_config(config)


@pytest.mark.parametrize(
    ("layer", "input_shape"),
    [
        (ConvBlock(10**9), (None, 28, 28, 1)),
        (ConvBlock(6, kernel_size=10**9, padding="same"), (None, 28, 28, 1)),
        (ClassifierHead(units=(10**9,)), (None, 4, 4, 16)),
        (ClassifierHead(classes=10**9), (None, 84)),
        (ConnectionTableConv2D(kernel_size=10**6, padding="same"), (None, 14, 14, 6)),
    ],
)
def test_absurd_sizes_are_refused_before_allocating(layer, input_shape):
    with pytest.raises(
        ValueError, match=r"parameters, over the limit of .*LENET_BLOCKS_MAX_PARAMS"
    ):
        layer.build(input_shape)
    assert not layer.weights


def test_parameter_limit_can_be_raised(monkeypatch):
    monkeypatch.setenv("LENET_BLOCKS_MAX_PARAMS", "100")
    with pytest.raises(ValueError, match="over the limit of 100 "):
        ConvBlock(6).build((None, 28, 28, 1))
    monkeypatch.setenv("LENET_BLOCKS_MAX_PARAMS", "1000")
    ConvBlock(6).build((None, 28, 28, 1))


@pytest.mark.parametrize(
    "layer",
    [Subsampling(pool_size=2**31), ConvBlock(6, kernel_size=30), ConvBlock(6, pool_size=99)],
)
def test_windows_larger_than_the_input_are_refused(layer):
    with pytest.raises(ValueError, match=r"needs inputs of at least .*Received: input_shape="):
        layer.build((None, 28, 28, 6))
