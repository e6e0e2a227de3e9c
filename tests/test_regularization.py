"""Augmentation layers, learning-rate schedules and batch mixing shared by training and tuning."""

import itertools
import math

import keras
import numpy as np
import pytest

from lenet_blocks import build_lenet
from lenet_blocks.regularization import (
    ONE_CYCLE_PEAK,
    ONE_CYCLE_START,
    WARMUP_FRACTION,
    EpochSeed,
    augmented_lenet,
    check_augmentation,
    check_lr_schedule,
    learning_rate_schedule,
    mix_batches,
    mixing_layer,
)


class RateRecorder(keras.callbacks.Callback):
    """Records the learning rate each batch trains with (read before the step)."""

    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate))


def old_cosine_callback_rate(initial, epoch, batch, steps, epochs):
    """The rate the former `CosineLearningRate` callback set before batch `batch` of `epoch`."""
    fraction = min(1.0, (epoch + batch / steps) / epochs)
    return initial * 0.5 * (1.0 + math.cos(math.pi * fraction))


def test_cosine_schedule_is_the_former_callbacks_curve_and_resumes_from_the_step(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (32, 28, 28, 1)).astype("uint8")
    y = np.arange(32) % 10

    def model_and_recorder():
        keras.utils.set_random_seed(0)
        model = build_lenet()
        schedule = learning_rate_schedule("cosine", 0.1, total_steps=4 * 4)  # 4 epochs of 4
        model.compile(keras.optimizers.SGD(schedule), "sparse_categorical_crossentropy")
        return model, RateRecorder()

    model, recorder = model_and_recorder()
    model.fit(x, y, batch_size=8, epochs=4, callbacks=[recorder], shuffle=False, verbose=0)
    expected = [old_cosine_callback_rate(0.1, s // 4, s % 4, 4, 4) for s in range(16)]
    np.testing.assert_allclose(recorder.rates, expected, rtol=1e-6, atol=1e-9)

    half, _ = model_and_recorder()
    half.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    half.save_weights(tmp_path / "half.weights.h5")  # the optimizer's step is saved too
    resumed, recorder = model_and_recorder()
    resumed.optimizer.build(resumed.trainable_variables)
    resumed.load_weights(tmp_path / "half.weights.h5")
    resumed.fit(x, y, batch_size=8, epochs=4, initial_epoch=2, callbacks=[recorder], verbose=0)
    np.testing.assert_allclose(recorder.rates, expected[8:], rtol=1e-6, atol=1e-9)


def test_warmup_cosine_rises_linearly_from_zero_then_decays_to_zero():
    schedule = learning_rate_schedule("warmup_cosine", 0.2, total_steps=100)
    warmup = round(WARMUP_FRACTION * 100)
    rates = [float(schedule(step)) for step in range(101)]
    np.testing.assert_allclose(rates[: warmup + 1], np.linspace(0, 0.2, warmup + 1), atol=1e-7)
    decay = 100 - warmup
    expected = [0.1 * (1 + math.cos(math.pi * k / decay)) for k in range(decay + 1)]
    np.testing.assert_allclose(rates[warmup:], expected, rtol=1e-5, atol=1e-7)


def test_one_cycle_rises_from_a_fraction_of_the_peak_then_anneals_to_zero():
    schedule = learning_rate_schedule("one_cycle", 0.04, total_steps=50)
    peak = round(ONE_CYCLE_PEAK * 50)
    rates = [float(schedule(step)) for step in range(51)]
    assert rates[0] == pytest.approx(ONE_CYCLE_START * 0.04)
    assert max(rates) == pytest.approx(0.04) and int(np.argmax(rates)) == peak
    assert all(a < b for a, b in itertools.pairwise(rates[: peak + 1]))
    assert all(a >= b for a, b in itertools.pairwise(rates[peak:]))
    assert rates[-1] == pytest.approx(0.0, abs=1e-9)


def test_constant_schedule_is_the_float_itself():
    assert learning_rate_schedule("constant", 0.9, total_steps=10) == 0.9


@pytest.mark.parametrize(
    "args, argument",
    [
        (("step", 0.1, 10), "lr_schedule"),
        (("cosine", 0.0, 10), "learning_rate"),
        (("cosine", 0.1, 0), "total_steps"),
        (("one_cycle", 0.1, 2.5), "total_steps"),
    ],
)
def test_learning_rate_schedule_rejects_bad_arguments(args, argument):
    with pytest.raises(ValueError, match=f"Received: {argument}="):
        learning_rate_schedule(*args)
    with pytest.raises(ValueError, match=r"Received: lr_schedule='step'"):
        check_lr_schedule("step")


@pytest.mark.parametrize(
    "options, layer",
    [
        ({"augmentation": "translate"}, "augment_translation"),
        ({"augmentation": "translate_zoom"}, "augment_translation"),
        ({"augmentation": "none", "horizontal_flip": True}, "augment_flip"),
        ({"augmentation": "none", "random_erasing": 1.0}, "augment_erasing"),
    ],
)
def test_augmented_lenet_changes_images_in_training_only(options, layer):
    model = augmented_lenet(preset="d2l", input_shape=(28, 28, 1), seed=0, **options)
    assert model.count_params() == build_lenet("d2l").count_params()
    images = np.random.default_rng(1).uniform(0, 255, (4, 28, 28, 1)).astype("float32")
    augment = keras.Model(model.input, model.get_layer(layer).output)
    np.testing.assert_array_equal(augment(images, training=False), images)
    assert not np.allclose(augment(images, training=True), images)
    np.testing.assert_allclose(model.predict(images, verbose=0), model.predict(images, verbose=0))


def test_augmentation_layers_run_flip_translation_zoom_erasing():
    model = augmented_lenet(
        "translate_zoom", input_shape=(28, 28, 1), horizontal_flip=True, random_erasing=0.5
    )
    names = [layer.name for layer in model.layers[1:5]]
    assert names == ["augment_flip", "augment_translation", "augment_zoom", "augment_erasing"]


def test_augmentation_none_is_the_plain_model():
    model = augmented_lenet("none", input_shape=(32, 32, 1))
    assert model.input_shape == (None, 32, 32, 1)
    assert not any(layer.name.startswith("augment") for layer in model.layers)
    assert model.count_params() == build_lenet(input_shape=(32, 32, 1)).count_params()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"augmentation": "flip"}, r"Received: augmentation='flip'"),
        ({"augmentation": "none", "horizontal_flip": 1}, r"Received: horizontal_flip=1"),
        ({"augmentation": "none", "random_erasing": 1.5}, r"Received: random_erasing=1.5"),
    ],
)
def test_augmented_lenet_names_a_bad_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        augmented_lenet(input_shape=(28, 28, 1), **kwargs)
    with pytest.raises(ValueError, match=r"Received: augmentation='flip'"):
        check_augmentation("flip")


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("mixing", ["mixup", "cutmix"])
def test_mixed_batches_have_soft_labels_drawn_from_seed_and_epoch(mixing):
    import tensorflow as tf

    rng = np.random.default_rng(2)
    images = rng.uniform(0, 255, (16, 28, 28, 1)).astype("float32")
    labels = np.arange(16) % 10
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    layer = mixing_layer(mixing, seed=5)
    epoch_seed = EpochSeed(layer.generator, seed=5)

    def epoch(number):
        epoch_seed.on_epoch_begin(number)
        return [(x.numpy(), y.numpy()) for x, y in mix_batches(batches, layer, classes=10)]

    first, second, first_again = epoch(0), epoch(1), epoch(0)
    soft = np.concatenate([y for _, y in first])
    assert soft.shape == (16, 10)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-5)
    assert not np.array_equal(soft, np.eye(10)[labels])  # some labels were mixed
    assert not np.allclose(first[0][0], second[0][0])
    for (x, y), (x_again, y_again) in zip(first, first_again, strict=True):
        np.testing.assert_array_equal(x, x_again)
        np.testing.assert_array_equal(y, y_again)


def test_mixing_layer_names_a_bad_value():
    assert mixing_layer("none") is None
    with pytest.raises(ValueError, match=r"Received: mixing='blend'"):
        mixing_layer("blend")
