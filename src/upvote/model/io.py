"""Reading and writing user tables (.parquet / .csv / .txt) with errors that name the file."""

from pathlib import Path

import pandas as pd
import pyarrow as pa

SUFFIXES = (".parquet", ".csv", ".txt")


class InputError(ValueError):
    """A user file that cannot be used; the message says which file and why."""


def read_table(path: str | Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a .parquet, .csv or .txt (one text per line, column ``title``) file.

    Raises ``InputError`` for a missing/empty/non-UTF-8 file or a missing required column.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{path}: unsupported file type {suffix!r} (use {', '.join(SUFFIXES)})")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    try:
        if suffix == ".parquet":
            df = pd.read_parquet(path)
        elif suffix == ".csv":
            df = pd.read_csv(path, encoding="utf-8", dtype={"title": str, "url": str, "by": str})
        else:
            lines = path.read_text(encoding="utf-8").splitlines()
            df = pd.DataFrame({"title": [line for line in lines if line.strip()]})
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from err
    except (pa.ArrowInvalid, OSError) as err:
        raise InputError(f"{path}: not a readable Parquet file ({err})") from err
    except pd.errors.EmptyDataError as err:
        raise InputError(f"{path}: the file is empty") from err
    except pd.errors.ParserError as err:
        raise InputError(f"{path}: not a readable CSV file ({err})") from err
    missing = [column for column in required if column not in df.columns]
    if missing:
        raise InputError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(map(str, df.columns)) or 'none'})"
        )
    if df.empty:
        raise InputError(f"{path}: the file has no rows")
    return df


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as .parquet or .csv (chosen by the suffix), creating parent folders."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InputError(f"{path}: output must end in .parquet or .csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path
