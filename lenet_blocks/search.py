"""`run_search` and its helpers, now in `lenet_blocks.tuning.search` (kept importable here).

Example:
>>> from lenet_blocks.search import run_search
>>> run_search.__module__
'lenet_blocks.tuning.search'
"""

from lenet_blocks.tuning.leaderboard import format_leaderboard
from lenet_blocks.tuning.search import SearchFailedError, is_search_worker, run_search

__all__ = ["SearchFailedError", "format_leaderboard", "is_search_worker", "run_search"]
