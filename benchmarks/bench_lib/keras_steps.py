"""Keras on the backend in use: the models, compiled by the package, and the calls to time,
compiled as `fit` and `predict` compile them (docs/benchmarks.md, "What the figures mean")."""

from __future__ import annotations

import importlib.util

import keras
import numpy as np

from lenet_blocks import build_lenet, get_preset
from lenet_blocks.compile import compile_lenet

BACKEND = keras.backend.backend()
FRAMEWORK = f"keras-{BACKEND}"
SEQUENTIAL = "sequential"
NOTEBOOK_TRAINING = {"optimizer": "sgd", "learning_rate": 0.9, "batch_size": 32}
"""The notebook's training settings: SGD, learning rate 0.9, no momentum, batch 32."""
try:  # whether `lenet_blocks.pipeline.make_dataset` (tf.data) can feed this run
    HAS_TF_DATA = BACKEND == "tensorflow" or importlib.util.find_spec("tensorflow") is not None
except ImportError:  # a finder that refuses it
    HAS_TF_DATA = False


def synthetic_data(samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images `(samples, 28, 28, 1)` and int32 labels in 0..9 (throughput does
    not depend on pixel values).

    Example:
    >>> images, labels = synthetic_data(4)
    >>> images.shape, images.dtype.name, labels.dtype.name
    ((4, 28, 28, 1), 'uint8', 'int32')
    """
    generator = np.random.default_rng(seed)
    images = generator.integers(0, 256, size=(samples, 28, 28, 1), dtype=np.uint8)
    return images, generator.integers(0, 10, size=(samples,), dtype=np.int32)


def plain_sequential() -> keras.Sequential:
    """The notebook's `lenet_model()`: Conv2D 6@5, MaxPool2D, Conv2D 16@5, MaxPool2D, Flatten,
    Dense 120/84/10, all sigmoid, fed raw 0-255 pixels.

    Example:
    >>> plain_sequential().count_params()
    44426
    """
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(6, 5, activation="sigmoid"),
            layers.MaxPool2D(pool_size=2, strides=2),
            layers.Conv2D(16, 5, activation="sigmoid"),
            layers.MaxPool2D(pool_size=2, strides=2),
            layers.Flatten(),
            *(layers.Dense(units, activation="sigmoid") for units in (120, 84, 10)),
        ],
        name=SEQUENTIAL,
    )


def training_settings(name: str) -> dict:
    """The training settings of a preset, or the notebook's for the plain Sequential."""
    return dict(NOTEBOOK_TRAINING) if name == SEQUENTIAL else get_preset(name)["training"]


def compiled_model(name: str, policy: str = "float32", **compile_options) -> keras.Model:
    """`build_lenet(name)` (or the plain Sequential) under a dtype policy, compiled by
    `lenet_blocks.compile.compile_lenet` with its training settings' optimizer (its constant
    learning rate: a schedule does not change a step's work).

    Example:
    >>> compiled_model("notebook").optimizer.name
    'sgd'
    """
    keras.config.set_dtype_policy(policy)
    try:
        model = plain_sequential() if name == SEQUENTIAL else build_lenet(name)
    finally:
        keras.config.set_dtype_policy("float32")
    settings = training_settings(name)
    options = {
        key: settings[key] for key in ("momentum", "nesterov", "weight_decay") if key in settings
    }
    return compile_lenet(
        model, settings["optimizer"], settings["learning_rate"], **options, **compile_options
    )


def sync(result) -> None:
    """Waits for a call's device work by copying its first output to the host."""
    keras.ops.convert_to_numpy(keras.tree.flatten(result)[0])


class Steps:
    """A compiled model's training step, `loop_steps` training steps in one call, and forward
    pass, compiled as `fit` compiles them on this backend. The constructor runs
    `train_on_batch` once, which builds the optimizer and metric variables as `fit` does."""

    def __init__(self, model: keras.Model, loop_steps: int):
        model.train_on_batch(np.zeros((2, 28, 28, 1), "float32"), np.zeros((2,), "int32"))
        jit = bool(model.jit_compile)
        if BACKEND == "jax":
            self._jax(model, loop_steps)
            return
        import tensorflow as tf

        self.train = tf.function(model.train_step, jit_compile=jit, reduce_retracing=True)
        self.predict = tf.function(model.predict_step, jit_compile=jit, reduce_retracing=True)

        @tf.function(jit_compile=jit)
        def train_loop(data):
            for _ in tf.range(loop_steps - 1):
                model.train_step(data)
            return model.train_step(data)

        self.train_loop = train_loop
        self.train_from = tf.function(lambda iterator: self.train(iterator.get_next()))
        self.predict_from = tf.function(lambda iterator: self.predict(iterator.get_next()))

    def _jax(self, model: keras.Model, loop_steps: int) -> None:
        import jax

        variables = (model.trainable_variables, model.non_trainable_variables)
        variables += (model.optimizer.variables, model.metrics_variables)
        self.state = tuple([v.value for v in group] for group in variables)
        step = jax.jit(lambda state, data: model.train_step(state, data)[1], donate_argnums=0)
        loop = jax.jit(
            lambda state, data: jax.lax.fori_loop(
                0, loop_steps, lambda _, state: model.train_step(state, data)[1], state
            ),
            donate_argnums=0,
        )
        forward = jax.jit(lambda state, data: model.predict_step(state, data)[0])

        def stateful(function):
            def call(data):
                self.state = function(self.state, data)
                return self.state[0]

            return call

        self.train, self.train_loop = stateful(step), stateful(loop)
        self.predict = lambda data: forward(self.state[:2], data)
        self.train_from = lambda iterator: self.train(next(iterator))
        self.predict_from = lambda iterator: self.predict(next(iterator))


def to_device(array: np.ndarray, placement: str):
    """`array` as a tensor placed on the device (`describe_device()["placement"]`)."""
    if BACKEND == "jax":
        import jax

        return jax.device_put(array)
    import tensorflow as tf

    with tf.device(placement):
        return tf.identity(tf.constant(array))


FIT_VARIANTS = (
    ("defaults", SEQUENTIAL, "numpy", "auto", 1),
    ("defaults", "notebook", "tf.data", "auto", 1),
    ("jit", "notebook", "tf.data", True, 1),
    ("spe32", "notebook", "tf.data", "auto", 32),
    ("spe256", "notebook", "tf.data", "auto", 256),
    ("jit-spe32", "notebook", "tf.data", True, 32),
)
"""`(compiler, model, feed, jit_compile, steps_per_execution)` of each `fit` timed: the
notebook's (Sequential, NumPy uint8 arrays, compile defaults), then the package's pipeline
(`make_dataset`) with compile defaults (= `lenet-blocks train`), XLA, steps per execution."""


def fit_call(variant: tuple, images: np.ndarray, labels: np.ndarray, batch_size: int):
    """One `fit` epoch over `images` (shuffled) of a `FIT_VARIANTS` entry: all of `fit`'s own
    costs count."""
    _, model, feed, jit_compile, steps_per_execution = variant
    model = compiled_model(model, jit_compile=jit_compile, steps_per_execution=steps_per_execution)
    if feed == "numpy":
        return lambda: model.fit(images, labels, batch_size=batch_size, epochs=1, verbose=0)
    from lenet_blocks.pipeline import make_dataset

    dataset = make_dataset(images, labels, batch_size, shuffle=True, seed=0)
    return lambda: model.fit(dataset, epochs=1, verbose=0, shuffle=False)  # shuffled already
