"""`upvote data stats`: what a dataset holds, and how its selections differ (they differ a lot)."""

import pandas as pd

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


def describe(df: pd.DataFrame) -> str:
    """Counts, time span, score quantiles and a breakdown by `selection`, as text."""
    dated = df["time"].dropna()
    span = f"{dated.min():%Y-%m-%d} .. {dated.max():%Y-%m-%d}" if len(dated) else "none"
    score = df["score"].dropna().astype("float64")
    quantiles = "  ".join(f"p{round(q * 100)}={score.quantile(q):g}" for q in QUANTILES)
    lines = [
        f"stories      {len(df):,} ({df['id'].nunique():,} distinct ids, "
        f"{df['id'].isna().sum():,} without id)",
        f"time span    {span} ({len(df) - len(dated):,} undated)",
        f"score        mean={score.mean():.1f}  {quantiles}" if len(score) else "score        none",
        "",
        "by selection:",
    ]
    by = df.assign(score=df["score"].astype("float64")).groupby("selection", dropna=False)
    table = pd.DataFrame(
        {
            "stories": by.size(),
            "share": (by.size() / max(len(df), 1)).map("{:.1%}".format),
            "undated": by["time"].apply(lambda t: int(t.isna().sum())),
            "first": by["time"].min().dt.strftime("%Y-%m-%d").fillna("-"),
            "last": by["time"].max().dt.strftime("%Y-%m-%d").fillna("-"),
            "median_score": by["score"].median(),
            "mean_score": by["score"].mean().round(1),
        }
    ).sort_values("stories", ascending=False)
    lines.append(table.to_string() if len(table) else "(empty)")
    return "\n".join(lines)
