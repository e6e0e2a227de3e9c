"""The notebook's LeNet as the notebook writes it (a plain `keras.Sequential`), and its settings.

Only `keras` is needed here, so the Keras-on-JAX peer (a subprocess with `KERAS_BACKEND=jax`)
builds exactly the same network as the TensorFlow run; it is imported when the model is built,
so that the PyTorch peer, which reads only the settings, never loads TensorFlow.
"""

from __future__ import annotations

SEQUENTIAL = "sequential"
"""Name of the plain `keras.Sequential` model in figures and reports."""

NOTEBOOK_TRAINING = {"optimizer": "sgd", "learning_rate": 0.9, "batch_size": 32}
"""The notebook's training settings: SGD, learning rate 0.9, no momentum, batch 32."""


def plain_sequential():
    """The notebook's `lenet_model()`: Conv2D 6@5 sigmoid, MaxPool2D, Conv2D 16@5 sigmoid,
    MaxPool2D, Flatten, Dense 120/84/10 sigmoid (44,426 parameters), fed raw 0-255 pixels.

    Example:
    >>> plain_sequential().count_params()
    44426
    """
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(6, 5, activation="sigmoid"),
            keras.layers.MaxPool2D(pool_size=2, strides=2),
            keras.layers.Conv2D(16, 5, activation="sigmoid"),
            keras.layers.MaxPool2D(pool_size=2, strides=2),
            keras.layers.Flatten(),
            keras.layers.Dense(120, activation="sigmoid"),
            keras.layers.Dense(84, activation="sigmoid"),
            keras.layers.Dense(10, activation="sigmoid"),
        ],
        name=SEQUENTIAL,
    )
