"""The notebook's LeNet in Keras on the JAX backend: throughput and time to accuracy.

Run only inside `peer_worker`, started with `KERAS_BACKEND=jax`. The model is the same plain
`keras.Sequential` as in the TensorFlow run, compiled by `jax.jit` (XLA) through Keras'
stateless API (`stateless_call`, `optimizer.stateless_apply`), as Keras' own JAX trainer does.
Keras on JAX computes the sigmoid output's cross-entropy from the normalized outputs (the
TensorFlow backend uses the logits before the sigmoid), a small difference in the loss only.
"""

from __future__ import annotations

import functools

import jax
import keras
import numpy as np

from bench_lib.accuracy_clock import AccuracyClock, train_until_accurate
from bench_lib.data import synthetic_data
from bench_lib.networks import NOTEBOOK_TRAINING, plain_sequential
from bench_lib.timing import Candidate, repeated_step


class Trainer:
    """The Sequential model, its SGD state and the jitted training step and forward pass."""

    def __init__(self):
        self.model = plain_sequential()
        self.optimizer = keras.optimizers.SGD(learning_rate=NOTEBOOK_TRAINING["learning_rate"])
        self.optimizer.build(self.model.trainable_variables)
        loss = keras.losses.SparseCategoricalCrossentropy()

        def compute_loss(trainable, non_trainable, x, y):
            outputs, non_trainable = self.model.stateless_call(
                trainable, non_trainable, x, training=True
            )
            return loss(y, outputs), non_trainable

        gradient = jax.value_and_grad(compute_loss, has_aux=True)

        def train_step(state, x, y):
            trainable, non_trainable, optimizer_state = state
            (value, non_trainable), grads = gradient(trainable, non_trainable, x, y)
            trainable, optimizer_state = self.optimizer.stateless_apply(
                optimizer_state, grads, trainable
            )
            return value, (trainable, non_trainable, optimizer_state)

        def forward(trainable, non_trainable, x):
            return self.model.stateless_call(trainable, non_trainable, x, training=False)[0]

        self._train_step = jax.jit(train_step, donate_argnums=0)
        self._forward = jax.jit(forward)
        self.state = (
            [v.value for v in self.model.trainable_variables],
            [v.value for v in self.model.non_trainable_variables],
            [v.value for v in self.optimizer.variables],
        )

    def train_step(self, x, y):
        """One full optimizer step; returns the loss."""
        value, self.state = self._train_step(self.state, x, y)
        return value

    def predict(self, x):
        """The model's outputs for `x`."""
        return self._forward(self.state[0], self.state[1], x)


def _sync(result) -> None:
    result.block_until_ready()


@functools.cache
def _shared_trainer(seed: int) -> Trainer:
    """One trainer for all batch sizes and modes (jitted code is reused)."""
    keras.utils.set_random_seed(seed)
    return Trainer()


def describe() -> dict:
    """The device JAX computes on, and the versions."""
    return {
        "device": str(jax.devices()[0]),
        "versions": {"jax": jax.__version__, "keras": keras.__version__},
    }


def candidate(spec: dict) -> Candidate:
    """A call of `steps_per_call` training steps (`mode="train"`) or forward passes
    (`"infer"`) on one device array of `batch_size` synthetic samples.

    `spec` keys: `name`, `mode`, `batch_size`, `steps_per_call`, `seed`.
    """
    trainer = _shared_trainer(spec["seed"])
    images, labels = synthetic_data(spec["batch_size"], spec["seed"])
    x, y = jax.device_put(images.astype("float32")), jax.device_put(labels)
    step = trainer.train_step if spec["mode"] == "train" else lambda x, y: trainer.predict(x)
    return repeated_step(
        spec["name"], step, x, y, spec["steps_per_call"], spec["batch_size"], _sync
    )


def time_to_accuracy(spec: dict, data: dict) -> dict:
    """Trains with the notebook's settings until the thresholds or the time cap.

    `spec` keys: `thresholds`, `max_seconds`, `eval_every`, `seed`; `data` holds uint8
    `x_train`, `y_train`, `x_test`, `y_test`.
    """
    keras.utils.set_random_seed(spec["seed"])
    trainer = Trainer()
    x_train = jax.device_put(data["x_train"].astype("float32"))
    y_train = jax.device_put(data["y_train"].astype("int32"))
    x_test = jax.device_put(data["x_test"].astype("float32"))
    y_test = np.asarray(data["y_test"])

    gather = jax.jit(lambda x, y, index: (x[index], y[index]))  # one dispatch per batch

    def train_step(batch: np.ndarray):
        return trainer.train_step(*gather(x_train, y_train, batch))

    def evaluate() -> float:
        starts = range(0, len(y_test), 1000)
        outputs = [np.asarray(trainer.predict(x_test[i : i + 1000])) for i in starts]
        return float(np.mean(np.concatenate(outputs).argmax(axis=1) == y_test))

    clock = AccuracyClock(tuple(spec["thresholds"]), spec["max_seconds"])
    return train_until_accurate(
        train_step,
        evaluate,
        clock,
        samples=len(data["x_train"]),
        batch_size=NOTEBOOK_TRAINING["batch_size"],
        eval_every=spec["eval_every"],
        seed=spec["seed"],
        sync=_sync,
    )
