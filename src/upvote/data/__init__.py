"""The data layer: pull HN stories from PostgreSQL or files, clean them, split them by time.

from upvote.data import load_stories, time_split
train, valid, test, undated = time_split(load_stories())
"""

from upvote.data.clean import CleaningReport, clean
from upvote.data.dataset import load_comments, load_stories, pull, read_dataset
from upvote.data.files import DataError, read_table, write_table
from upvote.data.schema import COLUMNS
from upvote.data.sources import Query, postgres_batches, read_file
from upvote.data.split import Split, time_split

__all__ = [
    "COLUMNS",
    "CleaningReport",
    "DataError",
    "Query",
    "Split",
    "clean",
    "load_comments",
    "load_stories",
    "postgres_batches",
    "pull",
    "read_dataset",
    "read_file",
    "read_table",
    "time_split",
    "write_table",
]
