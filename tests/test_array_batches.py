"""The training batches on every backend: `tf.data` on TensorFlow, `ArrayBatches` (NumPy) on
JAX and PyTorch, with the same batches in the same per-epoch orders, so that a run stopped and
started again on any backend ends as the run never interrupted."""

import json

import keras
import numpy as np
import pytest
from idx_helpers import make_dataset as make_idx_dataset

import lenet_blocks as lb
from lenet_blocks.pipeline import (
    ArrayBatches,
    EpochCounter,
    batches_per_epoch,
    make_batches,
    make_dataset,
)
from lenet_blocks.regularization import mix_batches, mixing_layer
from lenet_blocks.training import train

IMAGES = np.arange(7 * 4 * 4, dtype="int64").reshape(7, 4, 4).astype("uint8")
LABELS = np.arange(7) % 3


def batches_of(batches):
    return [tuple(np.asarray(part) for part in batch) for batch in batches]


def assert_same_batches(actual, expected):
    assert len(actual) == len(expected)
    for batch, wanted in zip(actual, expected, strict=True):
        for part, wanted_part in zip(batch, wanted, strict=True):
            assert part.dtype == wanted_part.dtype
            np.testing.assert_array_equal(part, wanted_part)


def test_make_batches_takes_the_fast_path_of_the_backend():
    batches = make_batches(IMAGES, LABELS, batch_size=3)
    if keras.backend.backend() == "tensorflow":
        assert not isinstance(batches, ArrayBatches)
    else:
        assert isinstance(batches, ArrayBatches)
    assert batches_per_epoch(batches) == 3


def test_array_batches_hold_float_images_with_a_channel_axis_and_int_labels():
    batches = ArrayBatches(IMAGES, LABELS, batch_size=3)
    images, labels = batches[2]
    assert images.shape == (1, 4, 4, 1) and images.dtype == np.float32
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(images[..., 0], IMAGES[6:].astype("float32"))
    only_images = ArrayBatches(IMAGES, batch_size=3)[0]
    assert isinstance(only_images, np.ndarray) and only_images.shape == (3, 4, 4, 1)


@pytest.mark.parametrize("epoch", [0, 1, 5])
def test_each_epoch_is_ordered_as_the_tf_data_path_orders_it(epoch):
    counter = EpochCounter()
    counter.on_epoch_begin(epoch)
    arrays = ArrayBatches(IMAGES, LABELS, batch_size=3, shuffle=True, seed=9, epoch=counter.epoch)
    expected = batches_of(make_dataset(IMAGES, LABELS, 3, True, 9, counter.epoch))
    assert_same_batches(batches_of(arrays[index] for index in range(len(arrays))), expected)
    assert_same_batches(batches_of(arrays.as_dataset()), expected)


def test_the_order_follows_the_epoch_counter_whenever_a_batch_is_read():
    counter = EpochCounter()
    arrays = ArrayBatches(IMAGES, LABELS, batch_size=7, shuffle=True, seed=1, epoch=counter.epoch)
    orders = []
    for epoch in (0, 1, 0):
        counter.on_epoch_begin(epoch)
        orders.append(arrays[0][1].tolist())
    assert orders[0] == orders[2] != orders[1]
    assert sorted(orders[1]) == sorted(LABELS.tolist())


def test_without_an_epoch_counter_each_epoch_is_reshuffled_from_the_seed():
    def two_epochs(seed):
        arrays = ArrayBatches(IMAGES, LABELS, batch_size=7, shuffle=True, seed=seed)
        orders = []
        for _ in range(2):
            arrays.on_epoch_begin()
            orders.append(arrays[0][0][:, 0, 0, 0].tolist())
        return orders

    first, second = two_epochs(3)
    assert first != second and sorted(first) == sorted(second)
    assert two_epochs(3) == [first, second]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"batch_size": 0}, r"`batch_size` must be a positive int\. Received: batch_size=0"),
        (
            {"shuffle": True, "seed": None, "epoch": EpochCounter().epoch},
            r"`seed` must be an int to order by epoch\. Received: seed=None",
        ),
        ({"labels": LABELS[:3]}, r"`labels` must hold one label per image \(7\)"),
    ],
)
def test_bad_arguments_are_refused_in_one_line(arguments, message):
    arguments = {"labels": LABELS, **arguments}
    with pytest.raises(ValueError, match=message):
        ArrayBatches(IMAGES, **arguments)


def test_a_batch_past_the_end_is_an_index_error():
    with pytest.raises(IndexError, match="Batch index out of range: 3"):
        ArrayBatches(IMAGES, LABELS, batch_size=3)[3]


def test_mixing_reads_array_batches_through_tf_data():
    arrays = ArrayBatches(IMAGES, LABELS, batch_size=4)
    mixed = batches_of(mix_batches(arrays, mixing_layer("mixup", seed=0), classes=3))
    assert [images.shape for images, _ in mixed] == [(4, 4, 4, 1), (3, 4, 4, 1)]
    assert [labels.shape for _, labels in mixed] == [(4, 3), (3, 3)]
    np.testing.assert_allclose(np.concatenate([labels for _, labels in mixed]).sum(axis=1), 1)


class StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


@pytest.mark.parametrize("mixing", ["none", "cutmix"])
def test_a_stopped_run_resumes_as_the_run_never_stopped(tmp_path, mixing):
    data = make_idx_dataset(num_train=120, num_test=30, seed=5)
    settings = {
        "epochs": 2,
        "batch_size": 16,
        "optimizer": "adam",
        "learning_rate": 0.003,
        "lr_schedule": "cosine",
        "mixing": mixing,
        "model_overrides": {"dropout": 0.2, "activation": "relu"},
        "seed": 4,
    }
    train(tmp_path / "never", data=data, verbose=0, **settings)
    with pytest.raises(RuntimeError, match="stopped after 1 epochs"):
        train(tmp_path / "run", data=data, verbose=0, callbacks=[StopAfterFirstEpoch()], **settings)
    train(tmp_path / "run", data=data, verbose=0, **settings)

    runs = [tmp_path / "run", tmp_path / "never"]
    histories = [json.loads((run / "metrics.json").read_text())["history"] for run in runs]
    for history in histories:
        history.pop("train_seconds", None)
    assert histories[0] == histories[1]
    weights = [lb.load_model(run / "model.keras").get_weights() for run in runs]
    for resumed, never_stopped in zip(*weights, strict=True):
        np.testing.assert_array_equal(resumed, never_stopped)
