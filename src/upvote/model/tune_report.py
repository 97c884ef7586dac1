"""The report of an ``upvote tune`` study: report.md + report.html with PNG plots.

What the search did (each trial's validation MSE, the best so far, where the pruner stopped
trials), which parameters mattered (Optuna's parameter importances) and every trial in a table.
Plain HTML like the model's report (``report.render_html``); matplotlib and optuna are imported
when a report is drawn, not when this module is.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from upvote.model.report import render_html

if TYPE_CHECKING:
    import optuna


def importances(study: optuna.Study) -> tuple[dict[str, float], str]:
    """Optuna's parameter importances (most important first), or ``{}`` and a sentence saying
    why there are none: with few complete trials Optuna cannot tell the parameters apart and
    returns equal values, which would read as a finding."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    why = f"{len(complete)} complete trial(s) are too few to rank the parameters"
    if len(complete) < 2:
        return {}, why + "."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        found = optuna.importance.get_param_importances(study)
    if len(set(found.values())) <= 1:
        said = "; ".join(sorted({str(w.message) for w in caught}))
        return {}, f"{why} (Optuna: {said or 'all importances equal'})."
    return found, ""


def _number(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def trials_table(study: optuna.Study) -> list[str]:
    """Markdown rows: one per trial, with its state, value, epochs run and parameters."""
    lines = [
        "| trial | state | validation MSE | epochs | seconds | parameters |",
        "|---|---|---|---|---|---|",
    ]
    for trial in study.get_trials(deepcopy=False):
        value = "" if trial.value is None else f"{trial.value:.4f}"
        seconds = "" if trial.duration is None else f"{trial.duration.total_seconds():.1f}"
        params = ", ".join(f"{k}={_number(v)}" for k, v in sorted(trial.params.items()))
        lines.append(
            f"| {trial.number} | {trial.state.name.lower()} | {value} | "
            f"{len(trial.intermediate_values)} | {seconds} | {params} |"
        )
    return lines


def write_report(study: optuna.Study, directory: Path) -> Path:
    """history.png (+ importances.png), report.md and report.html into ``directory``."""
    import matplotlib

    matplotlib.use("Agg")  # no display: plots go to files
    import matplotlib.pyplot as plt
    import optuna
    from matplotlib.ticker import MaxNLocator

    state = optuna.trial.TrialState
    directory.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == state.COMPLETE]
    pruned = [t for t in trials if t.state == state.PRUNED and t.intermediate_values]
    plots = ["history"]

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([t.number for t in complete], [t.value for t in complete], "o", label="complete")
    best, running = [], float("inf")
    for t in complete:
        running = min(running, t.value)
        best.append(running)
    if complete:  # the best so far holds until the last trial
        numbers = [t.number for t in complete] + [trials[-1].number]
        ax.step(numbers, [*best, best[-1]], "g-", where="post", label="best so far")
    last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
    ax.plot([t.number for t in pruned], last, "rx", label="pruned (last reported)")
    ax.set(xlabel="trial", ylabel="validation MSE (log1p score)", title="Optimisation history")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    figures = [fig]

    found, note = importances(study)
    if found:
        fig, ax = plt.subplots(figsize=(7, 0.4 * len(found) + 1))
        names = list(found)[::-1]
        ax.barh(names, [found[n] for n in names])
        ax.set(xlabel="importance (Optuna's default evaluator)", title="Parameter importances")
        figures.append(fig)
        plots.append("importances")
    for name, fig in zip(plots, figures, strict=True):
        fig.tight_layout()
        fig.savefig(directory / f"{name}.png", dpi=90)
        plt.close(fig)

    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in state}
    lines = [
        f"# Tuning report: study {study.study_name}",
        "",
        f"{len(trials)} trials: "
        + ", ".join(f"{n} {name}" for name, n in counts.items() if n)
        + ". Each scores the best epoch's validation MSE of log1p(score); the test split is "
        "never read. A pruned trial was stopped after an epoch worse than the median of earlier "
        "trials at that epoch.",
        "",
    ]
    if complete:
        top = study.best_trial
        lines += [f"## Best trial: {top.number} (validation MSE {top.value:.4f})", ""]
        lines += ["| parameter | value |", "|---|---|"]
        lines += [f"| {k} | {_number(v)} |" for k, v in sorted(top.params.items())]
        lines.append("")
    lines += ["## Optimisation history", "", "![history](history.png)", ""]
    lines += ["## Parameter importances", ""]
    lines += ["![importances](importances.png)"] if found else [note]
    lines += ["", "## Trials", "", *trials_table(study)]
    markdown = "\n".join(lines) + "\n"
    (directory / "report.md").write_text(markdown)
    html_path = directory / "report.html"
    html_path.write_text(render_html(markdown, plots, title=f"Tuning report: {study.study_name}"))
    return html_path
