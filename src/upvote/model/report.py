"""The evaluation report: Markdown + HTML with PNG plots, written next to the model.

matplotlib is imported when a report is drawn, not when this module is: the service and the CLI's
other commands never pay for it.
"""

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from upvote.model.evaluate import decile_calibration, log_target


def write_report(
    directory: Path,
    results: dict,
    test: pd.DataFrame,
    predictions: dict[str, np.ndarray],
    quantiles: np.ndarray,
    history: list[dict],
) -> Path:
    """Plots + report.md + report.html into ``directory``; returns the HTML path."""
    import matplotlib

    matplotlib.use("Agg")  # no display: plots go to files
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    y = log_target(test["score"])
    ours = predictions["ours"]
    plots = {}

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.hexbin(ours, y, gridsize=40, bins="log", cmap="viridis")
    lim = [0, max(float(y.max()), float(ours.max()), 1.0)]
    ax.plot(lim, lim, "r--", lw=1)
    ax.set(
        xlabel="predicted log1p(score)", ylabel="actual log1p(score)", title="Predicted vs actual"
    )
    plots["predicted_vs_actual"] = fig

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, pred in predictions.items():
        cal = decile_calibration(y, pred)
        ax.plot(cal["predicted"], cal["actual"], "o-", label=name, ms=4)
    ax.plot(lim, lim, "k--", lw=1)
    ax.set(xlabel="mean predicted (decile)", ylabel="mean actual", title="Calibration by decile")
    ax.legend()
    plots["calibration"] = fig

    fig, ax = plt.subplots(figsize=(7, 4))
    residual = pd.Series(y - ours, index=pd.to_datetime(test["time"]).to_numpy()).sort_index()
    ax.plot(residual.index, residual.to_numpy(), ".", ms=2, alpha=0.3)
    ax.plot(residual.rolling(200, min_periods=20).mean(), "r-", lw=1.5, label="rolling mean (200)")
    ax.axhline(0, color="k", lw=1)
    ax.set(ylabel="actual - predicted (log1p)", title="Residuals over time (test split)")
    ax.legend()
    fig.autofmt_xdate()
    plots["residuals_over_time"] = fig

    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train loss (all heads)")
    ax.plot(epochs, [h["train_mse"] for h in history], "o-", label="train MSE (mean head)")
    ax.plot(epochs, [h["valid_mse"] for h in history], "o-", label="validation MSE (mean head)")
    ax.axvline(results["ours"]["best_epoch"], color="gray", ls=":", label="kept epoch")
    ax.set(xlabel="epoch", title="Loss curves")
    ax.legend()
    plots["loss_curves"] = fig

    fig, ax = plt.subplots(figsize=(5, 4))
    coverage = results["coverage"]
    nominal = [0.1, 0.5, 0.9, 0.8]
    labels = ["P(y<=p10)", "P(y<=p50)", "P(y<=p90)", "in [p10,p90]"]
    x = np.arange(len(nominal))
    ax.bar(x - 0.2, nominal, 0.2, label="nominal", color="lightgray")
    for shift, key in ((0.0, "uncalibrated"), (0.2, "calibrated")):
        ax.bar(x + shift, list(coverage[key].values()), 0.2, label=key)
    ax.set_xticks(x, labels)
    ax.set(ylim=(0, 1), title="Interval coverage (test split)")
    ax.legend()
    plots["coverage"] = fig

    for name, fig in plots.items():
        fig.tight_layout()
        fig.savefig(directory / f"{name}.png", dpi=90)
        plt.close(fig)
    (directory / "results.json").write_text(json.dumps(results, indent=2, default=float))
    markdown = render_markdown(results, list(plots))
    (directory / "report.md").write_text(markdown)
    html_path = directory / "report.html"
    html_path.write_text(render_html(markdown, list(plots)))
    return html_path


EXTRA_NAMES = {"text_score": "title score", "history": "track records"}
MODEL_LABELS = {
    "ours": "ours: Wide & Deep (title vectors + {extras})",
    "title_only": "ours, title vectors only",
    "metadata_only": "ours, metadata only (no title vectors)",
    "tfidf_ridge": "TF-IDF + ridge (title; alpha {tfidf_alpha:g})",
    "tfidf_metadata_ridge": "TF-IDF + metadata ridge (alpha {tfidf_metadata_alpha:g})",
    "gbm": "gradient-boosted trees (metadata + title score)",
    "constant": "constant (train mean)",
}


def _value(x: float) -> str:
    return "—" if x != x else f"{x:.4f}"  # NaN: a constant has no rank correlation


def _ci(values: list[float]) -> str:
    return f"[{values[0]:.3f}, {values[1]:.3f}]" if len(values) == 2 else ""


def metrics_table(results: dict) -> str:
    """One row per model: log-scale and raw-scale errors, Spearman and R2 with 95% intervals,
    AUC of >= 10 and >= 100 points."""
    rows = [
        "| model | Spearman [95% CI] | log R2 [95% CI] | log RMSE | raw RMSE | AUC >= 10 | "
        "AUC >= 100 |",
        "|---|---|---|---|---|---|---|",
    ]
    fill = {
        "extras": " + ".join(EXTRA_NAMES.get(e, e) for e in results["extras"]) or "nothing",
        "tfidf_alpha": results["tfidf_alpha"],
        "tfidf_metadata_alpha": results["tfidf_metadata_alpha"],
    }
    for name, label in MODEL_LABELS.items():
        if name not in results:
            continue
        m = results[name]
        rows.append(
            f"| {label.format(**fill)} | {_value(m['spearman'])} {_ci(m['spearman_ci'])} | "
            f"{m['log_r2']:.4f} {_ci(m['r2_ci'])} | {m['log_rmse']:.4f} | {m['raw_rmse']:.2f} | "
            f"{m['auc_10']:.3f} | {m['auc_100']:.3f} |"
        )
    return "\n".join(rows)


def validation_table(results: dict) -> str:
    """The same models on the validation split: where the defaults were chosen."""
    rows = ["| model | Spearman | log R2 | log RMSE |", "|---|---|---|---|"]
    for name, m in results.get("validation", {}).items():
        label = MODEL_LABELS[name].split(" (")[0].split(":")[0]
        rows.append(f"| {label} | {m['spearman']:.4f} | {m['log_r2']:.4f} | {m['log_rmse']:.4f} |")
    return "\n".join(rows)


def verdict(results: dict) -> str:
    seeds = results["ours"].get("seeds", {})
    rho, r2 = seeds.get("spearman", {}), seeds.get("log_r2", {})
    best = results["best_baseline"]
    spread = (
        f"Ours over its seeds: Spearman {rho['mean']:.4f} +- {rho['sd']:.4f}, log R2 "
        f"{r2['mean']:.4f} +- {r2['sd']:.4f} (the table shows the shipped seed). "
        if rho
        else ""
    )
    return (
        f"Verdict: ours beats the constant on log RMSE: **{results['beats_constant']}**; beats "
        f"TF-IDF + ridge on Spearman and R2: **{results['beats_tfidf']}**; beats the best "
        f"baseline ({MODEL_LABELS[best].split(' (')[0]}): **{results['beats_best_baseline']}**. "
        f"{spread}Stories at >= 10 points: {results['ours']['n_10']}, at >= 100: "
        f"{results['ours']['n_100']} of {results['n_test']}. Intervals that overlap are not a "
        "difference."
    )


def render_markdown(results: dict, plots: list[str]) -> str:
    cov = results["coverage"]
    reach = results["reach"]
    lines = [
        f"# Upvote model report: {results['version']}",
        "",
        f"Test split: {results['n_test']} stories from {results['test_from']} to "
        f"{results['test_to']} (the most recent {results['rows']} rows; trained on "
        f"{results['n_train']}, early-stopped on {results['n_valid']}).",
        "",
        "## Metrics (test split; log = log1p(score), raw = expm1 of the prediction)",
        "",
        "Every model is fitted in this run on the same training rows and tuned on the validation "
        "split only; the test split was never used to choose anything.",
        "",
        metrics_table(results),
        "",
        verdict(results),
        "",
        "## Validation split (where features, model and its settings were chosen)",
        "",
        validation_table(results),
        "",
        "## Intervals (quantile heads, shifted on the validation split)",
        "",
        "| | P(y<=p10) | P(y<=p50) | P(y<=p90) | inside [p10, p90] |",
        "|---|---|---|---|---|",
        "| nominal | 0.10 | 0.50 | 0.90 | 0.80 |",
    ]
    for key in ("uncalibrated", "calibrated"):
        c = cov[key]
        lines.append(
            f"| {key} | {c['below_p10']:.3f} | {c['below_p50']:.3f} | {c['below_p90']:.3f} | "
            f"{c['inside_p10_p90']:.3f} |"
        )
    lines += [
        "",
        f"P(score >= {reach['threshold']:g}): base rate {reach['base_rate']:.4f}, mean predicted "
        f"{reach['mean_predicted']:.4f} (before the validation shift "
        f"{reach['mean_predicted_uncalibrated']:.4f}), Brier {reach['brier']:.4f} (constant base "
        f"rate: {reach['brier_constant']:.4f}).",
        "",
        f"Titles with no known piece: {results['empty_titles']} of {results['n_test']} (test).",
        "",
        "## Plots",
        "",
    ]
    lines += [f"![{name}]({name}.png)" for name in plots]
    return "\n".join(lines) + "\n"


def render_html(markdown: str, plots: list[str], title: str = "Upvote model report") -> str:
    """A dependency-free HTML page: tables as <table>, images inline, the rest as paragraphs."""
    body, table = [], []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            if not set(line) <= set("|-: "):
                table.append([html.escape(c.strip()) for c in line.strip("|").split("|")])
            continue
        if table:
            head, *rows = table
            body.append(
                "<table><tr>"
                + "".join(f"<th>{c}</th>" for c in head)
                + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
                + "</table>"
            )
            table = []
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("!["):
            name = line[2 : line.index("]")]
            body.append(f'<figure><img src="{name}.png" alt="{name}"></figure>')
        elif line:
            text = html.escape(line).replace("**", "")
            body.append(f"<p>{text}</p>")
    style = (
        "body{font-family:sans-serif;max-width:60rem;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem}"
        "img{max-width:100%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
