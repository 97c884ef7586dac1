"""Reading and writing user tables (.parquet, .csv, .jsonl, .txt) with errors that name the file.

One reader for every command that takes a file: ``upvote data pull --source``, ``upvote predict``
and ``upvote tokenizer train``. Whatever is wrong with a file becomes a ``DataError`` whose one-line
message starts with the file's path.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

SUFFIXES = (".parquet", ".csv", ".jsonl", ".txt")
OUTPUT_SUFFIXES = (".parquet", ".csv")


MAX_QUOTED_CHARS = 80  # a bad value quoted in an error message is cut to this many characters


class DataError(ValueError):
    """Input that cannot be used; the message names the file (and the row and column if known)."""


def shorten(value: object, limit: int = MAX_QUOTED_CHARS, quote: bool = True) -> str:
    """``repr(value)`` (or ``str`` when not ``quote``) cut to ``limit`` characters, for messages:
    a hostile file's 100 MB field must not be copied into an error message (or a log)."""
    if isinstance(value, str) and len(value) > limit:  # never repr a huge string whole
        cut = value[:limit]
        text = repr(cut) if quote else cut
        return f"{text}... ({len(value):,} characters)"
    text = repr(value) if quote else str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def check_file(path: str | Path) -> tuple[Path, str]:
    """``path`` and its type (the suffix, or sniffed when there is none) if it is a non-empty
    file of a supported type; else a ``DataError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    suffix = path.suffix.lower() or sniff(path)
    if suffix not in SUFFIXES:
        raise DataError(f"{path}: unsupported file type {suffix!r} (use {', '.join(SUFFIXES)})")
    return path, suffix


@contextmanager
def read_errors(path: Path, suffix: str) -> Iterator[None]:
    """Whatever a parser raises while reading ``path`` becomes a one-line ``DataError``."""
    try:
        yield
    except DataError:
        raise
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except Exception as err:  # parsers raise many types (ArrowInvalid, OSError, ParserError...)
        raise DataError(f"{path}: cannot be read as {suffix[1:]}: {reason(err)}") from None


def read_table(
    path: str | Path, required: tuple[str, ...] = (), as_text: bool = False
) -> pd.DataFrame:
    """A .parquet, .csv, .jsonl or .txt (one text per line, column ``title``) file as a frame.

    ``as_text`` reads every CSV column as a string, with only empty fields missing, for callers
    that parse and check values themselves (``data pull``, which names the bad row); otherwise
    only ``title``, ``url`` and ``by`` are forced to strings. Raises ``DataError`` for a missing,
    empty, unreadable or non-UTF-8 file, a missing ``required`` column, or a file without rows.
    """
    path, suffix = check_file(path)
    with read_errors(path, suffix):
        if suffix == ".parquet":
            df = pd.read_parquet(path)
        elif suffix == ".csv" and as_text:  # only an empty field is missing, "NA" is text
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        elif suffix == ".csv":
            df = pd.read_csv(path, dtype={"title": str, "url": str, "by": str})
        elif suffix == ".jsonl":
            df = _read_jsonl(path)
        else:
            lines = path.read_text(encoding="utf-8").splitlines()
            df = pd.DataFrame({"title": [line for line in lines if line.strip()]})
    missing = [column for column in required if column not in df.columns]
    if missing:
        found = shorten(", ".join(map(str, df.columns)), 200, quote=False) or "none"
        raise DataError(f"{path}: missing required column(s) {', '.join(missing)} (found: {found})")
    if df.empty:
        raise DataError(f"{path}: the file has no rows")
    return df


def reason(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, cut to ``limit`` characters."""
    text = str(err).strip()
    return shorten(text.splitlines()[0], limit, quote=False) if text else type(err).__name__


def sniff(path: Path) -> str:
    """The type of a file without an extension (``text8`` is named so): Parquet by its magic
    bytes, else text, one per line (a binary file then fails as "not UTF-8")."""
    with path.open("rb") as f:
        head = f.read(4)
    return ".parquet" if head == b"PAR1" else ".txt"


def jsonl_record(path: Path, number: int, line: str) -> dict:
    """One line of a JSON-lines file as a story record, or a ``DataError`` naming the row."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: row {number}: invalid JSON: {exc.msg}") from None
    if not isinstance(record, dict):
        raise DataError(f"{path}: row {number}: expected a JSON object")
    return record


def _read_jsonl(path: Path) -> pd.DataFrame:
    with path.open(encoding="utf-8") as f:
        records = [jsonl_record(path, n, line) for n, line in enumerate(f, 1) if line.strip()]
    return pd.DataFrame.from_records(records)


def check_output(path: str | Path) -> Path:
    """``path`` if a table can be written there: a .parquet or .csv name in an existing folder."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise DataError(f"{path}: must end in {' or '.join(OUTPUT_SUFFIXES)}")
    if not path.parent.is_dir():
        raise DataError(f"{path}: the folder {path.parent} does not exist")
    return path


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as .parquet or .csv (chosen by the suffix) into an existing folder."""
    path = check_output(path)
    if path.suffix.lower() == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path
