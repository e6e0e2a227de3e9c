"""`SmoothedCrossentropy` and `LabelAccuracy`: integer and soft labels in one compiled model."""

import keras
import numpy as np
import pytest

from lenet_blocks import build_lenet, load_model
from lenet_blocks.compile import compile_lenet
from lenet_blocks.losses import LabelAccuracy, SmoothedCrossentropy

RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, 10, 16)
PROBABILITIES = keras.ops.softmax(RNG.normal(size=(16, 10)).astype("float32"))


def value(loss, labels):
    return float(loss(keras.ops.convert_to_tensor(labels), PROBABILITIES))


def test_without_smoothing_it_is_the_sparse_crossentropy_for_both_kinds_of_label():
    sparse = keras.losses.SparseCategoricalCrossentropy()(LABELS, PROBABILITIES)
    loss = SmoothedCrossentropy()
    assert value(loss, LABELS) == pytest.approx(float(sparse), rel=1e-5)
    assert value(loss, LABELS[:, None]) == pytest.approx(float(sparse), rel=1e-5)
    assert value(loss, np.eye(10, dtype="float32")[LABELS]) == pytest.approx(float(sparse), 1e-5)


def test_smoothing_is_keras_categorical_label_smoothing():
    one_hot = np.eye(10, dtype="float32")[LABELS]
    expected = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(one_hot, PROBABILITIES)
    loss = SmoothedCrossentropy(label_smoothing=0.1)
    assert value(loss, LABELS) == pytest.approx(float(expected), rel=1e-5)
    assert value(loss, one_hot) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("smoothing", [-0.1, 1.0, True, "0.1"])
def test_bad_smoothing_is_named(smoothing):
    with pytest.raises(ValueError, match=r"Received: label_smoothing="):
        SmoothedCrossentropy(label_smoothing=smoothing)


def test_label_accuracy_reads_integer_and_soft_labels():
    predicted = np.argmax(keras.ops.convert_to_numpy(PROBABILITIES), axis=-1)
    soft = 0.7 * np.eye(10, dtype="float32")[LABELS] + 0.03
    for labels in (LABELS, soft):
        metric = LabelAccuracy()
        metric.update_state(keras.ops.convert_to_tensor(labels), PROBABILITIES)
        assert float(metric.result()) == pytest.approx(np.mean(predicted == LABELS))


def test_a_model_compiled_for_soft_labels_trains_on_them_evaluates_on_integers_and_reloads(
    tmp_path,
):
    model = compile_lenet(
        build_lenet(classifier_activation="softmax"),
        "adam",
        1e-3,
        label_smoothing=0.1,
        soft_labels=True,
        use_ema=True,
    )
    assert model.optimizer.use_ema
    images = RNG.integers(0, 256, (16, 28, 28, 1)).astype("float32")
    model.fit(images, np.eye(10, dtype="float32")[LABELS], batch_size=8, verbose=0)
    before = model.evaluate(images, LABELS, verbose=0, return_dict=True)
    model.save(tmp_path / "soft.keras")
    reloaded = load_model(tmp_path / "soft.keras")
    assert isinstance(reloaded.loss, SmoothedCrossentropy) and reloaded.loss.label_smoothing == 0.1
    after = reloaded.evaluate(images, LABELS, verbose=0, return_dict=True)
    assert after == pytest.approx(before, rel=1e-5)
