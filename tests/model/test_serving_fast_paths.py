"""The service's pure-Python shortcuts give the very floats of the general numpy paths.

The service featurizes a few stories per call, as a list of dicts whose ``time`` pydantic parsed
into a datetime (or left out); ``era_of`` computes their era without arrays. These tests hold it
to the numpy path (``era(utc_times(...))``, which training reads) bit for bit, on the sample's
real story times in every form a caller may send.
"""

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from upvote.data.dataset import load_stories
from upvote.model.features import FeatureConfig, Featurizer
from upvote.model.metadata import era, era_of, utc_times
from upvote.tokenizer.sentencepiece import SentencePieceTokenizer

KOLKATA = timezone(timedelta(hours=5, minutes=30))
FORMS = {
    "naive datetime": lambda t: t.to_pydatetime(),
    "utc datetime": lambda t: t.to_pydatetime().replace(tzinfo=UTC),
    "offset datetime": lambda t: t.tz_localize("UTC").tz_convert(KOLKATA).to_pydatetime(),
    "iso string": lambda t: t.tz_localize("UTC").tz_convert(KOLKATA).isoformat(),
    "unix seconds": lambda t: int(t.timestamp()),
}


@pytest.fixture(scope="module")
def stories() -> pd.DataFrame:
    return load_stories().sample(3000, random_state=0)


@pytest.mark.parametrize("form", list(FORMS))
def test_era_of_is_the_numpy_era_bit_for_bit(stories, form):
    times = stories["time"]
    assert times.isna().any()  # unknown times are in the sample too
    values = [None if pd.isna(t) else FORMS[form](t) for t in times]
    values += [datetime(1969, 12, 31, 23, 59), datetime(2027, 1, 1, 0, 0, 0, 1, tzinfo=KOLKATA)]
    expected = era(utc_times(values)).tolist()
    assert [era_of(v) for v in values] == expected


def test_records_and_dataframe_featurize_alike_without_the_time_field(stories):
    """The default features (era, no hour-of-week field): the list-of-dicts path takes the
    scalar era, the DataFrame path the numpy one; every dense number is the same."""
    tokenizer = SentencePieceTokenizer.train(stories["title"], vocab_size=300)
    keys = {tokenizer.id_to_piece(i): i for i in range(0, len(tokenizer), 2)}  # half known
    config = FeatureConfig(history=False, text_score=False)
    assert config.era and not config.time
    featurizer = Featurizer(tokenizer, keys, config)
    frame = stories[["title", "time"]].head(500)
    records = [
        {"title": title, "time": None if pd.isna(t) else t.to_pydatetime().replace(tzinfo=UTC)}
        for title, t in zip(frame["title"], frame["time"], strict=True)
    ]
    expected = featurizer.transform(frame)
    for batch in (records[:1], records[:7], records):
        got = featurizer.transform(batch)
        np.testing.assert_array_equal(got.dense, expected.dense[: len(batch)])
        width = got.tokens.shape[1]
        np.testing.assert_array_equal(got.tokens, expected.tokens[: len(batch), :width])
