"""`upvote data pull --source FILE`: .csv/.jsonl/.parquet, column aliases, clean errors."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from upvote.cli import app
from upvote.data import load_stories
from upvote.data.dataset import default_dataset_dir, parts

# Algolia-style names; row 3 repeats id 13 and row 2 has an unparseable time.
ALGOLIA_STYLE = pd.DataFrame(
    {
        "objectID": ["11", "13", "12", "13"],
        "title": ["Show HN: a &amp; b", "Third", "Second", "Third (again)"],
        "author": ["pg", None, "sama", None],
        "created_at": ["2014-05-25T10:00:00.000Z", "garbage", "2014-05-26 11:00:00", "garbage"],
        "num_points": ["3", "1", "10", "1"],
        "num_comments": ["0", "", "4", "1"],
        "url": ["https://a.example", None, None, None],
    }
)


def pull(*args: str):
    return CliRunner().invoke(app, ["data", "pull", *args])


def write(df: pd.DataFrame, path) -> None:
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_parquet(path)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_file_sources_accept_aliases(tmp_path, suffix):
    path = tmp_path / f"algolia{suffix}"
    write(ALGOLIA_STYLE, path)
    result = pull("--source", str(path))
    assert result.exit_code == 0, result.output
    assert "dropped duplicate" in result.output and "fixed bad_time" in result.output
    df = load_stories().set_index("id").sort_index()
    assert list(df.index) == [11, 12, 13]
    assert list(df["title"]) == ["Show HN: a & b", "Second", "Third"]
    assert df.loc[11, "time"] == pd.Timestamp("2014-05-25 10:00")
    assert df.loc[12, "time"] == pd.Timestamp("2014-05-26 11:00")
    assert pd.isna(df.loc[13, "time"])  # kept, undated
    assert list(df["score"]) == [3, 10, 1] and list(df["descendants"].fillna(-9)) == [0, 4, -9]
    assert df.loc[11, "by"] == "pg" and df.loc[11, "url"] == "https://a.example"
    again = pull("--source", str(path))  # idempotent
    assert "nothing new" in again.output and len(load_stories()) == 3


def test_hn_api_jsonl_unix_times_and_dead(tmp_path):
    rows = [
        {"id": 1, "type": "story", "by": "pg", "time": 1160418111, "title": "Y Combinator",
         "score": 57, "descendants": 15},
        {"id": 2, "type": "story", "by": "x", "time": 1160418112, "title": "Gone", "dead": True},
        {"id": 3, "type": "comment", "by": "y", "time": 1160418113, "text": "hi", "title": "c"},
        {"id": 4, "type": "story", "by": "z", "time": 1160418114, "title": "x" * 300},
    ]  # fmt: skip
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = pull("--source", str(path))
    assert result.exit_code == 0, result.output
    df = load_stories()
    assert list(df["id"]) == [1]
    assert df["time"].iloc[0] == pd.Timestamp("2006-10-09 18:21:51")
    for counter in ("dead", "not_story", "absurd_title"):
        assert f"dropped {counter}" in result.output


def test_file_window_limit_and_unrequested_rows_are_counted(tmp_path):
    path = tmp_path / "algolia.csv"
    write(ALGOLIA_STYLE, path)
    result = pull("--source", str(path), "--until", "2014-05-26")
    assert result.exit_code == 0, result.output
    assert list(load_stories()["id"]) == [11]
    assert "dropped not_requested" in result.output  # id 12 (after --until) and 13 (undated)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"id": 1, "title": "a"}\n{"id": 2, "title": "b"}\n{"id": 3, "ti\n',
         "bad.jsonl: row 3: invalid JSON"),
        ("bad.csv", "id,title,score\n1,a,3\n2,b,lots\n", "bad.csv: row 2: column 'score'"),
        ("notitle.csv", "id,name\n1,a\n", "notitle.csv: no 'title' column"),
        ("broken.parquet", "not parquet at all", "broken.parquet: cannot be read as parquet"),
        ("stories.xlsx", "x", "stories.xlsx: unsupported file type"),
    ],
)  # fmt: skip
def test_malformed_files_are_clean_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    result = pull("--source", str(path))
    assert result.exit_code == 1
    assert "Error: " in result.output and message in result.output
    assert "Traceback" not in result.output
    assert not parts(default_dataset_dir())  # nothing half-written


def test_missing_file_and_bad_options_are_clean_errors(tmp_path):
    result = pull("--source", str(tmp_path / "nope.csv"))
    assert result.exit_code == 1 and "nope.csv: no such file" in result.output
    assert pull("--source", "x.csv", "--sample", "1.5").exit_code == 2
    assert pull("--source", "x.csv", "--since", "yesterday-ish").exit_code == 2
    csv = tmp_path / "a.csv"
    write(ALGOLIA_STYLE, csv)
    result = pull("--source", str(csv), "--with-users")
    assert result.exit_code == 1 and "--with-users needs a PostgreSQL source" in result.output
