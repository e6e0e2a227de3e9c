"""The training path's own callbacks on every backend: they leave Keras free to dispatch batch
callbacks to threads (JAX, PyTorch), and still stop at the first bad loss and time the epochs."""

import math

import keras
import pytest
from idx_helpers import make_dataset
from keras.src import backend as keras_backend

from lenet_blocks.checkpoint import EpochCheckpoint
from lenet_blocks.settings import RunSettings
from lenet_blocks.training import NonFiniteLossError, StopOnNonFiniteLoss, train


@pytest.fixture
def tiny_data():
    return make_dataset(num_train=120, num_test=30, seed=3)


def test_batch_callbacks_are_dispatched_asynchronously_where_the_backend_can(tmp_path):
    callbacks = [
        StopOnNonFiniteLoss(),
        EpochCheckpoint(tmp_path / "checkpoint", RunSettings(), write=False),
    ]
    dispatch = keras.callbacks.CallbackList(callbacks, add_history=True, add_progbar=False)
    assert dispatch._async_train == keras_backend.IS_THREAD_SAFE


def test_the_first_bad_batch_is_kept_when_batches_are_checked_out_of_order():
    stop = StopOnNonFiniteLoss()
    stop.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    stop.on_epoch_begin(2)
    stop.on_train_batch_end(7, {"loss": math.inf})
    stop.on_train_batch_end(3, {"loss": math.nan})
    stop.on_train_batch_end(9, {"loss": math.nan})
    stop.on_train_batch_end(1, {"loss": 0.5})
    assert stop.stopped_at == (2, 3) and math.isnan(stop.value)
    stop.model.stop_training = False
    stop.on_train_batch_end(4, {"loss": math.nan})
    assert not stop.model.stop_training  # stopped from fit's thread, at the next step:
    stop.on_train_batch_begin(10)
    assert stop.model.stop_training


def test_a_diverging_run_stops_with_the_error_on_this_backend(tmp_path, tiny_data):
    stopped = r"at epoch 1, step \d+; stopped\. Lower the learning rate"
    with pytest.raises(NonFiniteLossError, match=stopped):
        train(
            tmp_path / "run",
            data=tiny_data,
            epochs=2,
            batch_size=8,
            optimizer="sgd",
            learning_rate=1e30,
            model_overrides={"activation": "relu", "classifier_activation": None},
            verbose=0,
        )
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_each_epoch_is_timed_without_its_validation(tmp_path, tiny_data):
    metrics = train(tmp_path / "run", data=tiny_data, epochs=2, batch_size=16, verbose=0)
    seconds = metrics["history"]["train_seconds"]
    assert len(seconds) == 2 and all(0 < s < 120 for s in seconds)
    assert metrics["train_seconds"] == pytest.approx(sum(seconds))
