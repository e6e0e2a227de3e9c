"""Augmentation layers and the cosine learning-rate schedule shared by training and tuning."""

import math

import keras
import numpy as np
import pytest

from lenet_blocks import build_lenet
from lenet_blocks.regularization import (
    CosineLearningRate,
    augmented_lenet,
    check_augmentation,
    check_lr_schedule,
    schedule_callbacks,
)


def test_cosine_rate_follows_the_half_cosine():
    schedule = CosineLearningRate(0.5, epochs=10)
    for progress in (0, 1.5, 5, 7.25, 10, 12):
        expected = 0.25 * (1 + math.cos(math.pi * min(progress, 10) / 10))
        assert schedule.rate(progress) == pytest.approx(expected)


class RateRecorder(keras.callbacks.Callback):
    """Records the learning rate after every batch (`self.model` syncs JAX's state first)."""

    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_end(self, batch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate))


def test_cosine_schedule_sets_the_rate_batch_by_batch_and_resumes_on_the_same_curve():
    x = np.random.default_rng(0).integers(0, 256, (32, 28, 28, 1)).astype("uint8")
    y = np.arange(32) % 10

    def rates_seen(initial_epoch):
        keras.utils.set_random_seed(0)
        model = build_lenet()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        recorder = RateRecorder()
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=4,
            initial_epoch=initial_epoch,
            callbacks=[CosineLearningRate(0.1), recorder],
            verbose=0,
        )
        return recorder.rates

    full = rates_seen(0)
    assert len(full) == 16
    expected = [0.05 * (1 + math.cos(math.pi * (step / 4) / 4)) for step in range(16)]
    np.testing.assert_allclose(full, expected, rtol=1e-6)
    np.testing.assert_allclose(rates_seen(2), full[8:], rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"initial_learning_rate": 0.0}, "initial_learning_rate"),
        ({"initial_learning_rate": 0.1, "epochs": 0}, "epochs"),
        ({"initial_learning_rate": 0.1, "epochs": 2.5}, "epochs"),
    ],
)
def test_cosine_schedule_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"Received: {argument}="):
        CosineLearningRate(**kwargs)


def test_schedule_callbacks():
    assert schedule_callbacks("constant", 0.1) == []
    (callback,) = schedule_callbacks("cosine", 0.1)
    assert isinstance(callback, CosineLearningRate) and callback.initial_learning_rate == 0.1
    with pytest.raises(ValueError, match=r"Received: lr_schedule='step'"):
        check_lr_schedule("step")


@pytest.mark.parametrize("augmentation", ["translate", "translate_zoom"])
def test_augmented_lenet_changes_images_in_training_only(augmentation):
    model = augmented_lenet(augmentation, "d2l", input_shape=(28, 28, 1), seed=0)
    assert model.count_params() == build_lenet("d2l").count_params()
    images = np.random.default_rng(1).uniform(0, 255, (4, 28, 28, 1)).astype("float32")
    augment = keras.Model(model.input, model.get_layer("augment_translation").output)
    np.testing.assert_array_equal(augment(images, training=False), images)
    assert not np.allclose(augment(images, training=True), images)
    np.testing.assert_allclose(
        model.predict(images, verbose=0),
        model.predict(images, verbose=0),
    )


def test_augmentation_none_is_the_plain_model():
    model = augmented_lenet("none", input_shape=(32, 32, 1))
    assert model.input_shape == (None, 32, 32, 1)
    assert not any(layer.name.startswith("augment") for layer in model.layers)
    assert model.count_params() == build_lenet(input_shape=(32, 32, 1)).count_params()


def test_check_augmentation_names_the_value():
    with pytest.raises(ValueError, match=r"Received: augmentation='flip'"):
        check_augmentation("flip")
