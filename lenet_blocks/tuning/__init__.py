"""Hyperparameter search around the notebook's LeNet: `HyperLeNet`, tuners, the leaderboard.

`HyperLeNet` is a `keras_tuner.HyperModel` in the style of keras-tuner's `HyperResNet`. Its search
space is centred on the reference: every hyperparameter's default is the notebook's value, so
building from an empty `keras_tuner.HyperParameters()` gives exactly the notebook's model
(`build_lenet()`), optimizer (SGD, learning rate 0.9) and batch size (32). `HYPERPARAMETERS` is
the one table of the space; docs/tuning.md shows it.

The modules, by concern:

- `space`: the table `HYPERPARAMETERS`, its registration and checks, the reference and diffs;
- `hypermodel`: `HyperLeNet`;
- `tuners`: `make_tuner` (random, bayesian or hyperband; objective `val_accuracy`, max;
  resumes an existing project unless `overwrite=True`);
- `leaderboard`: `leaderboard`, its CSV file and its text table;
- `search`: `run_search`, a whole search as one function (`lenet-blocks tune`);
- `worker`: the entry point of one process of a distributed search.

Example:
>>> import keras_tuner
>>> hp = keras_tuner.HyperParameters()
>>> model = HyperLeNet(fixed={"batch_size": 64}).build(hp)
>>> diff_from_reference(hp)
{'batch_size': 64}
"""

from lenet_blocks.tuning.hypermodel import HyperLeNet
from lenet_blocks.tuning.leaderboard import (
    LEADERBOARD_COLUMNS,
    format_leaderboard,
    last_error_line,
    leaderboard,
    read_leaderboard_csv,
    write_leaderboard_csv,
)
from lenet_blocks.tuning.search import SearchFailedError, is_search_worker, run_search
from lenet_blocks.tuning.space import (
    HYPERPARAMETERS,
    Hyperparameter,
    diff_from_reference,
    reference_hyperparameters,
)
from lenet_blocks.tuning.tuners import OBJECTIVE, TUNER_KINDS, make_tuner

__all__ = [
    "HYPERPARAMETERS",
    "LEADERBOARD_COLUMNS",
    "OBJECTIVE",
    "TUNER_KINDS",
    "HyperLeNet",
    "Hyperparameter",
    "SearchFailedError",
    "diff_from_reference",
    "format_leaderboard",
    "is_search_worker",
    "last_error_line",
    "leaderboard",
    "make_tuner",
    "read_leaderboard_csv",
    "reference_hyperparameters",
    "run_search",
    "write_leaderboard_csv",
]
