"""Metrics for the time-based test split: what the report says about every model.

On the log scale (what is trained) and on the raw scale (what users read); Spearman's rank
correlation; bootstrap 95% intervals, since a test week of ~3,000 stories leaves Spearman about
+-0.03 of noise; AUC of telling stories at >= 10 and >= 100 points apart; calibration by decile;
interval coverage of the quantile heads.
"""

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr


def log_target(scores: pd.Series) -> np.ndarray:
    """log1p(max(score, 0)): HN scores are heavy-tailed and a few are -1."""
    return np.log1p(scores.astype("float64").clip(lower=0).fillna(0).to_numpy())


def regression_metrics(y_log: np.ndarray, pred_log: np.ndarray) -> dict[str, float]:
    def scores(y, p):
        err = p - y
        ss_tot = float(np.sum((y - y.mean()) ** 2))
        return {
            "rmse": float(np.sqrt(np.mean(err**2))),
            "mae": float(np.mean(np.abs(err))),
            "r2": 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else float("nan"),
        }

    log = scores(y_log, pred_log)
    raw = scores(np.expm1(y_log), np.expm1(np.maximum(pred_log, 0)))
    rho = spearmanr(y_log, pred_log).statistic if np.ptp(pred_log) > 0 else float("nan")
    return {
        **{f"log_{k}": v for k, v in log.items()},
        **{f"raw_{k}": v for k, v in raw.items()},
        "spearman": float(rho),
    }


def decile_calibration(y_log: np.ndarray, pred_log: np.ndarray) -> pd.DataFrame:
    """Mean prediction vs mean outcome per decile of the prediction (ties merge deciles)."""
    ranks = pd.Series(pred_log).rank(method="first")
    bins = pd.qcut(ranks, 10, labels=False) if len(ranks) >= 10 else np.zeros(len(ranks), int)
    df = pd.DataFrame({"decile": bins, "predicted": pred_log, "actual": y_log})
    return df.groupby("decile").agg(
        n=("actual", "size"), predicted=("predicted", "mean"), actual=("actual", "mean")
    )


def interval_coverage(y_log: np.ndarray, q: np.ndarray) -> dict[str, float]:
    """Share of outcomes below each quantile and inside [p10, p90] (nominal 0.1/0.5/0.9/0.8)."""
    return {
        "below_p10": float(np.mean(y_log <= q[:, 0])),
        "below_p50": float(np.mean(y_log <= q[:, 1])),
        "below_p90": float(np.mean(y_log <= q[:, 2])),
        "inside_p10_p90": float(np.mean((y_log >= q[:, 0]) & (y_log <= q[:, 2]))),
    }


def r2_score(y: np.ndarray, p: np.ndarray) -> float:
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((p - y) ** 2)) / ss_tot if ss_tot > 0 else float("nan")


def bootstrap_intervals(
    y_log: np.ndarray, pred_log: np.ndarray, n: int = 400, seed: int = 0
) -> dict[str, list[float]]:
    """95% percentile-bootstrap intervals of Spearman and R2 (log scale), stories resampled."""
    rng = np.random.default_rng(seed)
    rhos, r2s = [], []
    for _ in range(n):
        i = rng.integers(0, len(y_log), len(y_log))
        y, p = y_log[i], pred_log[i]
        if np.ptp(p) > 0:
            rhos.append(np.corrcoef(rankdata(y), rankdata(p))[0, 1])
        r2s.append(r2_score(y, p))

    def interval(values: list[float]) -> list[float]:
        return [float(v) for v in np.nanpercentile(values, [2.5, 97.5])] if values else []

    return {"spearman_ci": interval(rhos), "r2_ci": interval(r2s)}


def auc(hit: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count half); NaN if one class is absent."""
    positives = int(hit.sum())
    negatives = len(hit) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[hit].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def reach_metrics(y_log: np.ndarray, pred_log: np.ndarray, thresholds=(10, 100)) -> dict:
    """AUC of ranking stories at >= each score threshold above the others, with their counts."""
    out = {}
    for t in thresholds:
        hit = y_log >= np.log1p(t)
        out[f"auc_{t}"] = auc(hit, pred_log)
        out[f"n_{t}"] = int(hit.sum())
    return out


VALID_KEYS = ("spearman", "log_r2", "log_rmse")
SUMMARY_KEYS = (
    "validation",
    "ours",
    "title_only",
    "metadata_only",
    "tfidf_ridge",
    "tfidf_metadata_ridge",
    "gbm",
    "constant",
    "coverage",
    "reach",
    "beats_constant",
    "beats_tfidf",
    "beats_best_baseline",
    "best_baseline",
)


def summary(results: dict) -> dict:
    """The results a bundle's metadata keeps (the report has the rest)."""
    return {k: results[k] for k in SUMMARY_KEYS}
