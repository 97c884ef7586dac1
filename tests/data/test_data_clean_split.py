"""Cleaning counts, the time split, `upvote data stats` and the loaders."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from upvote.cli import app
from upvote.data import clean, load_comments, load_stories, time_split
from upvote.data.clean import CleaningReport, DataError
from upvote.data.schema import COLUMNS


def test_each_rule_is_counted_and_nothing_is_lost():
    raw = pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6, 7, 8, 9, 1, None, None],
            "type": ["story", "comment", "story", "story", "story", "story", "story", "story",
                     "story", "story", "story", "story"],
            "title": ["ok", "c", None, "", "  ", "x" * 256, "neg", "dead", "Q&amp;A", "dup",
                      "no id", "no id"],
            "score": [1, 1, 1, 1, 1, 1, -1, 1, 1, 1, 1, 1],
            "dead": [None, None, None, None, None, None, None, "true", "false", None, None, None],
            "time": ["2020-01-01", "2020-01-01", "2020-01-01", "2020-01-01", "2020-01-01",
                     "2020-01-01", "2020-01-01", "2020-01-01", "1999-01-01", "2020-01-01",
                     "2020-01-02", "2020-01-02"],
        }
    )  # fmt: skip
    df, report = clean(raw)
    assert (report.not_story, report.missing_title, report.empty_title) == (1, 1, 2)
    assert (report.absurd_title, report.negative_score, report.dead) == (1, 1, 1)
    assert report.duplicate == 2  # id 1 twice, and the two identical id-less rows
    assert report.html_unescaped == 1 and report.bad_time == 1 and report.undated == 1
    assert report.rows_in == len(raw) == report.rows_out + report.dropped
    assert list(df["title"]) == ["ok", "Q&A", "no id"]
    assert list(df.columns) == list(COLUMNS) and dict(df.dtypes.astype(str)) == COLUMNS
    total = CleaningReport()
    total += report
    total += report
    assert total.rows_in == 2 * len(raw) and total.duplicate == 4


def test_uncastable_integer_names_the_row():
    raw = pd.DataFrame({"title": ["a", "b"], "score": ["1", "2.5"]}, index=[1, 2])
    with pytest.raises(DataError, match=r"f.csv: row 2: column 'score'"):
        clean(raw, "f.csv")


def frame(times: list) -> pd.DataFrame:
    return pd.DataFrame({"id": range(len(times)), "time": pd.to_datetime(times)})


def test_split_is_ordered_by_time_and_keeps_undated_apart():
    rng = np.random.default_rng(0)
    times = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 10**6, 1000), unit="s")
    df = frame(list(times) + [None] * 50).sample(frac=1, random_state=1)
    split = time_split(df, valid_fraction=0.1, test_fraction=0.2)
    assert (len(split.train), len(split.valid), len(split.test), len(split.undated)) == (
        700, 100, 200, 50)  # fmt: skip
    assert split.undated["time"].isna().all()
    assert split.train["time"].max() < split.valid["time"].min()
    assert split.valid["time"].max() < split.test["time"].min()
    assert split.train["time"].is_monotonic_increasing
    ids = pd.concat(split)["id"]
    assert sorted(ids) == sorted(df["id"])


def test_split_never_cuts_through_a_timestamp():
    df = frame(["2020-01-01"] * 5 + ["2020-01-02"] * 5)
    split = time_split(df, valid_fraction=0.0, test_fraction=0.3)
    assert len(split.train) == 10 and split.test.empty  # ties stay on the earlier side
    split = time_split(frame(["2020-01-01"] * 6 + ["2020-01-02"] * 4), 0.0, 0.5)
    assert len(split.train) == 6 and len(split.test) == 4


def test_split_rejects_bad_fractions():
    with pytest.raises(ValueError, match="sum to less than 1"):
        time_split(frame(["2020-01-01"]), 0.6, 0.5)


def test_split_of_the_shipped_sample(sample_stories):
    split = time_split(load_stories())
    assert len(split.undated) == sample_stories["time"].isna().sum()
    assert split.train["time"].max() < split.valid["time"].min() <= split.valid["time"].max()
    assert split.valid["time"].max() < split.test["time"].min()


def test_loaders_return_canonical_frames(sample_stories):
    df = load_stories()
    assert len(df) == len(sample_stories) and dict(df.dtypes.astype(str)) == COLUMNS
    comments = load_comments()
    assert len(comments) > 10_000 and {"id", "by", "time", "parent", "text"} <= set(
        comments.columns
    )


def test_stats_reports_counts_span_quantiles_and_selections(sample_stories):
    result = CliRunner().invoke(app, ["data", "stats"])
    assert result.exit_code == 0, result.output
    assert f"stories      {len(sample_stories):,}" in result.output
    assert "p50=" in result.output and "p99=" in result.output
    for selection, count in sample_stories["selection"].value_counts().items():
        assert any(
            line.split()[:2] == [selection, str(count)] for line in result.output.splitlines()
        )
    missing = CliRunner().invoke(app, ["data", "stats", "--path", "/nonexistent/x.parquet"])
    assert missing.exit_code == 1 and "no such dataset or file" in missing.output


def assert_one_line_error(result, *words: str) -> None:
    """Failed, with an `Error: ...` line naming `words` and no traceback (a handled exit)."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0], lines[0]


def test_stats_on_a_csv_empty_or_foreign_file_is_a_one_line_error(tmp_path, sample_stories):
    csv = tmp_path / "stories.csv"
    sample_stories.head(3).to_csv(csv, index=False)
    result = CliRunner().invoke(app, ["data", "stats", "--path", str(csv)])
    assert_one_line_error(result, str(csv), "upvote data pull --source")

    empty = tmp_path / "empty.parquet"
    empty.touch()
    result = CliRunner().invoke(app, ["data", "stats", "--path", str(empty)])
    assert_one_line_error(result, str(empty), "empty")

    text = tmp_path / "notes.parquet"
    text.write_text("not parquet at all\n")
    result = CliRunner().invoke(app, ["data", "stats", "--path", str(text)])
    assert_one_line_error(result, str(text), "not a readable Parquet file")

    other = tmp_path / "other.parquet"
    pd.DataFrame({"word": ["a"], "count": [1]}).to_parquet(other)
    result = CliRunner().invoke(app, ["data", "stats", "--path", str(other)])
    assert_one_line_error(result, str(other), "missing column(s)")
