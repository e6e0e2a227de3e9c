"""One compile factory: the optimizer by name, the loss and metric that fit the model's output.

Training, tuning and the benchmarks all compile through `compile_lenet`, so a model is trained
the same way wherever it is measured.

Example:
>>> from lenet_blocks import build_lenet
>>> model = compile_lenet(build_lenet(), "sgd", 0.9)
>>> type(model.optimizer).__name__, model.loss.get_config()["from_logits"]
('SGD', False)
"""

from __future__ import annotations

import keras

from lenet_blocks.choices import OPTIMIZERS, check_choice
from lenet_blocks.objectives import loss_and_metrics

__all__ = ["check_use_ema", "compile_lenet", "make_optimizer"]

_OPTIMIZER_CLASSES = {
    "sgd": keras.optimizers.SGD,
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "rmsprop": keras.optimizers.RMSprop,
}


def make_optimizer(
    name: str,
    learning_rate: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    use_ema: bool = False,
) -> keras.Optimizer:
    """A Keras optimizer by name (`sgd`, `adam`, `adamw`, `rmsprop`).

    Args:
        name: str. One of `lenet_blocks.choices.OPTIMIZERS`.
        learning_rate: float, or a `keras.optimizers.schedules.LearningRateSchedule`.
        momentum: float. Momentum of SGD and RMSprop (ignored by Adam/AdamW).
        nesterov: bool. Nesterov momentum (SGD only).
        weight_decay: float. Decoupled weight decay; 0 for none.
        use_ema: bool. Keep an exponential moving average of the weights (the optimizer's
            `use_ema`; `fit` ends with the averaged weights).

    Example:
    >>> make_optimizer("sgd", 0.9).get_config()["momentum"]
    0.0
    """
    check_choice("optimizer", name, OPTIMIZERS)
    if name == "adamw":
        return keras.optimizers.AdamW(
            learning_rate=learning_rate, weight_decay=weight_decay, use_ema=use_ema
        )
    options = {
        "learning_rate": learning_rate,
        "weight_decay": weight_decay or None,
        "use_ema": use_ema,
    }
    if name == "sgd":
        options.update(momentum=momentum, nesterov=nesterov)
    elif name == "rmsprop":
        options.update(momentum=momentum)
    return _OPTIMIZER_CLASSES[name](**options)


def check_use_ema(use_ema: bool) -> None:
    """Refuses `use_ema=True` on the JAX backend, where Keras loses the averaged weights.

    Keras' `fit` on JAX ends with the weights and their average sharing arrays, which the next
    compiled step frees: evaluating or saving the model then fails ("Array has been deleted").

    Args:
        use_ema: bool. Whether the optimizer is to average the weights.

    Raises:
        ValueError: `use_ema` on the JAX backend.

    Example:
    >>> check_use_ema(False)
    """
    backend = keras.backend.backend()
    if use_ema and backend == "jax":
        raise ValueError(
            "`use_ema` needs the TensorFlow or PyTorch backend: on JAX, Keras loses the "
            f"averaged weights after training. Received: backend={backend}"
        )


def compile_lenet(
    model: keras.Model,
    optimizer: str,
    learning_rate: float,
    *,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    use_ema: bool = False,
    label_smoothing: float = 0.0,
    soft_labels: bool = False,
    steps_per_execution: int = 1,
    jit_compile: bool | str = "auto",
) -> keras.Model:
    """Compiles `model` in place with `make_optimizer(...)` and `loss_and_metrics(model, ...)`.

    Args:
        model: a `build_lenet` (or any LeNet-family) model.
        optimizer, learning_rate, momentum, nesterov, weight_decay, use_ema: see
            `make_optimizer`.
        label_smoothing, soft_labels: see `objectives.loss_and_metrics`.
        steps_per_execution: int. Training steps per call of the compiled train function.
        jit_compile: Keras' `compile(jit_compile=...)`.

    Returns:
        `model`, compiled.

    Raises:
        ValueError: `use_ema` on the JAX backend (`check_use_ema`).
    """
    check_use_ema(use_ema)
    loss, metrics = loss_and_metrics(model, label_smoothing, soft_labels)
    model.compile(
        optimizer=make_optimizer(
            optimizer, learning_rate, momentum, nesterov, weight_decay, use_ema
        ),
        loss=loss,
        metrics=metrics,
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    return model
