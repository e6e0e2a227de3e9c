"""HyperLeNet's search space, declared once: `HYPERPARAMETERS`.

Each dimension is one `Hyperparameter` row: its kind (`"choice"`, `"boolean"` or
`"float_log"`), the values searched, the default (the notebook's value), the condition that makes
it active and a description. Everything else derives from the table: the keras-tuner
registration (`register`), the check of the values a user holds fixed (`validate_fixed`), the
reference configuration (`reference_hyperparameters`) and the table of docs/tuning.md
(`search_space_markdown`).

Example:
>>> import keras_tuner
>>> hp = keras_tuner.HyperParameters()
>>> register(hp, "kernel_size"), hp.space[0].values
(5, [3, 5, 7])
>>> HYPERPARAMETERS["sgd_learning_rate"].search_space
'0.001 to 1, log scale'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

import keras
import keras_tuner

from lenet_blocks.choices import AUGMENTATIONS, LR_SCHEDULES, MIXINGS
from lenet_blocks.layers.conv_block import CONVOLUTIONS_RULE, is_convolution_count
from lenet_blocks.regularization import AUGMENTATION_FACTOR
from lenet_blocks.validation import is_number, is_positive_int

__all__ = [
    "HYPERPARAMETERS",
    "Hyperparameter",
    "diff_from_reference",
    "learning_rate_name",
    "reference_hyperparameters",
    "register",
    "search_space_markdown",
    "validate_fixed",
]


class Rule(NamedTuple):
    """What a value held fixed must be, when it may lie outside the searched values."""

    text: str
    check: Callable[[object], bool]


def _is_keras_activation(value) -> bool:
    try:
        return isinstance(value, str) and keras.activations.get(value) is not None
    except ValueError:
        return False


POSITIVE_INT = Rule("a positive int", is_positive_int)
KERAS_ACTIVATION = Rule("the name of a Keras activation", _is_keras_activation)


class Hyperparameter(NamedTuple):
    """One dimension of `HyperLeNet`'s search space.

    Attributes:
        kind: `"choice"` (`hp.Choice`), `"boolean"` (`hp.Boolean`) or `"float_log"`
            (`hp.Float` sampled on a log scale).
        values: the values searched: the choices, `(True, False)`, or `(min, max)`.
        default: the notebook's (reference) value, which is also the keras-tuner default.
        active_when: `None` (always active) or `(parent name, parent values)`.
        description: what it changes.
        fixed_rule: what a value held with `fixed` must be, or `None`: then one of the searched
            values (a choice), a bool, or a float > 0 (a `float_log`).
    """

    kind: str
    values: tuple
    default: object
    active_when: tuple[str, tuple] | None
    description: str
    fixed_rule: Rule | None = None

    @property
    def search_space(self) -> str:
        """The values searched, in words (the docs table's column)."""
        if self.kind == "float_log":
            low, high = self.values
            return f"{low:g} to {high:g}, log scale"
        return ", ".join(repr(v) if isinstance(v, str) else str(v) for v in self.values)

    def accepts(self, value) -> tuple[bool, str]:
        """`(whether value may be held fixed, the rule in words)`."""
        if self.fixed_rule is not None:
            return self.fixed_rule.check(value), self.fixed_rule.text
        if self.kind == "boolean":
            return isinstance(value, bool), "a bool"
        if self.kind == "float_log":
            return is_number(value) and value > 0, "a float > 0"
        return not isinstance(value, bool) and value in self.values, f"one of {self.values}"


def _choice(values, default, description, active_when=None, fixed_rule=None) -> Hyperparameter:
    return Hyperparameter("choice", tuple(values), default, active_when, description, fixed_rule)


def _boolean(default, description, active_when=None) -> Hyperparameter:
    return Hyperparameter("boolean", (True, False), default, active_when, description)


def _float_in(low, high, closed: bool) -> Rule:
    text = f"a float in [{low:g}, {high:g}{']' if closed else ')'}"
    return Rule(text, lambda v: is_number(v) and low <= v and (v <= high if closed else v < high))


# The searched optimizers (not rmsprop), each with its own learning-rate range:
# name -> (min, max, default), sampled on a log scale.
_LEARNING_RATES = {"sgd": (1e-3, 1.0, 0.9), "adam": (1e-4, 1e-2, 1e-3), "adamw": (1e-4, 1e-2, 1e-3)}


def learning_rate_name(optimizer: str) -> str:
    """The hyperparameter holding `optimizer`'s learning rate.

    Example:
    >>> learning_rate_name("adam")
    'adam_learning_rate'
    """
    return f"{optimizer}_learning_rate"


HYPERPARAMETERS: dict[str, Hyperparameter] = {
    "blocks": _choice(
        (2, 3),
        2,
        "Convolution blocks. A third block always pads 'same', so every point of the space "
        "fits 28x28 images.",
    ),
    "filters_1": _choice((6, 12, 24, 48), 6, "Filters of block 1.", fixed_rule=POSITIVE_INT),
    "filters_2": _choice((16, 32, 64, 128), 16, "Filters of block 2.", fixed_rule=POSITIVE_INT),
    "filters_3": _choice(
        (32, 64, 128), 64, "Filters of block 3.", ("blocks", (3,)), fixed_rule=POSITIVE_INT
    ),
    "kernel_size": _choice((3, 5, 7), 5, "Convolution kernel side.", fixed_rule=POSITIVE_INT),
    "padding": _choice(("valid", "same"), "valid", "Convolution padding of blocks 1 and 2."),
    "convolutions": _choice(
        (1, 2),
        1,
        "Convolutions of each block before its pooling (2: VGG-style blocks; a block's later "
        "convolutions pad 'same', so the feature map sizes do not change).",
        fixed_rule=Rule(CONVOLUTIONS_RULE, is_convolution_count),
    ),
    "block_pooling": _choice(("max", "avg"), "max", "Subsampling in each block (2x2, stride 2)."),
    "global_pooling": _choice(
        ("none", "avg"),
        "none",
        "Global pooling of the last block's feature maps before the dense head (`'avg'`: "
        "`build_lenet(pooling='avg')`, the head then sees one value per filter).",
    ),
    "batch_norm": _boolean(False, "Batch normalization after each convolution."),
    "activation": _choice(
        ("sigmoid", "tanh", "relu", "elu", "gelu"),
        "sigmoid",
        "Activation of every hidden layer.",
        fixed_rule=KERAS_ACTIVATION,
    ),
    "classifier_activation": _choice(
        ("sigmoid", "softmax"),
        "sigmoid",
        "Activation of the output layer (the loss normalizes sigmoid outputs).",
        fixed_rule=KERAS_ACTIVATION,
    ),
    "units_1": _choice(
        (60, 120, 240, 480), 120, "Units of dense layer 1.", fixed_rule=POSITIVE_INT
    ),
    "units_2": _choice((42, 84, 168, 336), 84, "Units of dense layer 2.", fixed_rule=POSITIVE_INT),
    "dropout": _choice(
        (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
        0.0,
        "Dropout rate after each hidden dense layer.",
        fixed_rule=_float_in(0, 1, closed=False),
    ),
    "include_rescaling": _boolean(
        False, "Scale pixels by 1/255 in the model (the notebook does not)."
    ),
    "augmentation": _choice(
        AUGMENTATIONS,
        "none",
        f"Training-only RandomTranslation (and RandomZoom) by up to {AUGMENTATION_FACTOR:g} "
        "of the image side, zero fill, before the LeNet (pad-and-crop).",
    ),
    "horizontal_flip": _boolean(
        False,
        "Training-only `RandomFlip('horizontal')` first (label-preserving for Fashion-MNIST).",
    ),
    "random_erasing": _choice(
        (0.0, 0.25, 0.5),
        0.0,
        "Probability of training-only `RandomErasing` (cutout) of a patch of each image; 0 is "
        "none.",
        fixed_rule=_float_in(0, 1, closed=True),
    ),
    "mixing": _choice(
        MIXINGS,
        "none",
        "`keras.layers.MixUp` or `CutMix` of the training batches (soft labels; validation "
        "keeps integer labels).",
    ),
    "label_smoothing": _choice(
        (0.0, 0.05, 0.1, 0.2),
        0.0,
        "Label smoothing of the cross-entropy (`losses.SmoothedCrossentropy`); 0 is none.",
        fixed_rule=_float_in(0, 1, closed=False),
    ),
    "optimizer": _choice(tuple(_LEARNING_RATES), "sgd", "Keras optimizer."),
    **{
        learning_rate_name(optimizer): Hyperparameter(
            "float_log",
            (low, high),
            default,
            ("optimizer", (optimizer,)),
            f"Learning rate of {optimizer}.",
        )
        for optimizer, (low, high, default) in _LEARNING_RATES.items()
    },
    "lr_schedule": _choice(
        LR_SCHEDULES,
        "constant",
        "Learning rate over the steps of `fit`: constant, cosine decay to 0, linear warm-up "
        "then cosine, or one-cycle (`lenet_blocks.regularization.learning_rate_schedule`).",
    ),
    "use_ema": _boolean(
        False,
        "Exponential moving average of the weights (the optimizer's `use_ema`); validation "
        "and the trial's model use the averaged weights.",
    ),
    "momentum": _choice(
        (0.0, 0.5, 0.9, 0.99),
        0.0,
        "SGD momentum.",
        ("optimizer", ("sgd",)),
        fixed_rule=_float_in(0, 1, closed=True),
    ),
    "nesterov": _boolean(False, "SGD Nesterov momentum.", ("optimizer", ("sgd",))),
    "weight_decay": _choice(
        (0.0, 1e-5, 1e-4, 1e-3, 1e-2),
        0.0,
        "Decoupled weight decay of all weights (the optimizer's `weight_decay`, scaled by the "
        "learning rate); 0 is none. adamw with 0 is adam.",
        fixed_rule=Rule("a float >= 0", lambda v: is_number(v) and v >= 0),
    ),
    "batch_size": _choice(
        (16, 32, 64, 128, 256),
        32,
        "Training batch size (set in `HyperLeNet.fit`).",
        fixed_rule=POSITIVE_INT,
    ),
}


def register(hp, name: str, fixed: Mapping[str, object] | None = None):
    """Registers hyperparameter `name` in `hp` as its table row says; returns its value.

    A name in `fixed` becomes `hp.Fixed`. A conditional one is registered in its parent's
    `hp.conditional_scope`, and is `None` while inactive.

    Args:
        hp: a `keras_tuner.HyperParameters`.
        name: a key of `HYPERPARAMETERS`.
        fixed: optional dict of name -> value held fixed (checked by `validate_fixed`).

    Example:
    >>> import keras_tuner
    >>> hp = keras_tuner.HyperParameters()
    >>> register(hp, "optimizer", {"optimizer": "adam"}), register(hp, "momentum")
    ('adam', None)
    """
    spec = HYPERPARAMETERS[name]
    if spec.active_when is None:
        return _register(hp, name, spec, fixed or {})
    parent, parent_values = spec.active_when
    with hp.conditional_scope(parent, list(parent_values)):
        return _register(hp, name, spec, fixed or {})


def _register(hp, name: str, spec: Hyperparameter, fixed: Mapping[str, object]):
    if name in fixed:
        return hp.Fixed(name, fixed[name])
    if spec.kind == "boolean":
        return hp.Boolean(name, default=spec.default)
    if spec.kind == "float_log":
        low, high = spec.values
        return hp.Float(name, low, high, sampling="log", default=spec.default)
    return hp.Choice(name, list(spec.values), default=spec.default)


def validate_fixed(fixed) -> dict:
    """Checks the names and values of `fixed` against the table; returns it as a dict.

    Raises:
        ValueError: for a name that is not a hyperparameter, or a value its row rejects.

    Example:
    >>> validate_fixed({"blocks": 4})
    Traceback (most recent call last):
    ...
    ValueError: `fixed['blocks']` must be one of (2, 3). Received: fixed={'blocks': 4}
    """
    if fixed is None:
        return {}
    if not isinstance(fixed, Mapping):
        raise ValueError(
            f"`fixed` must be a dict of hyperparameter name -> value. Received: fixed={fixed!r}"
        )
    for name, value in fixed.items():
        if name not in HYPERPARAMETERS:
            raise ValueError(
                f"`fixed` names must be HyperLeNet hyperparameters, one of "
                f"{list(HYPERPARAMETERS)}. Received: fixed={{{name!r}: {value!r}}}"
            )
        valid, rule = HYPERPARAMETERS[name].accepts(value)
        if not valid:
            raise ValueError(
                f"`fixed[{name!r}]` must be {rule}. Received: fixed={{{name!r}: {value!r}}}"
            )
    return dict(fixed)


def reference_hyperparameters() -> dict:
    """The notebook's value of every hyperparameter active in the reference configuration.

    These are the values `HyperLeNet().build(keras_tuner.HyperParameters())` picks.

    Example:
    >>> reference = reference_hyperparameters()
    >>> reference["optimizer"], reference["sgd_learning_rate"], reference["batch_size"]
    ('sgd', 0.9, 32)
    >>> "adam_learning_rate" in reference
    False
    """
    reference = {}
    for name, spec in HYPERPARAMETERS.items():
        if spec.active_when is None or reference.get(spec.active_when[0]) in spec.active_when[1]:
            reference[name] = spec.default
    return reference


def diff_from_reference(values: Mapping | keras_tuner.HyperParameters) -> dict:
    """The hyperparameters whose value differs from the notebook's, in search-space order.

    A name counts as different when its value is not the reference value, or when it is not
    active in the reference at all (e.g. `adam_learning_rate`, `filters_3`). keras-tuner's own
    bookkeeping entries (`tuner/epochs`, ...) are left out.

    Args:
        values: a dict of hyperparameter values (`HyperParameters.values`) or a
            `keras_tuner.HyperParameters`.

    Example:
    >>> diff_from_reference({"optimizer": "adam", "adam_learning_rate": 0.001, "blocks": 2})
    {'optimizer': 'adam', 'adam_learning_rate': 0.001}
    """
    if isinstance(values, keras_tuner.HyperParameters):
        values = values.values
    reference = reference_hyperparameters()
    order = {name: index for index, name in enumerate(HYPERPARAMETERS)}
    changed = {}
    for name in sorted(values, key=lambda n: (order.get(n, len(order)), n)):
        if name.startswith("tuner/"):
            continue
        value = values[name]
        if name not in reference or not _same_value(value, reference[name]):
            changed[name] = value
    return changed


def _same_value(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


def search_space_markdown() -> str:
    """The search-space table of docs/tuning.md, generated from `HYPERPARAMETERS`.

    Example:
    >>> print(search_space_markdown().splitlines()[2])
    | `blocks` | `2` | 2, 3 | always | Convolution blocks. A third block always pads 'same', so every point of the space fits 28x28 images. |
    """  # noqa: E501
    lines = [
        "| name | default (reference) | searched values | active when | description |",
        "|---|---|---|---|---|",
    ]
    for name, spec in HYPERPARAMETERS.items():
        when = "always"
        if spec.active_when is not None:
            parent, parent_values = spec.active_when
            when = f"`{parent}` is " + " or ".join(f"`{v!r}`" for v in parent_values)
        lines.append(
            f"| `{name}` | `{spec.default!r}` | {spec.search_space} | {when} | {spec.description} |"
        )
    return "\n".join(lines)
