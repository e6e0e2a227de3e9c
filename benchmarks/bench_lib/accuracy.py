"""Time to 0.80 / 0.90 test accuracy on the real Fashion-MNIST, DAWNBench style: the notebook
as written, then each preset with its own training settings through the package's pipeline."""

from __future__ import annotations

import time

import keras

from bench_lib import keras_steps
from bench_lib.keras_steps import HAS_TF_DATA, SEQUENTIAL
from lenet_blocks.datasets import load_fashion_mnist
from lenet_blocks.regularization import learning_rate_schedule

EVALUATION_BATCH = 1000


class Clock(keras.callbacks.Callback):
    """Training seconds (stopped while `fit` evaluates the test set at each epoch's end) and
    the accuracy curve; stops `fit` at the last threshold or after `max_seconds`. The clock
    starts when the callback is made, so `fit`'s setup, tracing and compilation count."""

    def __init__(self, thresholds: list[float], max_seconds: float, samples_per_epoch: int):
        super().__init__()
        self.thresholds, self.max_seconds = thresholds, max_seconds
        self.samples_per_epoch, self.curve = samples_per_epoch, []
        self.spent, self.since = 0.0, time.perf_counter()

    def on_test_begin(self, logs=None):
        self.spent += time.perf_counter() - self.since

    def on_epoch_end(self, epoch, logs=None):
        accuracy = float(logs["val_accuracy"])
        self.curve.append([round(self.spent, 3), (epoch + 1) * self.samples_per_epoch, accuracy])
        if accuracy >= max(self.thresholds) or self.spent >= self.max_seconds:
            self.model.stop_training = True
        self.since = time.perf_counter()

    def result(self) -> dict:
        """Seconds to each threshold (first evaluation at or above it), best accuracy, curve."""
        reached = {
            f"{t:g}": next((s for s, _, a in self.curve if a >= t), None) for t in self.thresholds
        }
        best = max((a for _, _, a in self.curve), default=None)
        return {"time_to_accuracy": reached, "best_accuracy": best, "curve": self.curve}


def run(name: str, data: tuple, config: dict) -> dict:
    """Trains one row (`"sequential"`: the notebook as written, else a preset through the
    pipeline), evaluating every `eval_every` samples (whole steps), until the cap."""
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(config["seed"])
    pipeline = name != SEQUENTIAL
    spe = config["steps_per_execution"] if pipeline else 1
    jit = config["jit_compile"] if pipeline else "auto"
    model = keras_steps.compiled_model(name, jit_compile=jit, steps_per_execution=spe)
    settings = keras_steps.training_settings(name)
    batch = settings["batch_size"]
    target = max(1, round(config["eval_every"] / batch))
    if pipeline:
        from lenet_blocks.pipeline import make_dataset

        steps = max(spe, round(target / spe) * spe)
        train = make_dataset(x_train, y_train, batch, shuffle=True, seed=config["seed"]).repeat()
        inputs = {"x": train, "shuffle": False}  # shuffled by make_dataset
        inputs["validation_data"] = make_dataset(x_test, y_test, EVALUATION_BATCH)
    else:
        epoch_steps = -(-len(x_train) // batch)
        steps = min(
            (d for d in range(1, epoch_steps + 1) if epoch_steps % d == 0),
            key=lambda d: abs(d - target),
        )
        inputs = {"x": x_train, "y": y_train, "batch_size": batch}
        inputs.update(validation_data=(x_test, y_test), validation_batch_size=EVALUATION_BATCH)
    schedule = settings.get("lr_schedule", "constant")  # over as many evaluation chunks:
    chunks = max(1, round(settings.get("epochs", 1) * len(x_train) / (steps * batch)))
    if schedule != "constant":  # a function of the optimizer's step, over the chunks' steps
        rate = learning_rate_schedule(schedule, settings["learning_rate"], chunks * steps)
        model.optimizer.learning_rate = rate
    clock = Clock(config["thresholds"], config["max_seconds"], steps * batch)
    model.fit(**inputs, steps_per_epoch=steps, epochs=10**6, verbose=0, callbacks=[clock])
    settings = (
        f"{settings['optimizer']} lr {settings['learning_rate']}, batch {batch}, {schedule} "
        f"schedule, {'make_dataset' if pipeline else 'NumPy arrays'}, "
        f"jit_compile={bool(model.jit_compile)}, steps_per_execution={spe}"
    )
    label = f"{name} (package pipeline)" if pipeline else "the notebook as written"
    return {
        "name": label,
        "model": name,
        "settings": settings,
        "status": "measured",
        **clock.result(),
    }


def time_to_accuracy(config: dict, progress) -> list[dict]:
    """Every row, one after another; a preset row needs tf.data (TensorFlow installed)."""
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(config["data_dir"])
    data = ((x_train[..., None], y_train), (x_test[..., None], y_test))
    rows = []
    for name in [SEQUENTIAL, *config["models"]]:
        if name != SEQUENTIAL and not HAS_TF_DATA:
            rows.append({"name": name, "model": name, "settings": "-", "status": "needs tf.data"})
        else:
            rows.append(run(name, data, config))
        progress.update()
    return rows
