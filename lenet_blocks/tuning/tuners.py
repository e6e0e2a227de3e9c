"""`make_tuner`: a keras-tuner `Tuner` of the kind asked for, maximizing `val_accuracy`.

Two things are added to keras-tuner's own tuners:

- *budget-aware sampling*: with a hypermodel that has a `max_params` budget (`HyperLeNet`),
  every configuration the oracle proposes is counted first (the model is built, not trained);
  one over the budget is drawn again, so it never becomes a trial (keras-tuner's
  `max_model_size` would record it as a failed trial);
- *mid-trial resume*: each trial's `fit` gets a `TrialCheckpoint` in the trial's folder, so a
  search killed mid-trial continues that trial after its last completed epoch.

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
from pathlib import Path

import keras_tuner
from keras_tuner.src.engine import conditions as keras_tuner_conditions
from keras_tuner.src.engine import trial as trial_module

from lenet_blocks.choices import TUNER_KINDS, check_choice
from lenet_blocks.tuning.resume import TrialCheckpoint
from lenet_blocks.validation import is_positive_int

__all__ = ["MAX_DRAWS", "OBJECTIVE", "TUNER_KINDS", "make_tuner", "sample_within_budget"]

OBJECTIVE = "val_accuracy"
MAX_DRAWS = 200  # draws over the budget in a row before the oracle gives up (search ends)


class _ResumableTrials:
    """Adds a `TrialCheckpoint` in the trial's folder to the callbacks of every trial's `fit`.

    Only with `executions_per_trial=1`: keras-tuner reruns every execution of an interrupted
    trial, and the checkpoint holds one training.
    """

    def run_trial(self, trial, *args, **kwargs):
        if self.executions_per_trial == 1:
            checkpoint = TrialCheckpoint(Path(self.get_trial_dir(trial.trial_id)) / "resume")
            kwargs = {**kwargs, "callbacks": [*(kwargs.get("callbacks") or []), checkpoint]}
        return super().run_trial(trial, *args, **kwargs)


class RandomSearch(_ResumableTrials, keras_tuner.RandomSearch):
    """`keras_tuner.RandomSearch` whose trials resume mid-trial."""


class BayesianOptimization(_ResumableTrials, keras_tuner.BayesianOptimization):
    """`keras_tuner.BayesianOptimization` whose trials resume mid-trial."""


class Hyperband(_ResumableTrials, keras_tuner.Hyperband):
    """`keras_tuner.Hyperband` whose trials resume mid-trial."""


def sample_within_budget(oracle, parameter_count, max_params: int) -> None:
    """Makes `oracle` propose only configurations of at most `max_params` parameters.

    A proposal over the budget is replaced by random draws (the oracle's own, so they are
    seeded and not repeated) until one fits; after `MAX_DRAWS` draws in a row over the budget
    the oracle stops the search. Rejected draws never become trials.

    Args:
        oracle: a keras-tuner `Oracle` (random, Bayesian or Hyperband).
        parameter_count: function of a dict of hyperparameter values -> parameter count
            (`HyperLeNet.parameter_count`).
        max_params: int. The budget.
    """
    populate_space = oracle.populate_space
    counts = {}

    def fits(values: dict) -> bool:
        key = tuple(sorted((k, repr(v)) for k, v in values.items() if not k.startswith("tuner/")))
        if key not in counts:
            counts[key] = parameter_count(values)
        return counts[key] <= max_params

    def populate_within_budget(trial_id):
        proposal = populate_space(trial_id)
        if proposal["status"] != trial_module.TrialStatus.RUNNING or fits(proposal["values"]):
            return proposal
        bookkeeping = {k: v for k, v in proposal["values"].items() if k.startswith("tuner/")}
        for _ in range(MAX_DRAWS):
            values = oracle._random_values()
            if values is None:
                break
            if fits(values):
                return {**proposal, "values": {**values, **bookkeeping}}
        return {"status": trial_module.TrialStatus.STOPPED, "values": None}

    oracle.populate_space = populate_within_budget


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
        A `RandomSearch`, `BayesianOptimization` or `Hyperband` (keras-tuner's, with mid-trial
        resume; and budget-aware sampling when `hypermodel.max_params` is set).

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
        tuner = RandomSearch(max_trials=max_trials, **common)
    elif kind == "bayesian":
        _check_bayesian_extra()
        tuner = BayesianOptimization(max_trials=max_trials, **common)
    else:
        tuner = Hyperband(max_epochs=max_epochs, **common)
        # Hyperband has no `max_trials` argument, but its oracle honours the attribute (it is
        # not part of the saved state, so it is set again on every resume).
        tuner.oracle.max_trials = max_trials
    max_params = getattr(hypermodel, "max_params", None)
    if max_params is not None and hasattr(hypermodel, "parameter_count"):
        sample_within_budget(tuner.oracle, hypermodel.parameter_count, max_params)
    return tuner


def _check_bayesian_extra() -> None:
    """keras-tuner's Bayesian oracle needs SciPy and scikit-learn: the `bayesian` extra."""
    missing = [name for name in ("scipy", "sklearn") if importlib.util.find_spec(name) is None]
    if missing:
        raise ValueError(
            f"`kind='bayesian'` needs {' and '.join(missing)}: "
            "pip install 'lenet_blocks[bayesian]'. Received: kind='bayesian'"
        )
