"""The notebook's network trained by hand-written TensorFlow: the floor of the step time (the
throughput ceiling) that TensorFlow's kernels allow at a batch size.

No Keras in the step: the weights of a freshly built notebook `keras.Sequential`, `tf.nn` ops
for its layers, the loss Keras computes on TensorFlow for its sigmoid output (softmax
cross-entropy of the last logits), plain SGD updates with `assign_sub`, no metrics. One call
runs many steps on one device tensor inside one `tf.function` (a `tf.while_loop`), so neither
Python, nor `fit`, nor an input pipeline costs anything. A Keras `fit` of the same layers does
all of this and more (metrics, loss tracking, its iterator), so, measured in the same
interleaved group, this figure is the ceiling for any Keras pipeline on TensorFlow with these
layers at this batch size (within the run's noise).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from bench_lib.networks import NOTEBOOK_TRAINING, plain_sequential
from bench_lib.timing import Candidate


def _forward(weights: list[tf.Variable], x: tf.Tensor) -> tf.Tensor:
    """The notebook's layers on NHWC images; returns the logits of the last dense layer."""
    conv1, bias1, conv2, bias2, dense1, dense_bias1, dense2, dense_bias2, dense3, dense_bias3 = (
        weights
    )
    h = tf.sigmoid(tf.nn.conv2d(x, conv1, 1, "VALID") + bias1)
    h = tf.nn.max_pool2d(h, 2, 2, "VALID")
    h = tf.sigmoid(tf.nn.conv2d(h, conv2, 1, "VALID") + bias2)
    h = tf.nn.max_pool2d(h, 2, 2, "VALID")
    h = tf.reshape(h, (tf.shape(h)[0], -1))
    h = tf.sigmoid(tf.matmul(h, dense1) + dense_bias1)
    h = tf.sigmoid(tf.matmul(h, dense2) + dense_bias2)
    return tf.matmul(h, dense3) + dense_bias3


def training_steps(images: np.ndarray, labels: np.ndarray, steps: int, device: str):
    """A function that runs `steps` SGD steps (the notebook's learning rate) on one batch.

    Args:
        images: one batch, uint8 or float32, NHWC (raw 0-255 pixels, as the notebook feeds).
        labels: its integer labels.
        steps: training steps per call.
        device: where the weights and the batch live (`"/CPU:0"`, `"/GPU:0"`).

    Returns:
        A `tf.function` of no arguments returning the last step's loss.

    Example:
    >>> run = training_steps(np.zeros((4, 28, 28, 1), "uint8"), np.zeros(4, "int32"), 2, "/CPU:0")
    >>> run().shape
    TensorShape([])
    """
    learning_rate = NOTEBOOK_TRAINING["learning_rate"]
    with tf.device(device):
        weights = [tf.Variable(w) for w in plain_sequential().get_weights()]
        x = tf.identity(tf.constant(images.astype("float32")))
        y = tf.identity(tf.constant(labels.astype("int32")))

    def step(index, _):
        with tf.GradientTape() as tape:
            logits = _forward(weights, x)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        for weight, gradient in zip(weights, tape.gradient(loss, weights), strict=True):
            weight.assign_sub(learning_rate * gradient)
        return index + 1, loss

    @tf.function
    def run():
        return tf.while_loop(lambda i, _: i < steps, step, (tf.constant(0), tf.constant(0.0)))[1]

    return run


def floor_candidate(
    name: str, *, images: np.ndarray, labels: np.ndarray, steps: int, device: str
) -> Candidate:
    """`training_steps` as a timed candidate: one call is `steps` steps of `len(images)`."""
    run = training_steps(images, labels, steps, device)
    return Candidate(name, run, steps * len(images), lambda loss: loss.numpy())
