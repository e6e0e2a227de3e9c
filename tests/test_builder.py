"""Tests of `build_lenet`: reference parity, presets, shapes (Hypothesis) and argument errors."""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from idx_helpers import MEMORY_CAP_AVAILABLE, run_memory_capped

import lenet_blocks as lb
from lenet_blocks.builder import minimum_input_size


def notebook_sequential():
    """The notebook's model, written as the notebook writes it."""
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(6, 5, activation="sigmoid"),
            layers.MaxPool2D(pool_size=2, strides=2),
            layers.Conv2D(16, 5, activation="sigmoid"),
            layers.MaxPool2D(pool_size=2, strides=2),
            layers.Flatten(),
            layers.Dense(120, activation="sigmoid"),
            layers.Dense(84, activation="sigmoid"),
            layers.Dense(10, activation="sigmoid"),
        ]
    )


def test_default_model_matches_notebook_layer_shapes():
    walk_shapes = [shape for _, shape in lb.shape_walk(lb.build_lenet())]
    reference = notebook_sequential()
    x = np.zeros((1, 28, 28, 1), "float32")
    reference_shapes = []
    for layer in reference.layers:
        x = layer(x)
        reference_shapes.append(tuple(x.shape))
    assert walk_shapes == reference_shapes
    assert walk_shapes[0] == (1, 24, 24, 6) and walk_shapes[-1] == (1, 10)


def test_default_model_matches_notebook_parameter_counts():
    model = lb.build_lenet()
    reference = notebook_sequential()
    ours = [w.shape for w in model.weights]
    theirs = [w.shape for w in reference.weights]
    assert ours == theirs
    assert model.count_params() == reference.count_params() == 44426


def test_default_model_with_notebook_weights_gives_notebook_outputs():
    model, reference = lb.build_lenet(), notebook_sequential()
    model.set_weights(reference.get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (4, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), reference.predict(x, verbose=0))


def test_d2l_preset_has_61706_parameters():
    model = lb.build_lenet("d2l")
    assert model.count_params() == 61706
    assert lb.shape_walk(model)[0] == ("rescaling", (1, 28, 28, 1))


def test_list_presets_names_the_reference_presets():
    assert {"notebook", "d2l"} <= set(lb.list_presets())


def test_every_preset_builds():
    for name in lb.list_presets():
        assert lb.build_lenet(name).output_shape == (None, 10)


def test_modern_preset_is_the_d2l_network_with_relu_and_max_pooling():
    modern, d2l = lb.build_lenet("modern"), lb.build_lenet("d2l")
    assert modern.count_params() == d2l.count_params() == 61706
    assert [w.shape for w in modern.weights] == [w.shape for w in d2l.weights]
    conv = modern.get_layer("block1").get_config()
    assert conv["activation"] == "relu" and conv["pooling"] == "max"
    assert lb.get_preset("modern")["training"]["lr_schedule"] == "cosine"


def test_tuned_gap_preset_pools_globally_before_its_head():
    model = lb.build_lenet("tuned_gap")
    assert model.count_params() == 99364
    assert model.get_layer("global_avg_pool").output.shape == (None, 128)
    # A global pooling head accepts other image sizes; an explicit pooling replaces the preset's.
    assert lb.build_lenet("tuned_gap", input_shape=(40, 40, 1)).output_shape == (None, 10)
    assert lb.build_lenet("tuned_gap", pooling="max").get_layer("global_max_pool")


def test_unknown_preset_is_rejected():
    with pytest.raises(ValueError, match=r"`preset` must be one of .*Received: preset='lenet9'"):
        lb.build_lenet("lenet9")


def test_argument_overrides_preset_value():
    model = lb.build_lenet("d2l", block_pooling="max", classes=3)
    block = model.get_layer("block1")
    assert block.pooling == "max" and block.padding == "same"
    assert model.output_shape == (None, 3)


def test_convolutions_make_vgg_style_blocks_per_block():
    model = lb.build_lenet("modern", convolutions=(2, 1))
    assert [model.get_layer(f"block{i}").convolutions for i in (1, 2)] == [2, 1]
    # its first block's second convolution: 6 -> 6 channels, 5x5, with bias
    assert model.count_params() == lb.build_lenet("modern").count_params() + 6 * 6 * 25 + 6
    assert model.output_shape == lb.build_lenet("modern").output_shape


def test_shipped_weights_need_the_presets_convolutions():
    with pytest.raises(ValueError, match=r"`convolutions` must be left at preset 'fast'"):
        lb.build_lenet("fast", weights="fashion_mnist", convolutions=2)


def test_include_rescaling_scales_uint8_pixels():
    plain = lb.build_lenet()
    scaled = lb.build_lenet(include_rescaling=True)
    scaled.set_weights(plain.get_weights())
    pixels = np.random.default_rng(1).integers(0, 256, (2, 28, 28, 1)).astype("uint8")
    np.testing.assert_allclose(
        scaled.predict(pixels, verbose=0),
        plain.predict(pixels.astype("float32") / 255, verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"include_top": False, "input_shape": (None, None, 3)}, (None, None, None, 16)),
        ({"include_top": False, "pooling": "avg"}, (None, 16)),
        ({"pooling": "max", "input_shape": (None, None, 2)}, (None, 10)),
        ({"classifier_activation": None, "classes": 7}, (None, 7)),
    ],
)
def test_applications_style_heads(kwargs, expected):
    assert lb.build_lenet(**kwargs).output_shape == expected


def test_input_tensor_is_used_as_model_input():
    images = keras.Input((32, 32, 3))
    model = lb.build_lenet(input_tensor=images)
    assert model.inputs[0] is images
    assert model.output_shape == (None, 10)


def test_softmax_output_sums_to_one():
    model = lb.build_lenet(classifier_activation="softmax")
    x = np.random.default_rng(2).uniform(size=(3, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(axis=1), 1.0, rtol=1e-5)


def test_minimum_input_size_of_reference_is_16():
    assert minimum_input_size([5, 5], ["valid", "valid"], 2) == 16
    assert lb.build_lenet(input_shape=(16, 16, 1)).output_shape == (None, 10)
    with pytest.raises(ValueError, match="at least 16"):
        lb.build_lenet(input_shape=(15, 16, 1))


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"input_shape": (4, 4, 1)}, "input_shape"),
        ({"input_shape": (28, 28)}, "input_shape"),
        ({"input_shape": (28, 28, 0)}, "input_shape"),
        ({"input_shape": (None, None, 1)}, "input_shape"),
        ({"classes": 0}, "classes"),
        ({"classes": 2.5}, "classes"),
        ({"activation": "swishy"}, "activation"),
        ({"classifier_activation": "nope"}, "classifier_activation"),
        ({"block_pooling": "min"}, "block_pooling"),
        ({"pooling": "sum"}, "pooling"),
        ({"padding": "full"}, "padding"),
        ({"padding": ("same",)}, "padding"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"convolutions": 0}, "convolutions"),
        ({"convolutions": (2, 2, 2)}, "convolutions"),
        ({"filters": ()}, "filters"),
        ({"filters": (6, -16)}, "filters"),
        ({"units": (120, 0)}, "units"),
        ({"dropout": -0.1}, "dropout"),
        ({"dropout": 1.0}, "dropout"),
        ({"pool_size": 0}, "pool_size"),
        ({"batch_norm": "yes"}, "batch_norm"),
        ({"include_top": None}, "include_top"),
    ],
)
def test_invalid_argument_names_argument_and_value(kwargs, argument):
    (value,) = kwargs.values()
    with pytest.raises(ValueError, match=rf"`{argument}` must .*Received: {argument}="):
        lb.build_lenet(**kwargs)
    with pytest.raises(ValueError) as info:
        lb.build_lenet(**kwargs)
    assert repr(value) in str(info.value)


def expected_output_shape(
    height, width, kernel_sizes, paddings, pool, filters, include_top, classes
):
    """Output shape of the stack, computed from the convolution arithmetic."""
    for kernel, pad in zip(kernel_sizes, paddings, strict=True):
        if pad == "valid":
            height, width = height - kernel + 1, width - kernel + 1
        height, width = height // pool, width // pool
    if include_top:
        return (classes,)
    return (height, width, filters[-1])


@st.composite
def architectures(draw):
    blocks = draw(st.integers(1, 3))
    return {
        "filters": tuple(draw(st.lists(st.integers(1, 8), min_size=blocks, max_size=blocks))),
        "kernel_size": tuple(draw(st.lists(st.integers(1, 5), min_size=blocks, max_size=blocks))),
        "padding": tuple(
            draw(st.lists(st.sampled_from(["valid", "same"]), min_size=blocks, max_size=blocks))
        ),
        "convolutions": tuple(draw(st.lists(st.integers(1, 2), min_size=blocks, max_size=blocks))),
        "block_pooling": draw(st.sampled_from(["max", "avg"])),
        "pool_size": draw(st.integers(1, 3)),
    }


@given(
    architecture=architectures(),
    extra_height=st.integers(0, 12),
    extra_width=st.integers(0, 12),
    channels=st.integers(1, 4),
    batch=st.integers(1, 3),
    classes=st.integers(1, 12),
    include_top=st.booleans(),
)
def test_output_shape_agrees_symbolic_computed_and_eager(
    architecture, extra_height, extra_width, channels, batch, classes, include_top
):
    minimum = minimum_input_size(
        architecture["kernel_size"], architecture["padding"], architecture["pool_size"]
    )
    height, width = minimum + extra_height, minimum + extra_width
    model = lb.build_lenet(
        input_shape=(height, width, channels),
        classes=classes,
        include_top=include_top,
        units=(8,),
        **architecture,
    )
    expected = expected_output_shape(
        height,
        width,
        architecture["kernel_size"],
        architecture["padding"],
        architecture["pool_size"],
        architecture["filters"],
        include_top,
        classes,
    )
    assert model.output_shape == (None, *expected)
    assert tuple(model.compute_output_shape((batch, height, width, channels))) == (batch, *expected)
    x = np.random.default_rng(0).uniform(size=(batch, height, width, channels)).astype("float32")
    assert model(x).shape == (batch, *expected)


@given(architecture=architectures(), deficit=st.integers(1, 6), channels=st.integers(1, 3))
def test_input_below_minimum_is_rejected(architecture, deficit, channels):
    minimum = minimum_input_size(
        architecture["kernel_size"], architecture["padding"], architecture["pool_size"]
    )
    too_small = max(minimum - deficit, 1)
    if too_small >= minimum:
        return
    with pytest.raises(ValueError, match=rf"at least {minimum} .*Received: input_shape="):
        lb.build_lenet(input_shape=(too_small, minimum, channels), **architecture)


def test_input_tensor_from_earlier_layers_gives_single_tensor_input():
    images = keras.Input((28, 28, 1))
    shifted = keras.layers.Rescaling(1.0, offset=-1.0)(images)
    model = lb.build_lenet(input_tensor=shifted)
    assert model.inputs == [images] and not isinstance(model.input, list)
    assert model(np.zeros((2, 28, 28, 1), "float32")).shape == (2, 10)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"units": b"x"}, "units"), ({"preset": ["relu"]}, "preset"), ({"filters": "abc"}, "filters")],
)
def test_nonsense_argument_forms_are_refused(kwargs, argument):
    with pytest.raises(ValueError, match=rf"`{argument}` must .*Received: {argument}="):
        lb.build_lenet(**kwargs)


# A control build of the notebook's LeNet first: the cap leaves room for a real model.
CAPPED_BUILD = """
lb.build_lenet()
value = int(sys.argv[2])
try:
    lb.build_lenet(**{sys.argv[1]: (value,) if sys.argv[1] == "units" else value})
except ValueError as error:
    print("REFUSED", error)
"""


@pytest.mark.skipif(not MEMORY_CAP_AVAILABLE, reason="needs Linux' RLIMIT_AS")
@pytest.mark.parametrize("argument", ["classes", "units"])
def test_absurd_model_sizes_are_refused_in_bounded_memory(argument):
    imports = "import sys\nimport lenet_blocks as lb\nlb.build_lenet"
    result = run_memory_capped(imports, CAPPED_BUILD, argument, str(10**9), headroom=2**30)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "REFUSED" in result.stdout and "LENET_BLOCKS_MAX_PARAMS" in result.stdout
