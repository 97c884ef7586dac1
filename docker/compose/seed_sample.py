"""Fill an EMPTY hacker_news.items with the shipped sample's unfiltered stories (compose demo).

compose.yaml's PostgreSQL starts empty (docker/compose/initdb/ creates only the schema), so the
train job runs this before `upvote data pull`: the pipeline then really goes database -> pull ->
train. Only stories whose `selection` is "unfiltered" (every story of their time window) are
loaded, because a pull labels PostgreSQL rows "unfiltered" and the model trains on those; the
biased rows of the sample (commented_only, top_only) would be mislabelled. A table that already
has rows (a real database behind DATABASE_URL) is left untouched.

UPVOTE_SEED_UNTIL=YYYY-MM-DD seeds only the stories posted before that day, leaving the later ones
to be inserted afterwards (``python seed_sample.py --since YYYY-MM-DD``, which adds them to a table
that has rows): the way to watch the retrain profile pull genuinely new stories.

Waits up to UPVOTE_DB_WAIT seconds (default 60) for the server: compose's `service_healthy` is
not enforced by every compose tool (podman-compose ignores it with podman < 4.6).
"""

import os
import sys
import time

import pandas as pd
import psycopg

from upvote.data import load_stories
from upvote.data.dataset import SAMPLE_DIR

COLUMNS = ["id", "type", "by", "time", "title", "url", "score", "descendants"]


def connect(url: str, wait: float) -> psycopg.Connection:
    deadline = time.monotonic() + wait
    while True:
        try:
            return psycopg.connect(url, connect_timeout=5)
        except psycopg.OperationalError as error:
            if time.monotonic() > deadline:
                sys.exit(f"Error: PostgreSQL not reachable after {wait:.0f} s: {error}")
            time.sleep(1)


def day(text: str, name: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(text)
    except ValueError:
        sys.exit(f"Error: {name} {text!r} is not a date (YYYY-MM-DD)")


def main() -> None:
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("Error: DATABASE_URL is not set")
    since = day(sys.argv[2], "--since") if sys.argv[1:2] == ["--since"] else None
    until = os.environ.get("UPVOTE_SEED_UNTIL") or None
    with connect(url, float(os.environ.get("UPVOTE_DB_WAIT", "60"))) as conn:
        has_rows = conn.execute("SELECT EXISTS (SELECT 1 FROM hacker_news.items)").fetchone()[0]
        if has_rows and since is None:
            print("hacker_news.items already has rows: not seeded")
            return
        stories = load_stories(SAMPLE_DIR / "stories.parquet")  # the shipped file, not /data
        stories = stories[(stories["selection"] == "unfiltered") & stories["id"].notna()]
        if since is not None:
            stories = stories[stories["time"] >= since]
        elif until is not None:
            stories = stories[stories["time"] < day(until, "UPVOTE_SEED_UNTIL")]
        rows = stories[COLUMNS].astype(object).where(stories[COLUMNS].notna(), None)
        with conn.cursor().copy(
            "COPY hacker_news.items (id, type, by, time, title, url, score, descendants) FROM STDIN"
        ) as copy:
            for row in rows.itertuples(index=False):
                copy.write_row(row)
    print(f"seeded hacker_news.items with {len(rows)} unfiltered stories of the shipped sample")


if __name__ == "__main__":
    main()
