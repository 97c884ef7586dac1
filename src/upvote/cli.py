"""The `upvote` command line: one group or command per stage of the ML lifecycle."""

import typer

from upvote.data.cli import app as data_app
from upvote.embeddings.cli import app as embed_app
from upvote.jobs.cli import app as jobs_app
from upvote.model.cli import evaluate, predict, train
from upvote.model.registry_cli import app as models_app
from upvote.model.tune_cli import tune
from upvote.monitor.cli import monitor
from upvote.operate.retrain_cli import retrain
from upvote.serve.cli import deploy, serve
from upvote.tokenizer.cli import app as tokenizer_app
from upvote.tracking.cli import ui
from upvote.version import __version__

app = typer.Typer(
    help="Word2vec embeddings and Hacker News upvote prediction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data", help="Pull, clean, split and describe HN stories.")
app.add_typer(tokenizer_app, name="tokenizer", help="Train and apply SentencePiece tokenizers.")
app.add_typer(embed_app, name="embed", help="Train and evaluate word2vec embeddings.")
app.add_typer(jobs_app, name="jobs", help="Queue word2vec jobs; run workers on any machine.")
app.add_typer(models_app, name="models", help="Model versions; promote or roll back the champion.")
app.command()(train)
app.command()(tune)
app.command()(retrain)
app.command()(evaluate)
app.command()(predict)
app.command()(serve)
app.command()(deploy)
app.command()(ui)
app.command()(monitor)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version."
    ),
) -> None:
    """Word2vec embeddings and Hacker News upvote prediction."""
