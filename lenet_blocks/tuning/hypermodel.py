"""`HyperLeNet`: a `keras_tuner.HyperModel` whose defaults are the notebook's LeNet and training.

Example:
>>> import keras_tuner
>>> hp = keras_tuner.HyperParameters()
>>> model = HyperLeNet().build(hp)
>>> model.count_params(), type(model.optimizer).__name__, hp.get("batch_size")
(44426, 'SGD', 32)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import keras_tuner
import tensorflow as tf
from keras_tuner.src.engine.tuner_utils import SaveBestEpoch

from lenet_blocks.compile import check_use_ema, compile_lenet
from lenet_blocks.pipeline import EpochCounter, batches_per_epoch, make_batches
from lenet_blocks.regularization import (
    TorchEpochSeed,
    augmented_lenet,
    learning_rate_schedule,
    mix_and_average,
)
from lenet_blocks.tuning.resume import TrialCheckpoint
from lenet_blocks.tuning.space import HYPERPARAMETERS, learning_rate_name, register, validate_fixed
from lenet_blocks.validation import check_class_names, is_positive_int

__all__ = ["HyperLeNet"]


class HyperLeNet(keras_tuner.HyperModel):
    """A LeNet hypermodel whose defaults are the notebook's LeNet and training setup.

    `build(hp)` returns a compiled `build_lenet` model (preceded by augmentation layers when
    `augmentation` is not `"none"`), compiled by `lenet_blocks.compile.compile_lenet` with the
    optimizer the hyperparameters pick. `fit(hp, model, ...)` trains it on batches of the
    `batch_size` hyperparameter. `lenet_blocks.tuning.HYPERPARAMETERS` is the space.

    Args:
        input_shape: `(height, width, channels)` of the images; all of the search space fits
            images of at least 26x26.
        classes: int. Number of classes.
        class_names: optional sequence of `classes` names, saved with every model built (its
            head carries them, so the search's best model predicts by name).
        fixed: optional dict of hyperparameter name -> value to hold fixed (registered as
            `hp.Fixed`), e.g. `{"optimizer": "adam", "batch_size": 128}`. On the JAX backend
            `use_ema` is held at `False` (Keras loses the averaged weights there), and
            `{"use_ema": True}` is refused.
        max_params: optional int. Parameter budget (`model.count_params()`, non-trainable
            included). The tuners of `make_tuner` draw a larger configuration again, so it never
            becomes a trial; `fit` still rejects a larger model before training (with
            `keras_tuner.errors.FailedTrialError`) under any other tuner.
        seed: optional int. If set, `build` calls `keras.utils.set_random_seed(seed)` first, so
            that initial weights, augmentation and shuffling are reproducible per trial.
        **kwargs: `keras_tuner.HyperModel` arguments (`name`, `tunable`).

    Raises:
        ValueError: for an invalid argument, an unknown name in `fixed`, a fixed value of
            the wrong kind, or `use_ema` fixed to `True` on the JAX backend.

    Example:
    >>> import keras_tuner
    >>> hp = keras_tuner.HyperParameters()
    >>> model = HyperLeNet(fixed={"activation": "relu", "optimizer": "adam"}).build(hp)
    >>> model.get_layer("block1").activation, type(model.optimizer).__name__
    ('relu', 'Adam')
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int] = (28, 28, 1),
        classes: int = 10,
        *,
        class_names: Sequence[str] | None = None,
        fixed: Mapping[str, object] | None = None,
        max_params: int | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        shape = tuple(input_shape) if isinstance(input_shape, list | tuple) else None
        if shape is None or len(shape) != 3 or not all(is_positive_int(d) for d in shape):
            raise ValueError(
                "`input_shape` must be a tuple (height, width, channels) of positive ints. "
                f"Received: input_shape={input_shape!r}"
            )
        if not is_positive_int(classes):
            raise ValueError(f"`classes` must be a positive int. Received: classes={classes!r}")
        if max_params is not None and not is_positive_int(max_params):
            raise ValueError(
                f"`max_params` must be a positive int or None. Received: max_params={max_params!r}"
            )
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"`seed` must be an int or None. Received: seed={seed!r}")
        self.input_shape = shape
        self.classes = classes
        self.class_names = check_class_names(class_names, classes)
        self.fixed = validate_fixed(fixed)
        if keras.backend.backend() == "jax":
            # No weight average in the space where Keras loses it (`compile.check_use_ema`).
            check_use_ema(self.fixed.get("use_ema", False))
            self.fixed["use_ema"] = False
        self.max_params = max_params
        self.seed = seed

    def batch_size(self, hp) -> int:
        """The `batch_size` hyperparameter (registering it in `hp` if needed)."""
        return register(hp, "batch_size", self.fixed)

    def build(self, hp):
        """Builds and compiles the LeNet that `hp` describes (defaults: the notebook's).

        Every hyperparameter of the table is registered, in its order (`batch_size` and
        `lr_schedule` too, which `fit` applies), so the whole space is known before `fit`.
        """
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)
        values = {name: register(hp, name, self.fixed) for name in HYPERPARAMETERS}
        model = self._architecture(values)
        learning_rate = values[learning_rate_name(values["optimizer"])]
        compile_lenet(
            model,
            values["optimizer"],
            # A schedule's length is known in `fit` (epochs x batches), which sets the real one;
            # compiling with one already keeps the optimizer's variables the same for
            # checkpoints saved and restored.
            learning_rate_schedule(values["lr_schedule"], learning_rate, total_steps=1),
            momentum=values["momentum"] or 0.0,  # None when inactive (not SGD)
            nesterov=bool(values["nesterov"]),
            weight_decay=values["weight_decay"],
            use_ema=values["use_ema"],
            label_smoothing=values["label_smoothing"],
            soft_labels=values["mixing"] != "none",
        )
        # Built now, so that a checkpoint restores the optimizer state too (Hyperband continues
        # trials from their checkpoints; an unbuilt optimizer skips the saved variables).
        model.optimizer.build(model.trainable_variables)
        return model

    def parameter_count(self, values: Mapping[str, object]) -> int:
        """Parameters of the model that hyperparameter `values` describe, built but not compiled.

        The budget-aware tuners call it on every draw (`make_tuner(..., max_params=...)`).

        Example:
        >>> HyperLeNet().parameter_count({"filters_1": 12})
        46982
        """
        hp = keras_tuner.HyperParameters()
        fixed = {**self.fixed, **{k: v for k, v in values.items() if k in HYPERPARAMETERS}}
        model = self._architecture({name: register(hp, name, fixed) for name in HYPERPARAMETERS})
        return model.count_params()

    def _architecture(self, values: Mapping[str, object]) -> keras.Model:
        """The (uncompiled) model of a full set of hyperparameter values."""
        filters = [values["filters_1"], values["filters_2"]]
        paddings = [values["padding"], values["padding"]]
        if values["blocks"] == 3:
            filters.append(values["filters_3"])
            paddings.append("same")
        return augmented_lenet(
            values["augmentation"],
            input_shape=self.input_shape,
            seed=self.seed,
            classes=self.classes,
            class_names=self.class_names,
            activation=values["activation"],
            classifier_activation=values["classifier_activation"],
            filters=tuple(filters),
            kernel_size=values["kernel_size"],
            padding=tuple(paddings),
            convolutions=values["convolutions"],
            block_pooling=values["block_pooling"],
            pooling=None if values["global_pooling"] == "none" else values["global_pooling"],
            units=(values["units_1"], values["units_2"]),
            dropout=values["dropout"],
            batch_norm=values["batch_norm"],
            include_rescaling=values["include_rescaling"],
            horizontal_flip=values["horizontal_flip"],
            random_erasing=values["random_erasing"],
        )

    def check_budget(self, model: keras.Model) -> None:
        """Raises `keras_tuner.errors.FailedTrialError` if `model` is over `max_params`.

        Example:
        >>> from lenet_blocks import build_lenet
        >>> try:
        ...     HyperLeNet(max_params=1000).check_budget(build_lenet())
        ... except keras_tuner.errors.FailedTrialError as error:
        ...     print(error)
        The model has 44,426 parameters, over the budget max_params=1,000;
        the trial is skipped before training.
        """
        if self.max_params is None:
            return
        count = model.count_params()
        if count > self.max_params:
            raise keras_tuner.errors.FailedTrialError(
                f"The model has {count:,} parameters, over the budget "
                f"max_params={self.max_params:,}; the trial is skipped before training."
            )

    def fit(self, hp, model, x=None, y=None, **kwargs):
        """Trains `model` on batches of the `batch_size` hyperparameter; returns the `History`.

        Checks the parameter budget first (`check_budget`). Every keyword argument, the
        tuner's `callbacks` included, goes to `model.fit`. A schedule other than `"constant"`
        becomes the optimizer's learning rate over `epochs` x the batches of an epoch
        (`regularization.learning_rate_schedule`); `use_ema` adds Keras' `SwapEMAWeights`, so
        that validation measures the averaged weights; `mixing` mixes the training batches
        (`keras.layers.MixUp` / `CutMix`, soft labels): both as in training
        (`regularization.mix_and_average`). A `TrialCheckpoint` among the callbacks
        (the tuners of `make_tuner` add one) is restored first: an interrupted trial continues
        after its last completed epoch.

        Data: NumPy arrays `x, y` (and `validation_data=(x_val, y_val)`) go through
        `lenet_blocks.pipeline.make_batches`, as in training (`tf.data` on TensorFlow,
        NumPy batches on JAX and PyTorch): float32 batches of `batch_size`
        with a channel axis added to `(n, height, width)` images, the training set reshuffled
        every epoch (`shuffle=False` keeps its order) in an order drawn from `(seed, epoch)`
        (without a seed, reshuffled at random). An *unbatched*
        `tf.data.Dataset` of `(image, label)` is batched here (and so is an unbatched
        validation dataset); an already batched one cannot be rebatched and raises
        `keras_tuner.errors.FatalValueError` (hold the batch size with
        `fixed={"batch_size": n}` and pass unbatched data instead).

        The returned `History` has two extra entries per epoch, recorded by the tuner with the
        trial's metrics: `num_params` (`model.count_params()`) and `epochs_trained` (epochs of
        this call, restored ones included).

        Raises:
            keras_tuner.errors.FailedTrialError: if the model is over `max_params`.
            keras_tuner.errors.FatalValueError: for `batch_size=` in `kwargs`, or a batched or
                misshapen dataset.
        """
        self.check_budget(model)
        if "batch_size" in kwargs:
            raise keras_tuner.errors.FatalValueError(
                "`batch_size` is a hyperparameter of HyperLeNet; hold it with "
                "`HyperLeNet(fixed={'batch_size': n})` instead of passing it to `search`/`fit`. "
                f"Received: batch_size={kwargs['batch_size']!r}"
            )
        batch_size = self.batch_size(hp)
        shuffle = kwargs.get("shuffle", True)
        kwargs["shuffle"] = False  # Keras cannot shuffle a dataset (and warns if asked to)
        callbacks = list(kwargs.get("callbacks") or [])
        if isinstance(x, tf.data.Dataset):
            if y is not None:
                raise keras_tuner.errors.FatalValueError(
                    "`y` must be None when `x` is a tf.data.Dataset of (image, label) pairs."
                )
            if self._is_batched(x, "x"):
                raise keras_tuner.errors.FatalValueError(
                    f"`x` is already batched, so HyperLeNet cannot apply its `batch_size` "
                    "hyperparameter. Pass NumPy arrays or an unbatched dataset. "
                    f"Received: x with element_spec={x.element_spec}"
                )
            x = x.batch(batch_size).prefetch(tf.data.AUTOTUNE)  # shuffling is the dataset's job
        elif shuffle and self.seed is not None:
            # Each epoch's order is drawn from (seed, epoch), so a resumed trial sees the same.
            counter = EpochCounter()
            callbacks.insert(0, counter)
            x = make_batches(x, y, batch_size, shuffle=True, seed=self.seed, epoch=counter.epoch)
        else:
            x = make_batches(x, y, batch_size, shuffle=shuffle, seed=self.seed)
        if self.seed is not None:  # PyTorch's dropout masks, a function of (seed, epoch) too
            callbacks.insert(0, TorchEpochSeed(self.seed))
        # Validation (the objective) and the tuner's best-epoch checkpoint see the averaged
        # weights, a `TrialCheckpoint` (earlier in the list) the trained ones.
        best_epoch = [i for i, c in enumerate(callbacks) if isinstance(c, SaveBestEpoch)]
        x, callbacks = mix_and_average(
            x,
            callbacks,
            mixing=hp.get("mixing"),
            use_ema=hp.get("use_ema"),
            classes=self.classes,
            seed=self.seed,
            averaged_from=best_epoch[0] if best_epoch else None,
        )
        validation_data = kwargs.get("validation_data")
        if isinstance(validation_data, tf.data.Dataset):
            if not self._is_batched(validation_data, "validation_data"):
                kwargs["validation_data"] = validation_data.batch(batch_size)
        elif validation_data is not None:
            x_val, y_val = validation_data
            kwargs["validation_data"] = make_batches(x_val, y_val, batch_size)
        kwargs["callbacks"] = callbacks
        self._set_schedule(hp, model, x, kwargs)
        return self._fit_resuming(model, x, kwargs)

    def _set_schedule(self, hp, model: keras.Model, x, kwargs: dict) -> None:
        """Gives the optimizer its `lr_schedule` over `fit`'s epochs of the batches of `x`."""
        if hp.get("lr_schedule") == "constant":
            return
        steps = kwargs.get("steps_per_epoch") or batches_per_epoch(x)
        if steps < 1:
            raise keras_tuner.errors.FatalValueError(
                f"lr_schedule={hp.get('lr_schedule')!r} needs the number of batches per epoch: "
                "pass `steps_per_epoch`, or a dataset of known size. "
                f"Received: a dataset of cardinality {steps}"
            )
        learning_rate = hp.get(learning_rate_name(hp.get("optimizer")))
        model.optimizer.learning_rate = learning_rate_schedule(
            hp.get("lr_schedule"), learning_rate, kwargs.get("epochs", 1) * steps
        )

    def _fit_resuming(self, model: keras.Model, x, kwargs: dict) -> keras.callbacks.History:
        """`model.fit(x, **kwargs)`, continuing from a `TrialCheckpoint` among the callbacks.

        The returned history covers the whole trial: the restored epochs and the new ones.
        """
        checkpoint = next((c for c in kwargs["callbacks"] if isinstance(c, TrialCheckpoint)), None)
        done, restored = checkpoint.restore(model) if checkpoint is not None else (0, {})
        if done:
            kwargs["initial_epoch"] = max(kwargs.get("initial_epoch", 0), done)
            for callback in kwargs["callbacks"]:
                if isinstance(callback, SaveBestEpoch) and callback.objective.has_value(restored):
                    values = restored[callback.objective.name]
                    better = max if callback.objective.direction == "max" else min
                    callback.best_value = better(values)
        if kwargs.get("initial_epoch", 0) < kwargs.get("epochs", 1):
            history = model.fit(x, **kwargs)
        else:  # killed after the trial's last epoch
            history = keras.callbacks.History()
        if not isinstance(history, keras.callbacks.History):
            return history
        history.history = {
            key: [*restored.get(key, []), *history.history.get(key, [])]
            for key in {**restored, **history.history}
        }
        if history.history:
            epochs = len(next(iter(history.history.values())))
            history.history["num_params"] = [model.count_params()] * epochs
            history.history["epochs_trained"] = [epochs] * epochs
        return history

    def _is_batched(self, dataset: tf.data.Dataset, arg: str) -> bool:
        images = tf.nest.flatten(dataset.element_spec)[0]
        rank = images.shape.rank
        if rank == len(self.input_shape):
            return False
        if rank == len(self.input_shape) + 1:
            return True
        raise keras_tuner.errors.FatalValueError(
            f"`{arg}` must yield (image, label) with images of shape {self.input_shape}. "
            f"Received: {arg} with element_spec={dataset.element_spec}"
        )
