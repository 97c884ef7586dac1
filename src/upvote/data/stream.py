"""Stories files read in bounded chunks: memory does not grow with the file.

``upvote data pull --source FILE`` reads .csv, .jsonl, .txt and .parquet files through
:func:`file_chunks`, ``batch_size`` rows at a time, so a pull holds about one batch (and the keys of
what it wrote), whatever the size of the file. What one row may cost is bounded too: a line longer
than ``MAX_LINE_BYTES`` (CSV, JSON lines, text) or a Parquet row group larger than
``MAX_ROW_GROUP_BYTES`` once decompressed is refused with a message naming the limit.
"""

import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from upvote.data.files import DataError, check_file, jsonl_record, read_errors
from upvote.data.schema import ALIASES, COLUMNS, USER_COLUMNS, rename_aliases

MAX_LINE_BYTES = 1 << 20  # 1 MiB: a story (title and url <= 255 characters) is far smaller
MAX_ROW_GROUP_BYTES = 256 << 20  # a Parquet row group is decompressed whole by the reader
READ_BYTES = 1 << 20
# The columns a pull can use (canonical names, aliases, `dead`): others are never loaded (Parquet).
WANTED = {*COLUMNS, *USER_COLUMNS, *ALIASES, "dead"}


class _LineLimited(io.RawIOBase):
    """A binary file that raises ``DataError`` as soon as a line runs past ``limit`` bytes, so a
    CSV parser never buffers a single absurd field (a 1 GB file without a newline)."""

    def __init__(self, raw: io.BufferedReader, path: Path, limit: int) -> None:
        self.raw, self.path, self.limit = raw, path, limit
        self.run = 0  # bytes since the last newline
        self.line = 1

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        # Never more than `limit` bytes at once: a line inside `data` is then within the limit,
        # only the line running across reads (`run`) needs counting.
        data = self.raw.read(min(len(buffer), READ_BYTES, self.limit))
        first = data.find(b"\n")
        self.run += len(data) if first < 0 else first
        if self.run > self.limit:
            raise DataError(
                f"{self.path}: line {self.line:,} is longer than the {self.limit:,}-byte limit "
                "for one row; is this a stories file?"
            )
        if first >= 0:
            self.line += data.count(b"\n")
            self.run = len(data) - data.rfind(b"\n") - 1
        buffer[: len(data)] = data
        return len(data)


def file_chunks(path: str | Path, batch_size: int = 25_000) -> Iterator[pd.DataFrame]:
    """The rows of a stories file, ``batch_size`` at a time, values unparsed (CSV: strings).

    Canonical column names (aliases renamed); the index is the row number (1 = first data row) so
    errors can name the row. Raises ``DataError`` (naming the file) for a missing, empty,
    unreadable or non-UTF-8 file, a file without rows, or a row past the limits above.
    """
    path, suffix = check_file(path)
    readers = {".parquet": _parquet, ".csv": _csv, ".jsonl": _jsonl, ".txt": _text}
    rows = 0
    with read_errors(path, suffix):
        for chunk in readers[suffix](path, batch_size):
            chunk.index = pd.RangeIndex(rows + 1, rows + 1 + len(chunk))
            rows += len(chunk)
            yield rename_aliases(chunk)
    if rows == 0:
        raise DataError(f"{path}: the file has no rows")


def _csv(path: Path, batch_size: int) -> Iterator[pd.DataFrame]:
    with open(path, "rb") as raw:
        limited = io.BufferedReader(_LineLimited(raw, path, MAX_LINE_BYTES), READ_BYTES)
        # every column as text, only an empty field missing ("NA" is a title): clean() parses
        reader = pd.read_csv(
            limited, dtype=str, keep_default_na=False, na_values=[""], chunksize=batch_size,
            encoding="utf-8",
        )  # fmt: skip
        with reader:
            yield from reader


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line, never reading more than one line's limit."""
    with open(path, "rb") as f:
        number = 0
        while line := f.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                raise DataError(
                    f"{path}: line {number:,} is longer than the {MAX_LINE_BYTES:,}-byte limit "
                    "for one row; is this a stories file?"
                )
            text = line.decode("utf-8")
            if text.strip():
                yield number, text


def _jsonl(path: Path, batch_size: int) -> Iterator[pd.DataFrame]:
    records = []
    for number, line in _lines(path):
        records.append(jsonl_record(path, number, line))
        if len(records) == batch_size:
            yield pd.DataFrame.from_records(records)
            records = []
    if records:
        yield pd.DataFrame.from_records(records)


def _text(path: Path, batch_size: int) -> Iterator[pd.DataFrame]:
    titles = []
    for _, line in _lines(path):
        titles.append(line.rstrip("\r\n"))
        if len(titles) == batch_size:
            yield pd.DataFrame({"title": titles})
            titles = []
    if titles:
        yield pd.DataFrame({"title": titles})


def _parquet(path: Path, batch_size: int) -> Iterator[pd.DataFrame]:
    parquet = pq.ParquetFile(path)
    for i in range(parquet.metadata.num_row_groups):
        size = parquet.metadata.row_group(i).total_byte_size
        if size > MAX_ROW_GROUP_BYTES:
            raise DataError(
                f"{path}: row group {i} is {size / 2**20:,.0f} MiB uncompressed, over the "
                f"{MAX_ROW_GROUP_BYTES / 2**20:,.0f} MiB limit; rewrite the file with smaller "
                "row groups (e.g. pyarrow.parquet.write_table(..., row_group_size=100_000))"
            )
    columns = [name for name in parquet.schema_arrow.names if name in WANTED]
    for batch in parquet.iter_batches(batch_size=batch_size, columns=columns):
        yield batch.to_pandas()
