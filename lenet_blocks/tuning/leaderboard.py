"""The leaderboard of a search: one row per trial, as dicts, a CSV file and a text table.

Example:
>>> rows = [{"rank": 1, "trial_id": "0", "status": "COMPLETED", "val_accuracy": 0.9,
...          "num_params": 44426, "epochs": 5, "changed_hyperparameters": {}, "message": None}]
>>> print(format_leaderboard(rows))
  rank  trial  val_acc     params  epochs  changed from the reference
     1  0       0.9000     44,426       5  (reference)
"""

from __future__ import annotations

import csv
import json
import re

import keras_tuner

from lenet_blocks.artifacts import atomic_path
from lenet_blocks.tuning.space import diff_from_reference
from lenet_blocks.tuning.tuners import OBJECTIVE

__all__ = [
    "LEADERBOARD_COLUMNS",
    "format_leaderboard",
    "last_error_line",
    "leaderboard",
    "read_leaderboard_csv",
    "write_leaderboard_csv",
]

LEADERBOARD_COLUMNS = (
    "rank",
    "trial_id",
    "status",
    "val_accuracy",
    "num_params",
    "epochs",
    "changed_hyperparameters",
    "message",
)
_INT_COLUMNS = ("rank", "num_params", "epochs")


def leaderboard(tuner: keras_tuner.Tuner) -> list[dict]:
    """One row per trial of `tuner`, best `val_accuracy` first.

    Completed trials come first, ranked 1, 2, ... by their best `val_accuracy`; the others
    (failed, invalid, running) follow by trial id with `rank` `None`.

    Each row has `LEADERBOARD_COLUMNS`: `rank`, `trial_id`, `status`, `val_accuracy` (best
    epoch), `num_params`, `epochs` (epochs of training the weights received; for Hyperband
    this includes the epochs of the trial it continued), `changed_hyperparameters`
    (`diff_from_reference` of the trial's values) and `message` (last line of the error of a
    trial that did not complete, else `None`). `num_params` of a trial that did not train is
    counted by rebuilding its model; it is `None` if that fails.
    """
    rows = []
    for trial in tuner.oracle.trials.values():
        metrics = trial.metrics
        completed = trial.status == "COMPLETED"
        values = trial.hyperparameters.values
        val_accuracy = metrics.get_best_value(OBJECTIVE) if metrics.exists(OBJECTIVE) else None
        num_params = (
            int(metrics.get_last_value("num_params")) if metrics.exists("num_params") else None
        )
        if num_params is None:
            num_params = _count_params(tuner, trial)
        epochs = None
        if metrics.exists("epochs_trained"):
            trained = round(metrics.get_last_value("epochs_trained"))
            epochs = int(values.get("tuner/initial_epoch", 0)) + trained
        rows.append(
            {
                "rank": None,
                "trial_id": trial.trial_id,
                "status": trial.status,
                "val_accuracy": None if val_accuracy is None else float(val_accuracy),
                "num_params": num_params,
                "epochs": epochs,
                "changed_hyperparameters": diff_from_reference(values),
                "message": None if completed else last_error_line(trial.message),
            }
        )
    ranked = sorted(
        (row for row in rows if row["status"] == "COMPLETED" and row["val_accuracy"] is not None),
        key=lambda row: (-row["val_accuracy"], row["trial_id"]),
    )
    for rank, row in enumerate(ranked, start=1):
        row["rank"] = rank
    others = sorted((row for row in rows if row["rank"] is None), key=lambda row: row["trial_id"])
    return ranked + others


def _count_params(tuner, trial) -> int | None:
    if tuner.hypermodel is None:
        return None
    try:
        return int(tuner.hypermodel.build(trial.hyperparameters.copy()).count_params())
    except Exception:  # a model that cannot be built has no count to show
        return None


def last_error_line(message) -> str | None:
    """The last non-empty line of an error message, without the exception's module path.

    Example:
    >>> last_error_line("Traceback ...\\nkeras_tuner.src.errors.FailedTrialError: too big\\n")
    'FailedTrialError: too big'
    """
    if not message:
        return None
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    if not lines:
        return None
    # "keras_tuner.src.errors.FailedTrialError: ..." -> "FailedTrialError: ..."
    return re.sub(r"^(?:\w+\.)+(?=\w+: )", "", lines[-1])


def write_leaderboard_csv(rows: list[dict], path) -> None:
    """Writes leaderboard `rows` to a CSV file atomically (temporary file + `os.replace`).

    Columns are `LEADERBOARD_COLUMNS`; `changed_hyperparameters` is written as JSON and `None`
    as an empty cell. The parent folder is created if needed.

    Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "leaderboard.csv"
    >>> write_leaderboard_csv([{"rank": 1, "trial_id": "0", "status": "COMPLETED",
    ...     "val_accuracy": 0.9, "num_params": 44426, "epochs": 5,
    ...     "changed_hyperparameters": {"optimizer": "adam"}, "message": None}], path)
    >>> print(path.read_text().splitlines()[1])
    1,0,COMPLETED,0.9,44426,5,"{""optimizer"": ""adam""}",
    """
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=LEADERBOARD_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            cells = {key: row.get(key) for key in LEADERBOARD_COLUMNS}
            cells["changed_hyperparameters"] = json.dumps(
                cells["changed_hyperparameters"] or {}, sort_keys=True
            )
            writer.writerow({k: "" if v is None else v for k, v in cells.items()})


def read_leaderboard_csv(path) -> list[dict]:
    """The rows of a `write_leaderboard_csv` file, with their types back (`None` for empty).

    Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "leaderboard.csv"
    >>> write_leaderboard_csv([{"rank": None, "trial_id": "1", "status": "FAILED",
    ...     "val_accuracy": None, "num_params": 9, "epochs": None,
    ...     "changed_hyperparameters": {"blocks": 3}, "message": "too big"}], path)
    >>> read_leaderboard_csv(path)[0]["num_params"], read_leaderboard_csv(path)[0]["rank"]
    (9, None)
    """
    with open(path, newline="", encoding="utf-8") as file:
        cells = list(csv.DictReader(file))
    rows = []
    for row in cells:
        typed = {key: (value if value != "" else None) for key, value in row.items()}
        for key in _INT_COLUMNS:
            typed[key] = None if typed[key] is None else int(typed[key])
        if typed["val_accuracy"] is not None:
            typed["val_accuracy"] = float(typed["val_accuracy"])
        # The file sorts the names; the diff of a diff is itself, in search-space order again.
        changed = json.loads(typed["changed_hyperparameters"] or "{}")
        typed["changed_hyperparameters"] = diff_from_reference(changed)
        rows.append(typed)
    return rows


def format_leaderboard(rows: list[dict]) -> str:
    """The leaderboard as a text table: rank, trial, val accuracy, parameters, epochs, changes.

    Example:
    >>> print(format_leaderboard([{"rank": 1, "trial_id": "0", "status": "COMPLETED",
    ...     "val_accuracy": 0.9, "num_params": 44426, "epochs": 5,
    ...     "changed_hyperparameters": {"activation": "relu"}}]))
      rank  trial  val_acc     params  epochs  changed from the reference
         1  0       0.9000     44,426       5  activation=relu
    """
    lines = ["  rank  trial  val_acc     params  epochs  changed from the reference"]
    for row in rows:
        rank = row["rank"] if row["rank"] is not None else row["status"].lower()
        accuracy = f"{row['val_accuracy']:.4f}" if row["val_accuracy"] is not None else "-"
        params = f"{row['num_params']:,}" if row["num_params"] is not None else "-"
        epochs = row["epochs"] if row["epochs"] is not None else "-"
        changes = ", ".join(f"{k}={v}" for k, v in row["changed_hyperparameters"].items())
        lines.append(
            f"{rank:>6}  {row['trial_id']:<5}  {accuracy:>7}  {params:>9}  {epochs:>6}  "
            f"{changes or '(reference)'}"
        )
    return "\n".join(lines)
