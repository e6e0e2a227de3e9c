"""Keras on TensorFlow: the models, and the calls to time (training steps, forward passes, `fit`).

Training steps and forward passes are timed the way `fit` and `predict` run them: the model's
own `train_step` / `predict_step` in a `tf.function` with the model's `jit_compile`, fed either
a tensor already on the device or `get_next()` of a `lenet_blocks.pipeline.make_dataset`
iterator inside the function, as `fit` does. Whole `fit` epochs are timed for the notebook's
way of training and the package's pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from bench_lib.networks import NOTEBOOK_TRAINING, SEQUENTIAL, plain_sequential
from bench_lib.timing import Candidate
from lenet_blocks import build_lenet, get_preset
from lenet_blocks.objectives import loss_and_metrics
from lenet_blocks.pipeline import make_dataset
from lenet_blocks.training import make_optimizer

FRAMEWORK = "keras-tensorflow"


def training_settings(model_name: str) -> dict:
    """Optimizer, learning rate and batch size a model trains with: its preset's, or the
    notebook's for the plain `keras.Sequential`."""
    if model_name == SEQUENTIAL:
        return dict(NOTEBOOK_TRAINING)
    return get_preset(model_name)["training"]


def build_compiled(
    model_name: str,
    *,
    policy: str = "float32",
    jit_compile: bool | str = "auto",
    steps_per_execution: int = 1,
) -> keras.Model:
    """`build_lenet(model_name)` (or the plain Sequential) under a dtype policy, compiled with
    its training settings' optimizer and `lenet_blocks.objectives.loss_and_metrics(model)`."""
    keras.config.set_dtype_policy(policy)
    try:
        model = plain_sequential() if model_name == SEQUENTIAL else build_lenet(model_name)
    finally:
        keras.config.set_dtype_policy("float32")
    settings = training_settings(model_name)
    loss, metrics = loss_and_metrics(model)
    model.compile(
        optimizer=make_optimizer(settings["optimizer"], settings["learning_rate"]),
        loss=loss,
        metrics=metrics,
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


class StepFunctions:
    """A compiled model's training step and forward pass as `tf.function`s.

    The constructor runs `train_on_batch` on two samples once, which builds the optimizer and
    metric variables the way `fit` does before its first step.
    """

    def __init__(self, model: keras.Model):
        model.train_on_batch(np.zeros((2, 28, 28, 1), "float32"), np.zeros((2,), "int32"))
        jit = bool(model.jit_compile)
        self.train = tf.function(model.train_step, jit_compile=jit, reduce_retracing=True)
        self.forward = tf.function(model.predict_step, jit_compile=jit, reduce_retracing=True)

        @tf.function
        def train_from(iterator):
            return self.train(iterator.get_next())

        @tf.function
        def forward_from(iterator):
            return self.forward(iterator.get_next())

        self.train_from = train_from
        self.forward_from = forward_from


def _fetch(result) -> None:
    """Waits for a step's device work by copying one of its outputs to the host."""
    tf.nest.flatten(result)[0].numpy()


def step_candidate(
    name: str,
    functions: StepFunctions,
    *,
    mode: str,
    feed: str,
    batch_size: int,
    images: np.ndarray,
    labels: np.ndarray,
    device: str,
) -> Candidate:
    """One training step (`mode="train"`) or forward pass (`"infer"`) of `batch_size` samples.

    `feed="tensor"` feeds one float32 batch placed on `device` beforehand (no input cost);
    `feed="tf.data"` feeds `make_dataset` batches of the uint8 `images` (cast per batch,
    prefetched), through an iterator read inside the compiled function.
    """
    if feed == "tensor":
        with tf.device(device):
            x = tf.identity(tf.constant(images[:batch_size].astype("float32")))
            y = tf.identity(tf.constant(labels[:batch_size]))
        if mode == "train":
            return Candidate(name, lambda: functions.train((x, y)), batch_size, _fetch)
        return Candidate(name, lambda: functions.forward((x,)), batch_size, _fetch)
    whole = len(images) // batch_size * batch_size  # whole batches only: one shape to compile
    wanted_labels = labels[:whole] if mode == "train" else None
    iterator = iter(make_dataset(images[:whole], wanted_labels, batch_size).repeat())
    step = functions.train_from if mode == "train" else functions.forward_from
    return Candidate(name, lambda: step(iterator), batch_size, _fetch)


@dataclass(frozen=True)
class FitVariant:
    """One way of running `fit` on the reference network.

    Attributes:
        name: key of the variant in figures and reports.
        model: `"sequential"` (the notebook's own model) or a preset name.
        feed: `"numpy"` (`fit(x, y, batch_size=...)` on uint8 arrays, as the notebook does)
            or `"pipeline"` (`fit(make_dataset(...))`, as `lenet-blocks train` does).
        jit_compile: `compile(jit_compile=...)`; `"auto"` is Keras' default (no XLA on CPU).
        steps_per_execution: `compile(steps_per_execution=...)`.
        description: one line for the report.
    """

    name: str
    model: str
    feed: str
    jit_compile: bool | str
    steps_per_execution: int
    description: str


NOTEBOOK_FIT = FitVariant(
    "notebook_fit_numpy",
    SEQUENTIAL,
    "numpy",
    "auto",
    1,
    "the notebook: keras.Sequential, fit on NumPy uint8 arrays, compile defaults",
)
PACKAGE_FITS = (
    FitVariant(
        "package_fit",
        "notebook",
        "pipeline",
        "auto",
        1,
        "build_lenet('notebook'), fit on make_dataset, compile defaults (= lenet-blocks train)",
    ),
    FitVariant(
        "package_fit_xla",
        "notebook",
        "pipeline",
        True,
        1,
        "build_lenet('notebook'), fit on make_dataset, jit_compile=True",
    ),
    FitVariant(
        "package_fit_spe32",
        "notebook",
        "pipeline",
        "auto",
        32,
        "build_lenet('notebook'), fit on make_dataset, steps_per_execution=32",
    ),
    FitVariant(
        "package_fit_spe256",
        "notebook",
        "pipeline",
        "auto",
        256,
        "build_lenet('notebook'), fit on make_dataset, steps_per_execution=256",
    ),
    FitVariant(
        "package_fit_xla_spe32",
        "notebook",
        "pipeline",
        True,
        32,
        "build_lenet('notebook'), fit on make_dataset, jit_compile=True, steps_per_execution=32",
    ),
)


def fit_candidate(
    variant: FitVariant, *, name: str, images: np.ndarray, labels: np.ndarray, batch_size: int
) -> tuple[Candidate, bool]:
    """One `fit` epoch over `images` (float32 policy, shuffled): all of `fit`'s own costs
    (data adapter, iterator, callbacks, the step) count, as they do for a user.

    Returns:
        The candidate, and whether the model compiled with XLA (`"auto"` resolved).
    """
    model = build_compiled(
        variant.model,
        jit_compile=variant.jit_compile,
        steps_per_execution=variant.steps_per_execution,
    )
    if variant.feed == "numpy":

        def run():
            return model.fit(images, labels, batch_size=batch_size, epochs=1, verbose=0)

    else:
        dataset = make_dataset(images, labels, batch_size, shuffle=True, seed=0)

        def run():
            return model.fit(dataset, epochs=1, verbose=0, shuffle=False)  # it shuffles itself

    return Candidate(name, run, samples_per_call=len(images)), bool(model.jit_compile)
