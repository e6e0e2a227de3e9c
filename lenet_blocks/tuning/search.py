"""`run_search`: a whole tuner search as one function, the body of `lenet-blocks tune`.

It searches `HyperLeNet` on Fashion-MNIST (the last 10% of the training set validates), prints
the leaderboard, reloads the best trial's model, evaluates it on the test set and writes, into
the output directory: `best_model.keras`, `best_hyperparameters.json`, `leaderboard.csv` and
`search.png`. Trials are compared and the best one chosen on validation accuracy only; the
test set is used once, to evaluate the chosen model. The tuner's own files live in
`OUTPUT/tuner/PROJECT`: started again with the same arguments, a killed search resumes there
(completed trials are kept, the interrupted one continues after its last completed epoch).
The images go to the tuner as they are (uint8); `HyperLeNet.fit` feeds them through
`lenet_blocks.pipeline.make_batches`, the input path of training.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import keras
import numpy as np
from keras_tuner.src import config as keras_tuner_config

from lenet_blocks import artifacts, plots
from lenet_blocks.arrays import split_validation, with_channel_axis
from lenet_blocks.data_sources import load_dataset
from lenet_blocks.locking import lock_directory
from lenet_blocks.training import evaluate_model
from lenet_blocks.tuning.hypermodel import HyperLeNet
from lenet_blocks.tuning.leaderboard import (
    format_leaderboard,
    last_error_line,
    leaderboard,
    write_leaderboard_csv,
)
from lenet_blocks.tuning.tuners import MAX_DRAWS, make_tuner

__all__ = ["SearchFailedError", "format_summary", "is_search_worker", "run_search"]

RESULT_FILES = ("best_model.keras", "best_hyperparameters.json", "leaderboard.csv", "search.png")


class SearchFailedError(RuntimeError):
    """No trial of the search completed."""


def run_search(
    output_dir: str | os.PathLike,
    *,
    kind: str = "random",
    max_trials: int | None = 10,
    epochs: int = 5,
    executions_per_trial: int = 1,
    seed: int = 0,
    project_name: str = "lenet",
    max_params: int | None = None,
    fixed: dict | None = None,
    validation_split: float = 0.1,
    data: tuple | None = None,
    dataset: str | os.PathLike = "fashion_mnist",
    data_dir: str | os.PathLike | None = None,
    image_size: tuple[int, int] | None = None,
    color_mode: str | None = None,
    skip_bad_files: bool = False,
    overwrite: bool = False,
    verbose: int = 1,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> dict | None:
    """Runs (or resumes) a search and writes its results; returns the best trial's summary.

    Args:
        output_dir: folder of the results and of the tuner's project (`tuner/`).
        kind: `"random"`, `"bayesian"` or `"hyperband"`.
        max_trials: trials in total, failed ones included (for hyperband an optional cap).
        epochs: epochs per trial; for hyperband, the most epochs of one model.
        executions_per_trial: trainings per trial, their objective averaged.
        seed: seeds the oracle, the models and the augmentation.
        project_name: name of the tuner project inside `output_dir/tuner`.
        max_params: parameter budget; configurations over it are drawn again before they
            become trials (budget-aware sampling, see `make_tuner`).
        fixed: hyperparameter values held fixed, e.g. `{"activation": "relu"}`.
        validation_split: fraction at the end of the training set used for validation.
        data: `((x_train, y_train), (x_test, y_test))`; default: the arrays of
            `lenet_blocks.data_sources.load_dataset(dataset, data_dir)`.
        dataset: `"fashion_mnist"`, `"mnist"`, `"cifar10"`, or the path of an IDX directory or
            an `.npz` archive, or an image folder (read into memory: the search holds its data).
        data_dir: directory with the files of the named data set.
        image_size, color_mode, skip_bad_files: for an image folder, see
            `lenet_blocks.image_folders.scan_image_folder` (a folder of mixed sizes needs
            `image_size`).
        overwrite: start afresh instead of resuming the project.
        verbose: 0 silent; 1 keras-tuner's per-trial lines, Keras progress bars and the
            leaderboard; 2 the same with one line per epoch instead of progress bars.
        callbacks: extra Keras callbacks for every trial's `fit`.

    In a distributed search (KerasTuner's `KERASTUNER_*` variables set; see
    `lenet_blocks.distributed_search`), the chief runs the oracle and writes the results as
    above, and a worker trains the trials it is given and returns `None` when the oracle has
    no more: the chief reports.

    Returns:
        The dict written to `best_hyperparameters.json`, or `None` in a worker.

    Raises:
        SearchFailedError: if no trial completed (every model was over budget, say).
        lenet_blocks.locking.DirectoryLockedError: another search holds `output_dir`.
    """
    if overwrite and is_search_worker():
        raise ValueError(
            "A worker of a distributed search must not overwrite the shared tuner project (it "
            "would delete the chief's trials); start afresh by clearing it once, before the "
            "processes start (`lenet-blocks tune --workers N --overwrite` does). "
            f"Received: overwrite=True with KERASTUNER_TUNER_ID={os.environ['KERASTUNER_TUNER_ID']}"
        )
    output_dir = Path(output_dir)
    # One search at a time in a results folder (its leaderboard, best model and tuner project);
    # the workers of a distributed search share the chief's.
    with contextlib.ExitStack() as stack:
        if not is_search_worker():
            stack.enter_context(lock_directory(output_dir, "search"))
        loaded = None
        if data is None:
            loaded = load_dataset(
                dataset,
                data_dir,
                image_size=image_size,
                color_mode=color_mode,
                skip_bad_files=skip_bad_files,
            )
        (x_train, y_train), (x_test, y_test) = (
            data if loaded is None else loaded.arrays(validation_split, seed)
        )
        (x_fit, y_fit), (x_val, y_val) = split_validation(x_train, y_train, validation_split)
        keras.utils.set_random_seed(seed)
        hypermodel = HyperLeNet(
            input_shape=with_channel_axis(x_train[:1]).shape[1:],
            classes=int(np.max(y_train)) + 1,
            class_names=None if loaded is None else loaded.class_names,
            fixed=fixed,
            max_params=max_params,
            seed=seed,
        )
        tuner = make_tuner(
            kind,
            hypermodel,
            directory=output_dir / "tuner",
            project_name=project_name,
            max_trials=max_trials,
            executions_per_trial=executions_per_trial,
            max_epochs=epochs if kind == "hyperband" else None,
            seed=seed,
            overwrite=overwrite,
            # A trial that fails at build time (a model the input cannot take) costs nothing:
            # let a search skip several in a row (over-budget draws never become trials).
            max_consecutive_failed_trials=max(10, max_trials or 0),
        )
        search_options = {} if kind == "hyperband" else {"epochs": epochs}
        # keras-tuner prints the traceback of every failed trial (a model that cannot be built);
        # its last line is in the leaderboard instead. The switch is not public (keras-tuner <1.5).
        debug, keras_tuner_config.DEBUG = keras_tuner_config.DEBUG, False
        try:
            tuner.search(
                x_fit,
                y_fit,
                validation_data=(x_val, y_val),
                callbacks=list(callbacks or []),
                verbose=verbose,
                **search_options,
            )
        except RuntimeError as error:
            if "consecutive failures" not in str(error):
                raise
            raise SearchFailedError(
                f"The search in {output_dir / 'tuner' / project_name} stopped after "
                f"{tuner.oracle.max_consecutive_failed_trials} failed trials in a row: "
                f"{last_error_line(error)}"
            ) from None
        finally:
            keras_tuner_config.DEBUG = debug
        if is_search_worker():
            return None

        rows = leaderboard(tuner)
        write_leaderboard_csv(rows, output_dir / "leaderboard.csv")
        plots.plot_search(rows, output_dir / "search.png", objective="val_accuracy")
        if verbose:
            print(format_leaderboard(rows))
        completed = [row for row in rows if row["rank"] is not None]
        if not rows and max_params is not None:
            raise SearchFailedError(
                f"No trial of the search in {output_dir / 'tuner' / project_name} started: no "
                f"configuration drawn ({MAX_DRAWS} draws in a row) fits the budget "
                f"max_params={max_params:,}; raise it or hold smaller values fixed."
            )
        if not completed:
            raise SearchFailedError(
                f"No trial of the search in {output_dir / 'tuner' / project_name} completed; see "
                f"{output_dir / 'leaderboard.csv'} for the reasons."
            )
        best_row = completed[0]
        best_model = tuner.get_best_models(1)[0]
        test = evaluate_model(best_model, x_test, y_test)
        artifacts.save_model(best_model, output_dir / "best_model.keras")
        summary = {
            "trial_id": best_row["trial_id"],
            "hyperparameters": tuner.get_best_hyperparameters(1)[0].values,
            "changed_hyperparameters": best_row["changed_hyperparameters"],
            "val_accuracy": best_row["val_accuracy"],
            "test_accuracy": test["accuracy"],
            "test_loss": test["loss"],
            "parameters": best_model.count_params(),
            "epochs": best_row["epochs"],
            "search": {
                "kind": kind,
                "max_trials": max_trials,
                "epochs": epochs,
                "executions_per_trial": executions_per_trial,
                "seed": seed,
                "max_params": max_params,
                "fixed": fixed or {},
                "trials": len(rows),
                "completed_trials": len(completed),
            },
        }
        artifacts.write_json(output_dir / "best_hyperparameters.json", summary)
        if verbose:
            print(format_summary(summary, output_dir))
        return summary


def format_summary(summary: dict, output_dir: str | os.PathLike) -> str:
    """One line on the best trial of a search, from its `best_hyperparameters.json` dict.

    Example:
    >>> print(format_summary({"trial_id": "3", "val_accuracy": 0.91, "test_accuracy": 0.9,
    ...                       "parameters": 44426}, "runs/tune"))
    Best trial 3: val accuracy 0.9100, test accuracy 0.9000, 44,426 parameters. Wrote runs/tune/best_model.keras, best_hyperparameters.json, leaderboard.csv, search.png
    """  # noqa: E501
    return (
        f"Best trial {summary['trial_id']}: val accuracy {summary['val_accuracy']:.4f}, "
        f"test accuracy {summary['test_accuracy']:.4f}, {summary['parameters']:,} parameters. "
        f"Wrote {output_dir}/{', '.join(RESULT_FILES)}"
    )


def is_search_worker() -> bool:
    """Whether this process is a worker (not the chief) of a distributed KerasTuner search.

    A worker has `KERASTUNER_ORACLE_IP` set and a `KERASTUNER_TUNER_ID` other than the chief's.

    Example:
    >>> import os
    >>> from unittest import mock
    >>> oracle = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "8000"}
    >>> with mock.patch.dict(os.environ, {**oracle, "KERASTUNER_TUNER_ID": "tuner0"}):
    ...     is_search_worker()
    True
    >>> with mock.patch.dict(os.environ, {**oracle, "KERASTUNER_TUNER_ID": "chief"}):
    ...     is_search_worker()
    False
    """
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in os.environ.get(
        "KERASTUNER_TUNER_ID", ""
    )
