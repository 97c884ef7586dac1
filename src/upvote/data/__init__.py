"""The data layer: pull HN stories from PostgreSQL or files, clean them, split them by time.

from upvote.data import load_stories, time_split
train, valid, test, undated = time_split(load_stories())

Names are imported on first use: the model and the service read ``upvote.data.schema`` alone and
need not load the database driver and the file readers with it. ``clean`` is the exception: the
function shares its name with its module, and the package attribute must be the function.
"""

from importlib import import_module
from typing import Any

from upvote.data.clean import CleaningReport, clean

_HOMES = {
    "load_comments": "dataset",
    "load_stories": "dataset",
    "pull": "dataset",
    "read_dataset": "dataset",
    "DataError": "files",
    "read_table": "files",
    "write_table": "files",
    "COLUMNS": "schema",
    "Query": "sources",
    "postgres_batches": "sources",
    "read_file": "sources",
    "Split": "split",
    "time_split": "split",
}
__all__ = [  # the two imported above, then the lazy ones
    "CleaningReport",
    "clean",
    *_HOMES,
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(f"upvote.data.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
