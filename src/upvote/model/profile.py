"""The reference profile of a model's data, and drift against it (PSI, two-sample KS).

A ``Profile`` describes, per feature, what the model saw when it was trained: for a continuous
feature its quantile bins, their proportions and a sorted sample of values (for KS); for a
categorical one its categories and their proportions. ``compare`` measures a window of new stories
against it. Training stores the profile in the bundle (``profile.json``); the service (its
``/metrics`` and ``/monitoring``) and ``upvote monitor --drift`` read it.

The features, all computed by ``story_values`` from what a story carries (so the service records
only raw stories per request and computes these when drift is read):

    prediction   log1p of the predicted score (continuous)
    title_chars  the title's length in characters (continuous)
    pieces       SentencePiece pieces of the title (continuous)
    oov_share    share of the pieces without a word2vec vector: the featurizer's
                 ``unknown_piece_share``, pieces past ``max_tokens`` counted as unknown (continuous)
    domain       the url's domain (``metadata.domain_key``): the reference's commonest, "other",
                 or "none" for a text post; a story whose url is unknown (the MLX contract sends
                 none) is left out rather than counted as a category of its own
    form         Show/Ask/Tell/Launch HN or "plain"
    hour         hour of the day, UTC; a story without a time is left out

The reference is the *validation split* (``train.fit_model``), for every feature, not the
training split, because it is what the service will see: stories the model was not fitted on
(its predictions for its own training rows are over-fitted: on the shipped sample their PSI
against the validation split's is ~0.2, the alert level, with no drift at all), whose titles were
not in the tokenizer's and word2vec's corpus (so their share of pieces without a vector is as for
new titles), and from the newest days before the test period (the training split reaches back
ten years of changing domains). It is 10% of the rows: ~3,000 stories for a full model, enough for
10 bins. Hour-of-day drift needs a reference and a window that each span whole days: a
``--quick`` model's validation split covers ten hours of one day, so its profile has no hour.

Numpy only (no scipy.stats, torch or scikit-learn): the service imports it.
"""

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from upvote.model.features import Featurizer, Stories, url_known
from upvote.model.metadata import domain_key, text, title_form, utc_times

CONTINUOUS = "continuous"
CATEGORICAL = "categorical"
BINS = 10  # quantile bins of a continuous feature
SAMPLE = 4000  # reference values kept (sorted) per continuous feature for KS
TOP_DOMAINS = 20  # at most this many domains get a category of their own ...
MIN_DOMAIN_SHARE = 0.01  # ... each with at least this share of the reference's known urls
EPSILON = 1e-4  # an empty bin's proportion in PSI (its log would be infinite)
FORMS = ("show", "ask", "tell", "launch")  # the order of metadata.FORM_NAMES' first four
OTHER, NONE, PLAIN = "other", "none", "plain"
CONTINUOUS_FEATURES = ("prediction", "title_chars", "pieces", "oov_share")
MIN_HOUR_SPAN = np.timedelta64(1, "D")  # a shorter reference has no hour-of-day profile
HOURS = tuple(f"{h:02d}" for h in range(24))


def psi(ref_props: Sequence[float], cur_props: Sequence[float], eps: float = EPSILON) -> float:
    """Population stability index: sum of (cur - ref) * ln(cur / ref) over the bins, each
    proportion at least ``eps``. 0 = the same distribution; > 0.2 is the usual "shifted"."""
    ref = np.maximum(np.asarray(ref_props, dtype=np.float64), eps)
    cur = np.maximum(np.asarray(cur_props, dtype=np.float64), eps)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def ks(ref_sorted: np.ndarray, current: Sequence[float]) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs
    (``scipy.stats.ks_2samp``'s statistic, in numpy: the service does not import scipy.stats).
    ``ref_sorted`` must be sorted."""
    cur = np.sort(np.asarray(current, dtype=np.float64))
    if not len(ref_sorted) or not len(cur):
        return 0.0
    points = np.concatenate([ref_sorted, cur])
    ref_cdf = np.searchsorted(ref_sorted, points, side="right") / len(ref_sorted)
    cur_cdf = np.searchsorted(cur, points, side="right") / len(cur)
    return float(np.max(np.abs(ref_cdf - cur_cdf)))


@dataclass
class FeatureProfile:
    """One feature of the reference: ``edges`` (continuous: the inner bin edges, bins closed on
    the right: v falls in bin ``searchsorted(edges, v, "left")``, so a mass of ties such as the
    many titles without an unknown piece keeps a bin of its own and anything above it is told
    apart) or ``categories``; the reference's proportion per bin or category; and for a
    continuous feature a sorted sample of its values."""

    name: str
    kind: str
    props: list[float]
    count: int  # reference stories that had a value
    edges: list[float] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    sample: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def proportions(self, values: Sequence[Any]) -> np.ndarray:
        """The share of ``values`` in each bin or category (a value outside the categories
        counts as the last one, "other")."""
        if self.kind == CONTINUOUS:
            data = np.asarray(values, dtype=np.float64)
            bins = np.searchsorted(np.asarray(self.edges), data, side="left")
            counts = np.bincount(bins, minlength=len(self.edges) + 1)
        else:
            index = {c: i for i, c in enumerate(self.categories)}
            last = len(self.categories) - 1
            counts = np.bincount([index.get(v, last) for v in values], minlength=last + 1)
        return counts / max(len(values), 1)

    def to_dict(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "props": self.props, "count": self.count}
        if self.kind == CONTINUOUS:
            out |= {"edges": self.edges, "sample": self.sample.tolist()}
        else:
            out["categories"] = self.categories
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FeatureProfile":
        return cls(
            name=d["name"],
            kind=d["kind"],
            props=[float(p) for p in d["props"]],
            count=int(d["count"]),
            edges=[float(e) for e in d.get("edges", [])],
            categories=[str(c) for c in d.get("categories", [])],
            sample=np.sort(np.asarray(d.get("sample", []), dtype=np.float64)),
        )


@dataclass
class FeatureDrift:
    """One feature of a window against the reference; ``psi``/``ks`` are None without values
    (``ks`` is None for a categorical feature)."""

    feature: str
    kind: str
    stories: int  # stories of the window with a value for this feature
    psi: float | None
    ks: float | None


@dataclass
class Profile:
    features: dict[str, FeatureProfile]
    source: str = ""  # which stories it describes, in words

    def compare(self, values: Mapping[str, Sequence[Any]]) -> list[FeatureDrift]:
        """Drift of ``values`` (``story_values`` of a window of stories) per feature."""
        out = []
        for name, ref in self.features.items():
            current = values.get(name, [])
            if not len(current):
                out.append(FeatureDrift(name, ref.kind, 0, None, None))
                continue
            stability = psi(ref.props, ref.proportions(current))
            distance = ks(ref.sample, current) if ref.kind == CONTINUOUS else None
            out.append(FeatureDrift(name, ref.kind, len(current), stability, distance))
        return out

    def to_json(self) -> str:
        features = [f.to_dict() for f in self.features.values()]
        return json.dumps({"source": self.source, "features": features})

    @classmethod
    def from_json(cls, raw: str) -> "Profile":
        d = json.loads(raw)
        features = [FeatureProfile.from_dict(f) for f in d["features"]]
        return cls({f.name: f for f in features}, d.get("source", ""))


def story_values(
    featurizer: Featurizer, stories: Stories, predicted_log1p: Sequence[float]
) -> dict[str, list]:
    """Per feature (the module docstring), the values of ``stories`` (a DataFrame or a list of
    dicts, as ``Featurizer.transform`` reads them); ``predicted_log1p``: the model's log1p of
    each story's predicted score. Categorical values are strings; stories without a known url
    or time have no domain or hour."""
    n = len(stories)
    if isinstance(stories, pd.DataFrame):
        titles = stories["title"].tolist() if "title" in stories.columns else [None] * n
        urls = stories["url"].tolist() if "url" in stories.columns else [None] * n
    else:
        titles = [s.get("title") for s in stories]
        urls = [s.get("url") for s in stories]
    titles = [text(t).strip() for t in titles]
    ids = featurizer.tokenizer.encode_batch(titles)
    known_pieces = (featurizer.token_rows(ids) >= 0).sum(axis=1).tolist() if n else []
    stamps = utc_times(_times(stories))
    hours = stamps.astype("datetime64[h]").astype(np.int64) % 24
    unknown = np.isnat(stamps).tolist()
    domains = []
    for known, url in zip(url_known(stories).tolist(), urls, strict=True):
        if known:
            domains.append(domain_key(url) or NONE)
    forms = []
    for title in titles:
        prefix = title_form(title)[: len(FORMS)]
        forms.append(FORMS[prefix.index(1.0)] if 1.0 in prefix else PLAIN)
    return {
        "prediction": [float(p) for p in predicted_log1p],
        "title_chars": [len(t) for t in titles],
        "pieces": [len(p) for p in ids],
        "oov_share": [1.0 - k / max(len(p), 1) for k, p in zip(known_pieces, ids, strict=True)],
        "domain": domains,
        "form": forms,
        "hour": [HOURS[h] for h, nat in zip(hours.tolist(), unknown, strict=True) if not nat],
    }


def continuous_feature(
    name: str, values: Sequence[float], rng: np.random.Generator
) -> FeatureProfile:
    """``BINS`` quantile bins of ``values`` (fewer where quantiles tie) and a sorted sample."""
    data = np.asarray(values, dtype=np.float64)
    inner = np.quantile(data, np.arange(1, BINS) / BINS) if len(data) else np.zeros(0)
    edges = np.unique(inner)  # ties (many titles with no unknown piece) merge bins
    counts = np.bincount(np.searchsorted(edges, data, side="left"), minlength=len(edges) + 1)
    sample = data if len(data) <= SAMPLE else rng.choice(data, SAMPLE, replace=False)
    props = (counts / max(len(data), 1)).tolist()
    return FeatureProfile(name, CONTINUOUS, props, len(data), edges.tolist(), [], np.sort(sample))


def categorical_feature(
    name: str, values: Sequence[str], categories: Sequence[str]
) -> FeatureProfile:
    """The share of ``values`` in each of ``categories`` (the last takes any other value)."""
    profile = FeatureProfile(name, CATEGORICAL, [], len(values), categories=list(categories))
    profile.props = profile.proportions(values).tolist()
    return profile


def build_profile(
    featurizer: Featurizer, stories: Stories, predicted_log1p: Sequence[float], name: str = ""
) -> Profile:
    """The profile of ``stories`` (``name``: which ones, in words) and the model's predictions
    for them (``story_values``).

    The hour of the day is profiled only when the stories span a day or more: the hours of a
    shorter reference are those it happened to cover, and any other hour would read as drift.

    Domains: the commonest (at most ``TOP_DOMAINS``, each at least ``MIN_DOMAIN_SHARE`` of the
    known urls) get a category; the rest share "other". Few, not-too-rare categories keep the
    PSI's sampling noise small for a window of a few hundred stories.
    """
    values = story_values(featurizer, stories, predicted_log1p)
    counts = pd.Series(values["domain"], dtype=object).value_counts()
    least = MIN_DOMAIN_SHARE * len(values["domain"])
    top = [d for d, c in counts.items() if d != NONE and c >= least]
    domains = [*top[:TOP_DOMAINS], NONE, OTHER]
    rng = np.random.default_rng(0)
    features = [
        *(continuous_feature(f, values[f], rng) for f in CONTINUOUS_FEATURES),
        categorical_feature("domain", values["domain"], domains),
        categorical_feature("form", values["form"], [*FORMS, PLAIN]),
    ]
    source = f"{name + ': ' if name else ''}{len(stories)} stories"
    times = utc_times(_times(stories))
    times = times[~np.isnat(times)]
    if len(times):
        source += f", {str(times.min())[:16].replace('T', ' ')} to "
        source += str(times.max())[:16].replace("T", " ")
    if len(times) and times.max() - times.min() >= MIN_HOUR_SPAN:
        features.append(categorical_feature("hour", values["hour"], HOURS))
    else:
        source += " (under a day: no hour-of-day profile)"
    return Profile({f.name: f for f in features}, source)


def _times(stories: Stories) -> pd.Series | list:
    if isinstance(stories, pd.DataFrame):
        return stories["time"] if "time" in stories.columns else [None] * len(stories)
    return [s.get("time") for s in stories]


def log1p_score(score: float) -> float:
    """A predicted score (``predicted_score``, >= 0) on the scale of the profile's prediction."""
    return math.log1p(max(score, 0.0))
