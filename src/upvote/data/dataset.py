"""The local dataset: a folder of Parquet parts that only ever grows by whole, atomic parts.

    <UPVOTE_DATA_DIR>/datasets/stories/part-00000.parquet, part-00001.parquet, ...

A pull streams its rows into a hidden temporary file and renames it into place (``os.replace``)
only once every batch is written, so a pull that is killed or fails leaves the previous dataset
exactly as it was. Rows whose id (or content hash, for id-less rows) is already in the dataset are
skipped, so pulling twice never duplicates a story. The keys already in the dataset are loaded once
per pull into a sorted array; each batch is checked against it by binary search, so the cost of a
batch grows with the batch, not with the dataset (see ``KeySet``).
"""

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from upvote.data.clean import MAX_TIME, CleaningReport, clean, row_keys
from upvote.data.files import DataError
from upvote.data.schema import COLUMNS, UNFILTERED, USER_COLUMNS, arrow_schema, empty_stories
from upvote.data.sources import Query, is_postgres, postgres_batches
from upvote.data.stream import file_chunks
from upvote.prefetch import prefetch
from upvote.redact import redact
from upvote.settings import get_settings

SAMPLE_DIR = Path(__file__).parent / "sample"


def default_dataset_dir() -> Path:
    return get_settings().datasets_dir / "stories"


def parts(directory: Path) -> list[Path]:
    """The committed parts of a dataset, oldest first (temporary files are never listed)."""
    return sorted(directory.glob("part-*.parquet"))


def read_dataset(directory: Path) -> pd.DataFrame:
    """All parts of a dataset as one frame with the canonical dtypes (user columns if pulled)."""
    frames = [pd.read_parquet(p) for p in parts(directory)]
    if not frames:
        return empty_stories()
    df = pd.concat(frames, ignore_index=True)
    dtypes = {c: t for c, t in (COLUMNS | USER_COLUMNS).items() if c in df.columns}
    return df.astype(dtypes)


def newest_time(directory: Path) -> pd.Timestamp | None:
    """The latest `time` in the dataset: where the next incremental pull starts.

    Cleaning never writes an infinite, out-of-range or future time; times after tomorrow are
    ignored all the same (a part written by hand), so the cursor cannot jump past every new row.
    """
    latest = None
    limit = min(pd.Timestamp.now() + pd.Timedelta(days=1), MAX_TIME)
    for part in parts(directory):
        times = pq.read_table(part, columns=["time"]).column("time")
        times = times.filter(pa.compute.less_equal(times, pa.scalar(limit, times.type)))
        part_max = pa.compute.max(times).as_py()
        if part_max is not None and (latest is None or part_max > latest):
            latest = part_max
    return None if latest is None else pd.Timestamp(latest)


def existing_keys(directory: Path) -> np.ndarray:
    """Sorted, unique keys (see ``row_keys``) of every story already in the dataset.

    Only the `id` column is read, except for the row groups that hold id-less rows (whose key is
    a hash of title, by and time).
    """
    keys = [np.empty(0, dtype=np.uint64)]
    for part in parts(directory):
        parquet = pq.ParquetFile(part)
        for group in range(parquet.metadata.num_row_groups):
            ids = parquet.read_row_group(group, columns=["id"]).column("id")
            if ids.null_count == 0:
                keys.append(ids.to_numpy().astype(np.uint64))
                continue
            table = parquet.read_row_group(group, columns=["id", "title", "by", "time"])
            keys.append(row_keys(table.to_pandas().astype({"id": "Int64"})))
    return sorted_unique(np.concatenate(keys))


def sorted_unique(keys: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting (numpy >= 2.3 hashes first: several times slower on 1M keys)."""
    keys = np.sort(keys)
    if len(keys) > 1:
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    return keys


class KeySet:
    """A set of uint64 keys as a few sorted runs: ``contains`` costs O(n log m) for n keys asked
    against m held (binary search, no re-sorting of what is held), ``add`` merges runs of similar
    size (amortised O(log m) per key), so checking a batch does not grow with the dataset."""

    def __init__(self, keys: np.ndarray | None = None) -> None:
        self.runs: list[np.ndarray] = []
        if keys is not None and len(keys):  # existing_keys() is already sorted and unique
            self.runs.append(keys if bool(np.all(keys[1:] > keys[:-1])) else sorted_unique(keys))

    def __len__(self) -> int:
        return sum(len(run) for run in self.runs)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        found = np.zeros(len(keys), dtype=bool)
        for run in self.runs:
            at = np.minimum(np.searchsorted(run, keys), len(run) - 1)
            found |= run[at] == keys
        return found

    def add(self, keys: np.ndarray) -> None:
        if not len(keys):
            return
        self.runs.append(sorted_unique(keys))
        while len(self.runs) > 1 and len(self.runs[-2]) <= 2 * len(self.runs[-1]):
            newer, older = self.runs.pop(), self.runs.pop()
            merged = np.concatenate([older, newer])
            merged.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
            self.runs.append(merged)


@dataclass
class PullResult:
    report: CleaningReport
    part: Path | None  # the new part, or None when nothing new was found
    batches: int


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(f"{directory}: another pull is writing this dataset") from None
        yield


def pull(
    source: str,
    query: Query = Query(),
    directory: Path | None = None,
    batch_size: int = 25_000,
    on_batch: Callable[[int, int], None] | None = None,
) -> PullResult:
    """Pull stories from a PostgreSQL URL or a file into the dataset; return what happened.

    For PostgreSQL, ``query.since`` defaults to the newest time already pulled (incremental).
    ``on_batch(batch_number, rows_written_so_far)`` is called after each batch is written.
    """
    directory = directory or default_dataset_dir()
    with _locked(directory):
        for stale in directory.glob(".part-*.tmp"):  # left by a killed pull
            stale.unlink()
        if is_postgres(source):
            if query.since is None:
                query = replace(query, since=newest_time(directory))
            tables = prefetch(postgres_batches(source, query, batch_size), 2, "upvote-pull-reader")
            batches = _clean_batches(tables, redact(source, source))
        else:
            batches = _file_batches(Path(source), query, batch_size)
        return _write_part(directory, batches, KeySet(existing_keys(directory)), query, on_batch)


def _clean_batches(
    tables: Iterator[pa.Table], where: str
) -> Iterator[tuple[pd.DataFrame, CleaningReport]]:
    for table in tables:
        yield clean(table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get), where)


def _file_batches(
    path: Path, query: Query, batch_size: int
) -> Iterator[tuple[pd.DataFrame, CleaningReport]]:
    """Clean a file chunk by chunk (see ``stream.file_chunks``): memory is about one batch.

    ``--sample`` keeps each row with probability f (seeded, like the server's Bernoulli sample);
    ``--limit`` keeps the first N rows of the window in file order.
    """
    rng = np.random.default_rng(query.seed)
    remaining = query.limit
    for raw in file_chunks(path, batch_size):
        if "selection" not in raw.columns:  # a user's own export: every story they have
            raw["selection"] = UNFILTERED
        df, report = clean(raw, str(path))
        del raw
        window = pd.Series(True, index=df.index)
        if query.since is not None:
            window &= df["time"].isna() | (df["time"] >= query.since)  # as in story_sql
        if query.until is not None:
            window &= df["time"] < query.until
        if query.sample is not None:
            window &= rng.random(len(df)) < query.sample
        df = df[window]
        if remaining is not None:  # read on past the limit: every row is counted
            df = df.head(remaining)
            remaining -= len(df)
        report.not_requested = report.rows_out - len(df)
        report.rows_out = len(df)
        yield df, report


def _write_part(
    directory: Path,
    batches: Iterator[tuple[pd.DataFrame, CleaningReport]],
    known: KeySet,
    query: Query,
    on_batch: Callable[[int, int], None] | None,
) -> PullResult:
    report, written, n_batches = CleaningReport(), 0, 0
    numbers = [int(p.stem.split("-")[1]) for p in parts(directory)]
    final = directory / f"part-{max(numbers, default=-1) + 1:05d}.parquet"
    temporary = directory / f".{final.stem}.tmp"
    schema = arrow_schema(query.with_users)
    try:
        with pq.ParquetWriter(temporary, schema, compression="snappy") as writer:
            pulled = KeySet()  # keys written by this pull: a file may repeat a row batches apart
            for df, batch_report in batches:
                keys = row_keys(df)
                in_dataset = known.contains(keys)
                repeated = pulled.contains(keys) & ~in_dataset
                seen = in_dataset | repeated
                batch_report.already_in_dataset = int(in_dataset.sum())
                batch_report.duplicate += int(repeated.sum())
                batch_report.rows_out -= int(seen.sum())
                fresh = df[~seen] if seen.any() else df
                pulled.add(keys[~seen])
                if len(fresh):
                    frame = fresh[schema.names].astype(
                        {c: t for c, t in (COLUMNS | USER_COLUMNS).items() if c in schema.names}
                    )
                    writer.write_table(pa.Table.from_pandas(frame, schema, preserve_index=False))
                batch_report.undated = int(fresh["time"].isna().sum())
                report += batch_report
                written += len(fresh)
                n_batches += 1
                if on_batch is not None:
                    on_batch(n_batches, written)
        if written == 0:
            temporary.unlink()
            return PullResult(report, None, n_batches)
        with open(temporary, "rb") as f:
            os.fsync(f.fileno())
        os.replace(temporary, final)
        _fsync_dir(directory)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return PullResult(report, final, n_batches)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def default_stories_path() -> Path:
    """What ``load_stories()`` reads: the pulled dataset if there is one, else the sample."""
    directory = default_dataset_dir()
    return directory if parts(directory) else SAMPLE_DIR / "stories.parquet"


def describe_source(path: Path | None = None) -> str:
    """Which stories ``load_stories(path)`` reads, in words, e.g. for ``upvote train`` to print."""
    path = default_stories_path() if path is None else Path(path)
    if path.is_dir():
        rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts(path))
        return f"the pulled dataset at {path} ({rows:,} rows)"
    if path == SAMPLE_DIR / "stories.parquet":
        rows = pq.ParquetFile(path).metadata.num_rows
        return (
            f"the shipped sample ({rows:,} rows; `upvote data pull` your own to use them instead)"
        )
    return str(path)


def load_stories(path: Path | str | None = None) -> pd.DataFrame:
    """Stories with the canonical columns: the pulled dataset if there is one, else the sample.

    ``path`` may name a dataset folder or a Parquet file with the canonical columns.
    """
    path = Path(default_stories_path() if path is None else path)
    if path.is_dir():
        return read_dataset(path)
    if not path.is_file():
        raise DataError(f"{path}: no such dataset or file")
    if path.suffix.lower() in (".csv", ".jsonl"):
        raise DataError(
            f"{path}: a {path.suffix.lower()[1:]} file is a source, not a dataset; "
            f"import it with `upvote data pull --source {path}`, then run `upvote data stats`"
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (expected a Parquet file of stories)")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...: all mean "not Parquet"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable Parquet file ({reason})") from None
    missing = [c for c in ("id", "title", "score", "time", "selection") if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: not a stories file: missing column(s) {', '.join(missing)} "
            f"(found: {', '.join(map(str, df.columns)) or 'none'})"
        )
    return df.astype({c: t for c, t in (COLUMNS | USER_COLUMNS).items() if c in df.columns})


def load_comments() -> pd.DataFrame:
    """The shipped HN comments (id, by, time, parent, text): extra text for tokenizer/word2vec."""
    df = pd.read_parquet(SAMPLE_DIR / "comments.parquet")
    return df.astype({"id": "Int64", "time": "datetime64[ns]", "parent": "Int64"})
