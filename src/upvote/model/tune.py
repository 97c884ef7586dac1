"""`upvote tune`: an Optuna search over ``TrainOptions``, scored on the validation split.

A trial samples options from ``SearchSpace``, runs the pipeline up to the fitted regressor
(``train.build``: no evaluation, nothing published) and scores the best epoch's validation MSE
of log1p(score); the test split is never read, so it stays a fair test of the chosen options.
After each epoch the trial reports that MSE, and the median pruner stops a trial that is worse
than the median of the earlier trials at the same epoch: a bad trial costs a few epochs.

A study lives in an Optuna storage: an SQLite file under the data dir by default, or any RDB
URL (PostgreSQL: machines running ``upvote tune`` against one URL share the study). Each trial
keeps its full ``TrainOptions`` as the user attribute ``options``, so ``upvote train --params``
retrains the best one exactly.

optuna is imported inside the functions: the service imports ``upvote.model`` and never tunes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from upvote.model.train import TrainOptions, build, quick_options
from upvote.settings import get_settings

if TYPE_CHECKING:
    import optuna

DEFAULT_STUDY = "upvote"
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # also a folder name under tune/


@dataclass(frozen=True)
class SearchSpace:
    """What a trial chooses. Parameters are named after the ``TrainOptions`` field they set."""

    hidden: tuple[str, ...] = ("64", "128", "256", "256,128")  # MLP widths (choices are scalars)
    dropout: tuple[float, float] = (0.0, 0.5)
    lr: tuple[float, float] = (3e-4, 1e-2)  # sampled on a log scale, as weight_decay
    weight_decay: tuple[float, float] = (1e-4, 1e-1)
    max_epochs: tuple[int, int] = (10, 60)  # early stopping on validation still applies
    vector_size: tuple[int, ...] = (50, 100, 200)
    window: tuple[int, int] = (2, 8)
    w2v_epochs: tuple[int, int] = (3, 10)
    min_count: tuple[int, int] = (1, 10)
    features: tuple[str, ...] = ("history", "form", "era", "time", "text_score", "domain")
    startup_trials: int = 5  # the pruner waits for this many complete trials ...
    warmup_epochs: int = 2  # ... and prunes a trial only after this many epochs


# Within ``quick_options``' caps (hidden (32,), word2vec dim <= 32 and 1 epoch, <= 3 epochs), so
# ``upvote train --quick --params`` trains the very options of the trial; the pruner starts after
# one trial, so that a search of a few trials (the tests) prunes too.
QUICK_SPACE = SearchSpace(
    hidden=("32",),
    max_epochs=(2, 3),
    vector_size=(16, 32),
    w2v_epochs=(1, 1),
    min_count=(1, 5),
    startup_trials=1,
    warmup_epochs=0,
)


def suggest(trial: optuna.Trial, base: TrainOptions, space: SearchSpace) -> TrainOptions:
    """``base`` with the values ``trial`` samples from ``space``."""
    hidden = trial.suggest_categorical("regressor.hidden", space.hidden)
    return replace(
        base,
        word2vec=replace(
            base.word2vec,
            vector_size=trial.suggest_categorical("word2vec.vector_size", space.vector_size),
            window=trial.suggest_int("word2vec.window", *space.window),
            epochs=trial.suggest_int("word2vec.epochs", *space.w2v_epochs),
            min_count=trial.suggest_int("word2vec.min_count", *space.min_count),
        ),
        features=replace(
            base.features,
            **{
                name: trial.suggest_categorical(f"features.{name}", (True, False))
                for name in space.features
            },
        ),
        regressor=replace(
            base.regressor,
            hidden=tuple(int(width) for width in hidden.split(",")),
            dropout=trial.suggest_float("regressor.dropout", *space.dropout),
            lr=trial.suggest_float("regressor.lr", *space.lr, log=True),
            weight_decay=trial.suggest_float(
                "regressor.weight_decay", *space.weight_decay, log=True
            ),
            max_epochs=trial.suggest_int("regressor.max_epochs", *space.max_epochs),
        ),
    )


def objective(trial: optuna.Trial, base: TrainOptions, space: SearchSpace) -> float:
    """The best validation MSE of the options ``trial`` samples; raises TrialPruned when the
    pruner stops it after an epoch, ValueError for options that cannot train."""
    import optuna

    options = suggest(trial, base, space)
    trial.set_user_attr("options", options.to_dict())

    def report(epoch: int, valid_mse: float) -> None:
        trial.report(valid_mse, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"validation MSE {valid_mse:.4f} after epoch {epoch}")

    try:
        built = build(options, on_epoch=report, log=lambda _: None)
    except ValueError as err:  # the study records the trial as failed and goes on
        trial.set_user_attr("error", str(err))
        raise
    trial.set_user_attr("history", built.history)
    trial.set_user_attr("timings", built.timings)
    return built.history[built.best_epoch - 1]["valid_mse"]


def default_storage() -> str:
    """The SQLite file ``<data_dir>/optuna.db``: one machine's studies, no server to run."""
    data_dir = get_settings().data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'optuna.db'}"


def study_dir(study_name: str) -> Path:
    """Where ``upvote tune`` writes a study's best.json and report: ``<data_dir>/tune/<study>``."""
    return get_settings().data_dir / "tune" / study_name


def tune(
    base: TrainOptions,
    study_name: str = DEFAULT_STUDY,
    storage: str | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    jobs: int = 1,
    seed: int = 0,
    quick: bool = False,
    log: Callable[[str], None] = print,
    on_trial_end: Callable[[optuna.trial.FrozenTrial], None] | None = None,
) -> optuna.Study:
    """Run ``trials`` more trials (or until ``timeout`` seconds) of the study ``study_name``,
    created in ``storage`` unless it exists there. ``quick``: ``quick_options`` and
    ``QUICK_SPACE``.

    ``on_trial_end(frozen_trial)`` is the one hook for tracking: it runs after every trial,
    complete, pruned or failed, with its number, state, params, value, ``intermediate_values``
    (validation MSE per epoch) and user attributes: ``options`` (always), ``history`` and
    ``timings`` (complete trials), ``error`` (failed ones).
    A trial that raises ValueError (options that cannot train) is recorded as failed and the
    study goes on; storage errors propagate.
    """
    import optuna

    # one line per trial from ``said`` instead of Optuna's (a failed trial's with a traceback)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = QUICK_SPACE if quick else SearchSpace()
    base = quick_options(base) if quick else base
    study = optuna.create_study(
        study_name=study_name,
        storage=storage or default_storage(),
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=space.startup_trials, n_warmup_steps=space.warmup_epochs
        ),
        load_if_exists=True,
    )

    def said(_: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        log(trial_line(frozen))
        if on_trial_end is not None:
            on_trial_end(frozen)

    study.optimize(
        lambda trial: objective(trial, base, space),
        n_trials=trials,
        timeout=timeout,
        n_jobs=jobs,
        catch=(ValueError,),
        callbacks=[said],
    )
    return study


def trial_line(trial: optuna.trial.FrozenTrial) -> str:
    """What became of a trial, in one line."""
    import optuna

    state = trial.state.name.lower()
    seconds = f" ({trial.duration.total_seconds():.1f} s)" if trial.duration else ""
    if trial.state == optuna.trial.TrialState.COMPLETE:
        return f"trial {trial.number}: validation MSE {trial.value:.4f}{seconds}"
    if trial.state == optuna.trial.TrialState.PRUNED and trial.intermediate_values:
        epoch = max(trial.intermediate_values)
        mse = trial.intermediate_values[epoch]
        return f"trial {trial.number}: pruned after epoch {epoch} (validation MSE {mse:.4f})"
    return f"trial {trial.number}: {state}{seconds} {trial.user_attrs.get('error', '')}".rstrip()


def best_options(study: optuna.Study) -> dict:
    """The best complete trial as best.json holds it; ValueError when there is none."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise ValueError(f"study {study.study_name!r} has no complete trial yet")
    best = study.best_trial
    return {
        "study": study.study_name,
        "trial": best.number,
        "value": best.value,
        "options": best.user_attrs["options"],
    }


def write_best(study: optuna.Study) -> Path:
    """``<data_dir>/tune/<study>/best.json``: what ``upvote train --params PATH`` reads."""
    path = study_dir(study.study_name) / "best.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(best_options(study), indent=2) + "\n")
    return path


def load_params(params: str) -> TrainOptions:
    """``upvote train --params``: ``best`` (the best trial of the study ``upvote`` in the
    default storage) or a best.json. ValueError says what is wrong, in one line."""
    if params == "best":
        import optuna

        try:
            study = optuna.load_study(study_name=DEFAULT_STUDY, storage=default_storage())
        except KeyError:
            raise ValueError(f"no study {DEFAULT_STUDY!r} yet: run `upvote tune` first") from None
        found = best_options(study)
    else:
        path = Path(params)
        try:
            found = json.loads(path.read_text())
        except OSError as err:
            raise ValueError(f"{path}: {err.strerror or err}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not JSON ({err})") from None
    try:
        return TrainOptions.from_dict(found["options"])
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{params}: not the options of a tuned trial ({err!r})") from None
