"""`upvote train | evaluate | predict`: the upvote model's commands."""

import json
import time
from dataclasses import replace
from pathlib import Path

import typer

from upvote.console import fail
from upvote.data.files import DataError, check_output, read_table, write_table


def train(
    quick: bool = typer.Option(
        False, "--quick", help="Small budget (seconds): 4000 rows, dim 32, few epochs. For tests."
    ),
    rows: str = typer.Option(
        None, help="Training rows: 'unbiased' (default) or 'all' (+ selection feature)."
    ),
    history_rows: str = typer.Option(
        None, help="Track records from 'all' dated stories (default) or only 'unbiased' ones."
    ),
    max_rows: int = typer.Option(
        None, min=100, help="Use only the N most recent unbiased stories."
    ),
    corpus: list[Path] = typer.Option(
        None, "--corpus", help="Extra text file(s) for word2vec, e.g. a text8-style Wikipedia."
    ),
    comments: bool = typer.Option(
        None, help="Add the shipped comments (2020: after the sample's test split) to word2vec."
    ),
    vocab_size: int = typer.Option(None, min=50, help="SentencePiece vocabulary size (bound)."),
    dim: int = typer.Option(None, min=2, help="word2vec vector size."),
    w2v_epochs: int = typer.Option(None, min=1, help="word2vec epochs."),
    hidden: str = typer.Option(None, help="MLP widths, comma-separated."),
    activation: str = typer.Option(None, help="gelu, relu, tanh or silu."),
    dropout: float = typer.Option(None, min=0.0, max=0.9),
    lr: float = typer.Option(None, min=0.0),
    epochs: int = typer.Option(None, min=1, help="Maximum regressor epochs (early stopping)."),
    fine_tune: bool = typer.Option(None, help="Also train the word2vec vectors."),
    wide: bool = typer.Option(None, help="Wide & Deep: a linear part beside the MLP."),
    history: bool = typer.Option(None, help="The domain's and author's track records."),
    form: bool = typer.Option(None, help="The title's form (Show HN, length, ...)."),
    era: bool = typer.Option(None, help="The year, as a number (scores drift)."),
    text_score: bool = typer.Option(None, help="The TF-IDF + ridge score of the title's words."),
    time_features: bool = typer.Option(None, "--time/--no-time", help="Hour of the week."),
    domain: bool = typer.Option(None, help="The domain hashed into buckets, as a field."),
    seeds: int = typer.Option(None, min=1, help="Networks trained for the report's mean +- sd."),
    kind: str = typer.Option(
        None, "--model", help="What to ship: mlp (Wide & Deep, default), ridge or gbm."
    ),
    seed: int = typer.Option(None, help="Random seed (default: UPVOTE_SEED, 0)."),
    if_stale: bool = typer.Option(
        False,
        "--if-stale",
        help="Train only if the latest model was trained on other data, code or options.",
    ),
    promote: bool = typer.Option(
        False,
        "--promote",
        help="Make the model the champion, which `upvote serve` serves (a registry's first model "
        "is anyway); with --if-stale, the current model if no training is needed.",
    ),
    params: str = typer.Option(
        None,
        help="Start from tuned options: 'best' (study 'upvote') or a best.json of `upvote tune`.",
    ),
) -> None:
    """Train the upvote model on the pulled dataset (or the shipped sample) and publish it.

    Every option left out keeps its default from TrainOptions / FeatureConfig / RegressorConfig.
    """
    from upvote.data.dataset import describe_source
    from upvote.model.baselines import KINDS
    from upvote.model.inference import ACTIVATIONS
    from upvote.model.mirror import track_training
    from upvote.model.train import TrainOptions, quick_options
    from upvote.model.train import train as run_training
    from upvote.model.tune import load_params
    from upvote.settings import get_settings
    from upvote.tracking.client import Tracking

    def given(**values):
        return {k: v for k, v in values.items() if v is not None}

    defaults = TrainOptions()
    if params is not None:  # `upvote tune`'s options replace the defaults; given options win
        try:
            defaults = load_params(params)
        except ValueError as err:
            fail(f"--params {err}")
        seed = defaults.regressor.seed if seed is None else seed
    seed = get_settings().seed if seed is None else seed
    widths = None
    if hidden is not None:
        try:
            widths = tuple(int(w) for w in hidden.split(",") if w.strip())
        except ValueError:
            message = f"{hidden!r} is not a list of widths"
            raise typer.BadParameter(message, param_hint="--hidden") from None
    if kind is not None and kind not in KINDS:
        raise typer.BadParameter(f"choose one of {', '.join(KINDS)}", param_hint="--model")
    if activation is not None and activation not in ACTIVATIONS:
        raise typer.BadParameter(
            f"choose one of {', '.join(ACTIVATIONS)}", param_hint="--activation"
        )
    for path in corpus or []:
        if not path.is_file():
            raise typer.BadParameter(f"{path}: no such file", param_hint="--corpus")
    options = replace(
        defaults,
        **given(
            rows=rows,
            history_rows=history_rows,
            max_rows=max_rows,
            vocab_size=vocab_size,
            comments=comments,
            seeds=seeds,
            model=kind,
            corpus=[str(p) for p in corpus] if corpus else None,
        ),
        word2vec=replace(defaults.word2vec, **given(vector_size=dim, epochs=w2v_epochs), seed=seed),
        features=replace(
            defaults.features,
            **given(
                history=history,
                form=form,
                era=era,
                text_score=text_score,
                time=time_features,
                domain=domain,
            ),
        ),
        regressor=replace(
            defaults.regressor,
            **given(
                hidden=widths,
                activation=activation,
                dropout=dropout,
                lr=lr,
                max_epochs=epochs,
                fine_tune=fine_tune,
                wide=wide,
            ),
            seed=seed,
        ),
    )
    if quick:
        options = quick_options(options)
    if if_stale:
        current = _current_model(options)
        if current is not None:
            typer.echo(
                f"model {current} is current (same data, code and options): not retraining "
                "(run without --if-stale to train anyway)"
            )
            if promote:
                _make_champion(current)
            return
    source = describe_source()
    typer.echo(f"training on {source}")
    tracking = Tracking("upvote-train", say=typer.echo)  # connects while training runs
    start, started = time.perf_counter(), time.time()
    try:
        bundle, results = run_training(options, log=typer.echo)
    except (ValueError, FileExistsError) as err:
        fail(str(err))
    _print_results(results)
    typer.echo(f"model {bundle.name} -> {bundle} ({time.perf_counter() - start:.1f} s)")
    typer.echo(f"report: {results['report']}")
    track_training(tracking, bundle, results, source, started, say=typer.echo)
    if promote:
        _make_champion(bundle.name)


def _make_champion(version: str) -> None:
    """``--promote``: ``upvote models promote VERSION`` unless VERSION is the champion already (a
    registry's first model is made champion by ``publish``; it is no error to ask again)."""
    from upvote.model.registry import CHAMPION, alias_target
    from upvote.model.registry_cli import promote_command

    if alias_target(CHAMPION) == version:
        typer.echo(f"champion: {version}")
    else:
        promote_command(version, reason="upvote train --promote")


def _current_model(options) -> str | None:
    """The latest model's version if it was trained on today's data snapshot with this code and
    these options (``upvote train --if-stale`` then has nothing to do), else None."""
    from upvote.data.dataset import load_stories
    from upvote.model.bundle import ModelNotFoundError
    from upvote.model.registry import resolve_version
    from upvote.model.splits import prepare_data
    from upvote.version import code_version

    try:
        bundle = resolve_version("latest")
        metadata = json.loads((bundle / "metadata.json").read_text())
        data = prepare_data(load_stories(), options.rows, options.max_rows, options.history_rows)
    except (ModelNotFoundError, OSError, ValueError):  # no model, or training will say what
        return None
    wanted = json.loads(json.dumps(options.to_dict(), default=str))
    same = (
        metadata.get("data_snapshot") == data.snapshot
        and metadata.get("code_version") == code_version()
        and metadata.get("options") == wanted
    )
    return bundle.name if same else None


def evaluate(
    model: str = typer.Option("latest", "--model", "-m", help="Model version (default: latest)."),
) -> None:
    """Re-evaluate a bundle on its time-based test split; rewrite its report."""
    from upvote.data.dataset import load_stories
    from upvote.model.bundle import ModelNotFoundError
    from upvote.model.history import HistoryConfig
    from upvote.model.registry import load_model, resolve_version
    from upvote.model.splits import prepare_data, split_features
    from upvote.model.train import evaluate as run_evaluation

    try:
        upvote_model = load_model(model)
    except ModelNotFoundError as err:
        fail(str(err))
    saved = upvote_model.metadata.get("options", {})
    data = prepare_data(
        load_stories(),
        saved.get("rows", "unbiased"),
        saved.get("max_rows"),
        saved.get("history_rows", "all"),
    )
    if data.snapshot != upvote_model.metadata.get("data_snapshot"):
        typer.secho(
            f"warning: the data changed since training (snapshot {data.snapshot} != "
            f"{upvote_model.metadata.get('data_snapshot')}): the test split differs",
            fg="yellow",
            err=True,
        )
    report_dir = resolve_version(upvote_model.version) / "report"
    featurizer = upvote_model.featurizer
    split = split_features(
        featurizer.tokenizer,
        upvote_model.vectors,
        featurizer.config,
        data,
        HistoryConfig(**saved.get("history", {})),
    )
    results = run_evaluation(upvote_model, data, split, report_dir, seeds=1, log=lambda _: None)
    _print_results(results)
    typer.echo(f"report: {results['report']}")


def predict(
    input: Path = typer.Option(
        ..., "--input", "-i", help=".parquet, .csv (title column) or .txt (one title per line)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help=".parquet or .csv to write."),
    model: str = typer.Option("latest", "--model", "-m", help="Model version (default: latest)."),
) -> None:
    """Predict scores for a file of stories (title required; url, by, time optional)."""
    from upvote.model.bundle import OUTPUT_COLUMNS, ModelNotFoundError
    from upvote.model.registry import load_model

    try:
        check_output(output)
    except DataError as err:
        fail(f"--output {err}")
    try:
        stories = read_table(input, required=("title",))
    except DataError as err:
        raise typer.BadParameter(str(err), param_hint="--input") from err
    try:
        upvote_model = load_model(model)
    except ModelNotFoundError as err:
        fail(str(err))
    start = time.perf_counter()
    predictions = upvote_model.predict(stories)
    seconds = time.perf_counter() - start
    out = stories.drop(columns=[c for c in OUTPUT_COLUMNS if c in stories.columns])
    write_table(out.join(predictions), output)
    typer.echo(
        f"{len(stories)} predictions ({len(stories) / max(seconds, 1e-9):,.0f} titles/s) "
        f"with model {upvote_model.version} -> {output}"
    )


def _print_results(results: dict) -> None:
    from upvote.model.report import metrics_table

    typer.echo(metrics_table(results))
    coverage = results["coverage"]["calibrated"]
    typer.echo(
        "interval coverage (test): " + json.dumps({k: round(v, 3) for k, v in coverage.items()})
    )
