"""Tests of the original LeNet-5: its layers, its RBF objective and the `lenet5_1998` preset."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

import lenet_blocks as lb
from lenet_blocks import objectives
from lenet_blocks.layers import (
    LENET5_CONNECTION_TABLE,
    ConnectionTableConv2D,
    RBFOutput,
    ScaledTanh,
    Subsampling,
)
from lenet_blocks.layers.rbf_output import default_codes, paley_hadamard
from lenet_blocks.lenet5 import build_lenet5_1998
from lenet_blocks.losses import RBFAccuracy, RBFLoss

PAPER_C3_INPUTS = [
    {0, 1, 2},
    {1, 2, 3},
    {2, 3, 4},
    {3, 4, 5},
    {0, 4, 5},
    {0, 1, 5},
    {0, 1, 2, 3},
    {1, 2, 3, 4},
    {2, 3, 4, 5},
    {0, 3, 4, 5},
    {0, 1, 4, 5},
    {0, 1, 2, 5},
    {0, 1, 3, 4},
    {1, 2, 4, 5},
    {0, 2, 3, 5},
    {0, 1, 2, 3, 4, 5},
]


def random_images(count, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, 28, 28, 1)).astype("uint8")


def compiled_lenet5():
    """LeNet-5 compiled as the training code compiles it, with its preset's SGD rate."""
    learning_rate = lb.get_preset("lenet5_1998")["training"]["learning_rate"]
    model = lb.build_lenet("lenet5_1998")
    loss, metrics = objectives.loss_and_metrics(model)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss=loss, metrics=metrics)
    return model


def trainable_scalars(obj):
    return sum(int(np.prod(w.shape)) for w in obj.trainable_weights)


def input_gradient_by_map(layer, x, output_map):
    """|d sum(output[..., output_map]) / d x| summed over everything but the input map axis."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(layer(x)[..., output_map])
    return tf.reduce_sum(tf.abs(tape.gradient(total, x)), axis=(0, 1, 2)).numpy()


@st.composite
def connection_tables(draw, max_inputs=4, max_outputs=5):
    """Boolean (inputs x outputs) matrices in which every row and column has a True."""
    inputs = draw(st.integers(1, max_inputs))
    outputs = draw(st.integers(1, max_outputs))
    cells = st.lists(st.booleans(), min_size=inputs * outputs, max_size=inputs * outputs)
    matrix = np.array(draw(cells), dtype=bool).reshape(inputs, outputs)
    for k in range(outputs):
        matrix[k % inputs, k] = True  # every output map sees an input map
    for i in range(inputs):
        matrix[i, i % outputs] = True  # every input map feeds an output map
    return matrix.tolist()


# --- The model -----------------------------------------------------------------------------


def test_lenet5_parameters_per_layer_are_the_papers():
    model = lb.build_lenet("lenet5_1998")
    counts = {layer.name: trainable_scalars(layer) for layer in model.layers}
    expected = {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164, "rbf": 0}
    assert {name: counts[name] for name in expected} == expected


def test_lenet5_has_60000_trainable_parameters_and_no_other_weights():
    model = lb.build_lenet("lenet5_1998")
    assert trainable_scalars(model) == 60000
    assert model.count_params() == 60000
    assert model.non_trainable_weights == []


def test_lenet5_layer_shapes_are_the_papers():
    walk = dict(lb.shape_walk(lb.build_lenet("lenet5_1998")))
    assert walk["padding"] == (1, 32, 32, 1)
    assert [walk[name] for name in ("c1", "s2", "c3", "s4", "c5", "f6", "rbf")] == [
        (1, 28, 28, 6),
        (1, 14, 14, 6),
        (1, 10, 10, 16),
        (1, 5, 5, 16),
        (1, 1, 1, 120),
        (1, 84),
        (1, 10),
    ]


def test_lenet5_scales_raw_pixels_to_papers_range_with_background_border():
    model = lb.build_lenet("lenet5_1998")
    front = keras.Model(model.input, model.get_layer("rescaling").output)
    pixels = np.full((1, 28, 28, 1), 255, "uint8")
    pixels[0, 0, 0, 0] = 0
    scaled = keras.ops.convert_to_numpy(front(pixels.astype("float32")))
    np.testing.assert_allclose(scaled[0, 2, 2, 0], -0.1, atol=1e-6)
    np.testing.assert_allclose(scaled[0, 10, 10, 0], 1.175, atol=1e-6)
    np.testing.assert_allclose(scaled[0, 0, :, 0], -0.1, atol=1e-6)  # padding is background


def test_lenet5_preset_is_listed_with_training_defaults():
    preset = lb.get_preset("lenet5_1998")
    assert "lenet5_1998" in lb.list_presets()
    assert preset["model"]["architecture"] == "lenet5_1998"
    assert preset["training"]["batch_size"] == 32 and preset["training"]["epochs"] == 5


def test_lenet5_accepts_applications_arguments():
    assert lb.build_lenet("lenet5_1998", include_top=False).output_shape == (None, 1, 1, 120)
    assert lb.build_lenet("lenet5_1998", include_top=False, pooling="avg").output_shape == (
        None,
        120,
    )
    assert lb.build_lenet("lenet5_1998", classes=4).output_shape == (None, 4)
    model = lb.build_lenet("lenet5_1998", input_shape=(32, 32, 3), name="color")
    assert model.name == "color" and model.get_layer("c1").count_params() == 5 * 5 * 3 * 6 + 6


def test_lenet5_any_image_size_with_global_pooling():
    model = lb.build_lenet("lenet5_1998", input_shape=(None, None, 1), pooling="max")
    assert model(np.zeros((2, 40, 35, 1), "float32")).shape == (2, 10)


def test_lenet5_input_tensor_is_used_as_model_input():
    images = keras.Input((28, 28, 1))
    model = lb.build_lenet("lenet5_1998", input_tensor=images)
    assert model.inputs[0] is images and model.output_shape == (None, 10)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"activation": "relu"}, "activation"),
        ({"filters": (6, 16)}, "filters"),
        ({"units": (120, 84)}, "units"),
        ({"classifier_activation": None}, "classifier_activation"),
        ({"include_rescaling": True}, "include_rescaling"),
        ({"dropout": 0.5}, "dropout"),
    ],
)
def test_lenet5_rejects_architecture_knobs(kwargs, argument):
    (value,) = kwargs.values()
    with pytest.raises(ValueError, match=rf"`{argument}` must be left unset ") as info:
        lb.build_lenet("lenet5_1998", **kwargs)
    assert str(info.value).endswith(f"Received: {argument}={value!r}")


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"input_shape": (27, 28, 1)}, "input_shape"),
        ({"input_shape": (28, 28)}, "input_shape"),
        ({"input_shape": (None, None, 1)}, "input_shape"),
        ({"classes": 0}, "classes"),
        ({"classes": 84}, "classes"),
        ({"pooling": "sum"}, "pooling"),
        ({"include_top": "yes"}, "include_top"),
    ],
)
def test_lenet5_invalid_argument_names_argument_and_value(kwargs, argument):
    with pytest.raises(ValueError, match=rf"`{argument}` must .*Received: {argument}="):
        build_lenet5_1998(**kwargs)


def test_lenet5_keras_file_round_trip_is_bit_identical(tmp_path):
    model = compiled_lenet5()
    model.fit(random_images(32), np.arange(32) % 10, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "lenet5.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    x = random_images(8, seed=1).astype("float32")
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    assert isinstance(restored.loss, RBFLoss)


def test_lenet5_config_json_round_trip():
    model = lb.build_lenet("lenet5_1998")
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
    restored = keras.saving.deserialize_keras_object(serialized, safe_mode=True)
    as_json = json.dumps(model.get_config(), sort_keys=True)
    assert json.dumps(restored.get_config(), sort_keys=True) == as_json
    assert trainable_scalars(restored) == 60000


def test_lenet5_mixed_precision_computes_low_keeps_float32_weights():
    keras.config.set_dtype_policy("mixed_float16")
    model = lb.build_lenet("lenet5_1998")
    output = model(random_images(2).astype("float32"))
    assert keras.backend.standardize_dtype(output.dtype) == "float16"
    assert all(w.dtype == "float32" for w in model.weights)
    assert model.get_layer("c3").compute_dtype == "float16"


def test_lenet5_rbf_loss_decreases_on_tiny_set():
    keras.utils.set_random_seed(0)
    labels = np.arange(64) % 4
    images = np.zeros((64, 28, 28, 1), "uint8")
    for index, label in enumerate(labels):  # one bright quadrant per class, plus noise
        row, col = divmod(int(label), 2)
        images[index, row * 14 : row * 14 + 14, col * 14 : col * 14 + 14] = 200
    images += np.random.default_rng(0).integers(0, 40, images.shape).astype("uint8")
    model = compiled_lenet5()
    history = model.fit(images, labels, epochs=4, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0]
    assert history.history["accuracy"][-1] > history.history["accuracy"][0]


# --- The RBF objective ---------------------------------------------------------------------


def test_loss_and_metrics_of_rbf_model_are_rbf_loss_and_argmin_accuracy():
    loss, metrics = objectives.loss_and_metrics(lb.build_lenet("lenet5_1998"))
    assert isinstance(loss, RBFLoss)
    assert [type(m) for m in metrics] == [RBFAccuracy] and metrics[0].name == "accuracy"


def test_loss_and_metrics_of_other_models_unchanged():
    loss, metrics = objectives.loss_and_metrics(lb.build_lenet())
    assert isinstance(loss, keras.losses.SparseCategoricalCrossentropy)
    assert isinstance(metrics[0], keras.metrics.SparseCategoricalAccuracy)


def test_rbf_loss_is_equation_9():
    distances = np.array([[3.0, 0.5, 7.0], [2.0, 4.0, 1.0]], "float32")
    labels = np.array([1, 0])
    j = 2.5
    expected = [
        d[y] + np.log(np.exp(-j) + np.exp(-d).sum()) for d, y in zip(distances, labels, strict=True)
    ]
    loss = RBFLoss(rubbish_penalty=j)
    np.testing.assert_allclose(float(loss(labels, distances)), np.mean(expected), rtol=1e-6)


def test_rbf_loss_rubbish_penalty_bounds_the_push_on_far_codes():
    far = np.array([[0.0, 1000.0]], "float32")
    loss = float(RBFLoss(rubbish_penalty=3.0)(np.array([0]), far))
    np.testing.assert_allclose(loss, np.log(np.exp(-3.0) + 1.0), rtol=1e-6)


@pytest.mark.parametrize("value", [0, -1.0, "1", True])
def test_rbf_loss_rejects_non_positive_penalty(value):
    with pytest.raises(ValueError, match=r"`rubbish_penalty` must .*Received: rubbish_penalty="):
        RBFLoss(rubbish_penalty=value)


def test_rbf_loss_config_round_trip_through_json():
    loss = RBFLoss(rubbish_penalty=0.5)
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(loss)))
    restored = keras.saving.deserialize_keras_object(serialized, safe_mode=True)
    assert type(restored) is RBFLoss and restored.get_config() == loss.get_config()


def test_rbf_accuracy_counts_argmin_distance_on_hand_made_example():
    distances = np.array([[0.1, 5.0, 9.0], [4.0, 3.0, 0.2], [1.0, 0.3, 2.0], [7.0, 8.0, 6.0]])
    labels = np.array([0, 2, 0, 1])  # nearest: 0, 2, 1, 2 -> two right
    metric = RBFAccuracy()
    metric.update_state(labels, distances.astype("float32"))
    assert float(metric.result()) == pytest.approx(0.5)


def test_rbf_accuracy_config_round_trip_through_json():
    metric = RBFAccuracy(name="rbf_acc")
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(metric)))
    restored = keras.saving.deserialize_keras_object(serialized, safe_mode=True)
    assert type(restored) is RBFAccuracy and restored.name == "rbf_acc"


def test_class_probabilities_sum_to_one_and_pick_nearest_code():
    model = lb.build_lenet("lenet5_1998")
    distances = model.predict(random_images(16).astype("float32"), verbose=0)
    probabilities = objectives.class_probabilities(model, distances)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-9)
    np.testing.assert_array_equal(probabilities.argmax(axis=-1), distances.argmin(axis=-1))


def test_class_probabilities_are_softmax_of_negative_distances():
    model = lb.build_lenet("lenet5_1998")
    probabilities = objectives.class_probabilities(model, np.array([[0.0, np.log(3.0)]]))
    np.testing.assert_allclose(probabilities, [[0.75, 0.25]])


# --- RBFOutput -----------------------------------------------------------------------------


def test_default_codes_are_balanced_sign_codes_at_hamming_distance_42():
    codes = default_codes(10, 84)
    assert set(np.unique(codes)) == {-1.0, 1.0}
    assert (codes.sum(axis=1) == 0).all()
    distances = (codes[:, None, :] != codes[None, :, :]).sum(axis=-1)
    assert (distances[~np.eye(10, dtype=bool)] == 42).all()


def test_paley_hadamard_rejects_orders_without_construction():
    with pytest.raises(ValueError, match=r"`order` must .*Received: order=10"):
        paley_hadamard(10)


def test_rbf_output_is_squared_euclidean_distance_to_codes():
    codes = np.random.default_rng(0).choice([-1.0, 1.0], (3, 5))
    x = np.random.default_rng(1).normal(size=(4, 5)).astype("float32")
    output = keras.ops.convert_to_numpy(RBFOutput(3, codes=codes)(x))
    expected = ((x[:, None, :] - codes[None]) ** 2).sum(axis=-1)
    np.testing.assert_allclose(output, expected, rtol=1e-5)


def test_rbf_output_default_uses_default_codes():
    layer = RBFOutput(10)
    x = np.zeros((1, 84), "float32")
    x[0] = default_codes(10, 84)[3]
    output = keras.ops.convert_to_numpy(layer(x))[0]
    assert output[3] == 0.0 and np.all(np.delete(output, 3) == 168.0)


def test_rbf_output_codes_are_fixed_unless_trainable():
    fixed, trainable = RBFOutput(10), RBFOutput(10, trainable_codes=True)
    fixed.build((None, 84))
    trainable.build((None, 84))
    assert fixed.weights == [] and trainable_scalars(trainable) == 840


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"units": 0}, "units"),
        ({"units": 2, "codes": [[1, 1]]}, "codes"),
        ({"units": 2, "codes": [[1, 1], [1]]}, "codes"),
        ({"units": 1, "codes": [[1, float("nan")]]}, "codes"),
        ({"trainable_codes": 1}, "trainable_codes"),
    ],
)
def test_rbf_output_invalid_argument(kwargs, argument):
    with pytest.raises(ValueError, match=rf"`{argument}` must .*Received: {argument}="):
        RBFOutput(**kwargs)


def test_rbf_output_rejects_codes_of_wrong_width():
    with pytest.raises(ValueError, match=r"`codes` must have one entry per input feature"):
        RBFOutput(2, codes=[[1, 1], [-1, -1]])(np.zeros((1, 3), "float32"))


# --- ConnectionTableConv2D -----------------------------------------------------------------


def test_default_table_is_papers_table_i():
    table = np.array(LENET5_CONNECTION_TABLE)
    assert table.shape == (6, 16) and table.sum() == 60
    assert [set(np.flatnonzero(table[:, k]).tolist()) for k in range(16)] == PAPER_C3_INPUTS


def test_c3_has_1516_trainable_scalars_in_a_compact_kernel():
    layer = ConnectionTableConv2D()
    layer.build((None, 14, 14, 6))
    assert tuple(layer.kernel.shape) == (5, 5, 60)
    assert trainable_scalars(layer) == layer.count_params() == 1516


@pytest.mark.tensorflow_only  # tf.GradientTape; test_backends.py checks every backend
def test_c3_output_maps_have_zero_gradient_outside_their_input_set():
    layer = ConnectionTableConv2D(activation=None)
    x = np.random.default_rng(0).normal(size=(2, 14, 14, 6)).astype("float32")
    for k, inputs in enumerate(PAPER_C3_INPUTS):
        gradient = input_gradient_by_map(layer, x, k)
        outside = [i for i in range(6) if i not in inputs]
        assert (gradient[outside] == 0).all(), k
        assert (gradient[sorted(inputs)] > 0).all(), k


def test_c3_dense_kernel_is_zero_exactly_outside_the_table():
    layer = ConnectionTableConv2D()
    layer.build((None, 14, 14, 6))
    kernel = keras.ops.convert_to_numpy(layer.dense_kernel())
    connected = np.array(LENET5_CONNECTION_TABLE)
    assert (kernel[:, :, ~connected] == 0).all()
    assert (kernel[:, :, connected] != 0).all()


@pytest.mark.tensorflow_only  # tf.GradientTape; test_backends.py checks every backend
@given(table=connection_tables())
def test_custom_table_sets_filters_parameters_and_sparsity(table):
    matrix = np.array(table)
    layer = ConnectionTableConv2D(table, kernel_size=2, activation=None)
    x = np.random.default_rng(0).normal(size=(1, 4, 4, matrix.shape[0])).astype("float32")
    assert layer(x).shape == (1, 3, 3, matrix.shape[1])
    assert trainable_scalars(layer) == 4 * int(matrix.sum()) + matrix.shape[1]
    for k in range(matrix.shape[1]):
        assert ((input_gradient_by_map(layer, x, k) > 0) == matrix[:, k]).all()


def test_table_accepts_numpy_and_int_matrices_and_stores_bools():
    from_numpy = ConnectionTableConv2D(np.array([[1, 0], [1, 1]], dtype=bool))
    from_ints = ConnectionTableConv2D([[1, 0], [1, 1]])
    assert from_numpy.table == from_ints.table == [[True, False], [True, True]]


@pytest.mark.parametrize(
    "table",
    [
        [],
        "table",
        [[True, False], [True]],
        [[True, True], [False, False]],
        [[True, False], [True, False]],
        [[1, 2]],
        [[0.5, 1]],
        [True, False],
    ],
    ids=["empty", "string", "ragged", "input-unused", "output-unfed", "int-2", "float", "flat"],
)
def test_invalid_table_is_rejected(table):
    with pytest.raises(ValueError, match=r"`table` must .*Received: table="):
        ConnectionTableConv2D(table)


def test_table_rejects_input_with_wrong_number_of_maps():
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 6"):
        ConnectionTableConv2D()(np.zeros((1, 14, 14, 5), "float32"))


@given(
    table=connection_tables(max_inputs=3, max_outputs=4),
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    kernel_size=st.integers(1, 4),
    padding=st.sampled_from(["valid", "same"]),
)
def test_connection_table_conv_shapes_agree(table, height, width, kernel_size, padding):
    if padding == "valid" and min(height, width) < kernel_size:
        return
    layer = ConnectionTableConv2D(table, kernel_size=kernel_size, padding=padding)
    shrink = kernel_size - 1 if padding == "valid" else 0
    expected = (2, height - shrink, width - shrink, len(table[0]))
    input_shape = (2, height, width, len(table))
    assert tuple(layer.compute_output_shape(input_shape)) == expected
    assert tuple(layer(keras.KerasTensor(input_shape)).shape) == expected
    assert tuple(layer(np.ones(input_shape, "float32")).shape) == expected


# --- Subsampling and ScaledTanh ------------------------------------------------------------


def test_subsampling_is_window_sum_times_coefficient_plus_bias_then_squashing():
    x = np.random.default_rng(0).normal(size=(2, 4, 6, 3)).astype("float32")
    coefficient, bias = np.array([0.5, -1.0, 2.0]), np.array([0.1, 0.0, -0.3])
    for activation, squash in (
        (None, lambda a: a),
        ("scaled_tanh", lambda a: 1.7159 * np.tanh(a * 2 / 3)),
    ):
        layer = Subsampling(activation=activation)
        layer.build(x.shape)
        layer.set_weights([coefficient, bias])
        sums = x.reshape(2, 2, 2, 3, 2, 3).sum(axis=(2, 4))
        expected = squash(sums * coefficient + bias)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-6
        )


def test_subsampling_has_two_parameters_per_map():
    layer = Subsampling()
    layer.build((None, 10, 10, 16))
    assert trainable_scalars(layer) == 32


@given(
    image=st.tuples(st.integers(1, 20), st.integers(1, 20), st.integers(1, 6)),
    pool=st.tuples(st.integers(1, 4), st.integers(1, 4)),
)
def test_subsampling_shapes_agree(image, pool):
    (height, width, channels), (pool_height, pool_width) = image, pool
    if height < pool_height or width < pool_width:
        return
    layer = Subsampling((pool_height, pool_width))
    input_shape = (2, height, width, channels)
    expected = (2, height // pool_height, width // pool_width, channels)
    assert tuple(layer.compute_output_shape(input_shape)) == expected
    assert tuple(layer(keras.KerasTensor(input_shape)).shape) == expected
    assert tuple(layer(np.ones(input_shape, "float32")).shape) == expected


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"pool_size": 0}, "pool_size"),
        ({"pool_size": (2, 2, 2)}, "pool_size"),
        ({"activation": "squash"}, "activation"),
    ],
)
def test_subsampling_invalid_argument(kwargs, argument):
    with pytest.raises(ValueError, match=rf"`{argument}` must .*Received: {argument}="):
        Subsampling(**kwargs)


def test_scaled_tanh_is_papers_function_and_configurable():
    x = np.array([-2.0, -1.0, 0.0, 1.0, 3.0], "float32")
    np.testing.assert_allclose(ScaledTanh()(x), 1.7159 * np.tanh(2 / 3 * x), rtol=1e-6)
    np.testing.assert_allclose(ScaledTanh(2.0, 0.5)(x), 2.0 * np.tanh(0.5 * x), rtol=1e-6)
    np.testing.assert_allclose(ScaledTanh()(np.array([1.0], "float32")), [1.0], atol=2e-4)
