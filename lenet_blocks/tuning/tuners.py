"""`make_tuner`: a keras-tuner `Tuner` of the kind asked for, maximizing `val_accuracy`.

Example:
>>> import tempfile
>>> from lenet_blocks.tuning import HyperLeNet
>>> tuner = make_tuner("random", HyperLeNet(), tempfile.mkdtemp(), "lenet", max_trials=1)
>>> type(tuner).__name__, tuner.oracle.objective.name
('RandomSearch', 'val_accuracy')
"""

from __future__ import annotations

import importlib.util
import os

import keras_tuner
from keras_tuner.src.engine import conditions as keras_tuner_conditions

from lenet_blocks.choices import TUNER_KINDS, check_choice
from lenet_blocks.validation import is_positive_int

__all__ = ["OBJECTIVE", "TUNER_KINDS", "make_tuner"]

OBJECTIVE = "val_accuracy"


def _no_print(*args, **kwargs) -> None:
    """Stands in for `print` in keras-tuner's `conditions` module (see `make_tuner`)."""


def make_tuner(
    kind: str,
    hypermodel: keras_tuner.HyperModel,
    directory,
    project_name: str,
    max_trials: int | None = None,
    executions_per_trial: int = 1,
    max_epochs: int | None = None,
    seed: int | None = None,
    overwrite: bool = False,
    **tuner_kwargs,
) -> keras_tuner.Tuner:
    """A keras-tuner `Tuner` maximizing `val_accuracy`, resuming `directory/project_name`.

    With `overwrite=False` (the default) and an existing project, the tuner reloads it:
    completed trials are kept and not rerun, a trial that was running when the process
    stopped is run again, and `search` runs trials until the project holds `max_trials`
    (so raising `max_trials` continues a finished search).

    Args:
        kind: `"random"`, `"bayesian"` or `"hyperband"`.
        hypermodel: the `HyperModel`, e.g. `HyperLeNet()`.
        directory: folder of the tuner's projects.
        project_name: sub-folder of this search.
        max_trials: int. Trials in total (failed ones included); required for random and
            bayesian. For hyperband, an optional cap on its schedule.
        executions_per_trial: int. Trainings per trial, their objective averaged.
        max_epochs: int. Hyperband's most epochs for one model (required for hyperband). Other
            kinds train for the `epochs` given to `search`.
        seed: optional int seeding the oracle's choices.
        overwrite: bool. Whether to delete an existing project and start afresh.
        **tuner_kwargs: passed to the keras-tuner class (`factor`, `num_initial_points`,
            `max_consecutive_failed_trials`, `distribution_strategy`, ...).

    Returns:
        A `keras_tuner.RandomSearch`, `BayesianOptimization` or `Hyperband`.

    Raises:
        ValueError: for an unknown `kind` or a missing or invalid count.
    """
    check_choice("kind", kind, TUNER_KINDS)
    if kind == "hyperband":
        if not is_positive_int(max_epochs):
            raise ValueError(
                "`max_epochs` must be a positive int for kind='hyperband'. "
                f"Received: max_epochs={max_epochs!r}"
            )
        if max_trials is not None and not is_positive_int(max_trials):
            raise ValueError(
                f"`max_trials` must be a positive int or None. Received: max_trials={max_trials!r}"
            )
    elif not is_positive_int(max_trials):
        raise ValueError(
            f"`max_trials` must be a positive int for kind={kind!r}. "
            f"Received: max_trials={max_trials!r}"
        )
    if not is_positive_int(executions_per_trial):
        raise ValueError(
            "`executions_per_trial` must be a positive int. "
            f"Received: executions_per_trial={executions_per_trial!r}"
        )
    # keras-tuner 1.4.8 left a debugging `print(self.values[0])` in `Parent.to_proto`
    # (keras_tuner/src/engine/conditions.py), which runs whenever a distributed search sends
    # the conditional hyperparameters between a worker and the chief: each trial printed
    # stray words (`sgd`, `adam`, `3`, ...). Shadowing `print` in that module alone silences
    # it (and nothing else: the module prints nothing else), in every thread.
    keras_tuner_conditions.print = _no_print
    common = {
        "hypermodel": hypermodel,
        "objective": keras_tuner.Objective(OBJECTIVE, direction="max"),
        "executions_per_trial": executions_per_trial,
        "seed": seed,
        "directory": os.fspath(directory),
        "project_name": project_name,
        "overwrite": overwrite,
        **tuner_kwargs,
    }
    if kind == "random":
        return keras_tuner.RandomSearch(max_trials=max_trials, **common)
    if kind == "bayesian":
        _check_bayesian_extra()
        return keras_tuner.BayesianOptimization(max_trials=max_trials, **common)
    tuner = keras_tuner.Hyperband(max_epochs=max_epochs, **common)
    # Hyperband has no `max_trials` argument, but its oracle honours the attribute (it is not
    # part of the saved state, so it is set again on every resume).
    tuner.oracle.max_trials = max_trials
    return tuner


def _check_bayesian_extra() -> None:
    """keras-tuner's Bayesian oracle needs SciPy and scikit-learn: the `bayesian` extra."""
    missing = [name for name in ("scipy", "sklearn") if importlib.util.find_spec(name) is None]
    if missing:
        raise ValueError(
            f"`kind='bayesian'` needs {' and '.join(missing)}: "
            "pip install 'lenet_blocks[bayesian]'. Received: kind='bayesian'"
        )
