"""`upvote train | evaluate | predict`: the upvote model's commands."""

import json
import time
from dataclasses import replace
from pathlib import Path

import typer

from upvote.model.io import InputError, read_table, write_table


def _fail(message: str) -> None:
    typer.secho(f"Error: {message}", fg="red", err=True)
    raise typer.Exit(1)


def train(
    quick: bool = typer.Option(
        False, "--quick", help="Small budget (seconds): 4000 rows, dim 32, few epochs. For tests."
    ),
    rows: str = typer.Option(
        "unbiased", help="Training rows: 'unbiased' (default) or 'all' (+ selection feature)."
    ),
    max_rows: int = typer.Option(
        None, min=100, help="Use only the N most recent unbiased stories."
    ),
    corpus: list[Path] = typer.Option(
        None, "--corpus", help="Extra text file(s) for word2vec, e.g. a text8-style Wikipedia."
    ),
    comments: bool = typer.Option(True, help="Add the shipped comments to the word2vec corpus."),
    vocab_size: int = typer.Option(
        8000, min=50, help="SentencePiece vocabulary size (upper bound)."
    ),
    dim: int = typer.Option(100, min=2, help="word2vec vector size."),
    w2v_epochs: int = typer.Option(5, min=1, help="word2vec epochs."),
    hidden: str = typer.Option("256,128", help="MLP widths, comma-separated."),
    activation: str = typer.Option("gelu", help="gelu, relu, tanh or silu."),
    dropout: float = typer.Option(0.2, min=0.0, max=0.9),
    lr: float = typer.Option(2e-3, min=0.0),
    epochs: int = typer.Option(40, min=1, help="Maximum regressor epochs (early stopping)."),
    fine_tune: bool = typer.Option(False, help="Also train the word2vec vectors."),
    wide: bool = typer.Option(False, help="Wide & Deep: add a linear part on the fields."),
    domain: bool = typer.Option(False, help="Domain-of-url feature (hashed buckets)."),
    time_features: bool = typer.Option(True, "--time/--no-time", help="Hour and weekday."),
    length: bool = typer.Option(False, help="Title length features."),
    seed: int = typer.Option(None, help="Random seed (default: UPVOTE_SEED, 0)."),
) -> None:
    """Train the upvote model on the pulled dataset (or the shipped sample) and publish it."""
    from upvote.embeddings.params import Word2VecParams
    from upvote.model.features import FeatureConfig
    from upvote.model.regressor import ACTIVATIONS, RegressorConfig
    from upvote.model.train import TrainOptions
    from upvote.model.train import train as run_training
    from upvote.settings import get_settings

    seed = get_settings().seed if seed is None else seed
    try:
        widths = tuple(int(w) for w in hidden.split(",") if w.strip())
    except ValueError:
        raise typer.BadParameter(f"{hidden!r} is not a comma-separated list of widths") from None
    if activation not in ACTIVATIONS:
        raise typer.BadParameter(
            f"choose one of {', '.join(ACTIVATIONS)}", param_hint="--activation"
        )
    for path in corpus or []:
        if not path.is_file():
            raise typer.BadParameter(f"{path}: no such file", param_hint="--corpus")
    options = TrainOptions(
        rows=rows,
        max_rows=max_rows,
        vocab_size=vocab_size,
        comments=comments,
        corpus=[str(p) for p in corpus or []],
        word2vec=Word2VecParams(vector_size=dim, min_count=3, epochs=w2v_epochs, seed=seed),
        features=FeatureConfig(domain=domain, time=time_features, length=length),
        regressor=RegressorConfig(
            hidden=widths,
            activation=activation,
            dropout=dropout,
            lr=lr,
            max_epochs=epochs,
            fine_tune=fine_tune,
            wide=wide,
            seed=seed,
        ),
    )
    if quick:
        options = replace(
            options,
            max_rows=max_rows or 4000,
            vocab_size=min(vocab_size, 1000),
            comments=False,
            word2vec=replace(options.word2vec, vector_size=min(dim, 32), epochs=1),
            regressor=replace(options.regressor, hidden=(32,), max_epochs=min(epochs, 3)),
        )
    start = time.perf_counter()
    try:
        bundle, results = run_training(options, log=typer.echo)
    except (ValueError, FileExistsError) as err:
        _fail(str(err))
    _print_results(results)
    typer.echo(f"model {bundle.name} -> {bundle} ({time.perf_counter() - start:.1f} s)")
    typer.echo(f"report: {results['report']}")


def evaluate(
    model: str = typer.Option("latest", "--model", "-m", help="Model version (default: latest)."),
) -> None:
    """Re-evaluate a bundle on its time-based test split; rewrite its report."""
    from upvote.data import load_stories
    from upvote.model.bundle import ModelNotFoundError, load_model, resolve_version
    from upvote.model.train import TrainOptions, prepare_data
    from upvote.model.train import evaluate as run_evaluation

    try:
        upvote_model = load_model(model)
    except ModelNotFoundError as err:
        _fail(str(err))
    saved = upvote_model.metadata.get("options", {})
    options = TrainOptions(rows=saved.get("rows", "unbiased"), max_rows=saved.get("max_rows"))
    data = prepare_data(load_stories(), options)
    if data.snapshot != upvote_model.metadata.get("data_snapshot"):
        typer.secho(
            f"warning: the data changed since training (snapshot {data.snapshot} != "
            f"{upvote_model.metadata.get('data_snapshot')}): the test split differs",
            fg="yellow",
            err=True,
        )
    report_dir = resolve_version(upvote_model.version) / "report"
    results = run_evaluation(upvote_model, data, report_dir)
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
    from upvote.model.bundle import OUTPUT_COLUMNS, ModelNotFoundError, load_model

    if output.suffix.lower() not in (".parquet", ".csv"):
        raise typer.BadParameter(f"{output}: must end in .parquet or .csv", param_hint="--output")
    try:
        stories = read_table(input, required=("title",))
    except InputError as err:
        raise typer.BadParameter(str(err), param_hint="--input") from err
    try:
        upvote_model = load_model(model)
    except ModelNotFoundError as err:
        _fail(str(err))
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
    from upvote.model.evaluate import metrics_table

    typer.echo(metrics_table(results))
    coverage = results["coverage"]["calibrated"]
    typer.echo(
        "interval coverage (test): " + json.dumps({k: round(v, 3) for k, v in coverage.items()})
    )
