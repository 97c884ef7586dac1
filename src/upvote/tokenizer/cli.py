"""`upvote tokenizer train|encode`: learn SentencePiece pieces from a file column, apply them."""

import sys
from pathlib import Path

import typer

from upvote.data.files import DataError, read_table
from upvote.tokenizer.sentencepiece import DEFAULT_VOCAB_SIZE, SentencePieceTokenizer

app = typer.Typer(no_args_is_help=True)


@app.command()
def train(
    input: Path = typer.Option(..., "--input", "-i", help=".parquet, .csv or .txt (one per line)."),
    column: str = typer.Option("title", help="Column holding the texts."),
    vocab_size: int = typer.Option(
        DEFAULT_VOCAB_SIZE, min=10, help="Upper bound on the number of pieces."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the tokenizer into."),
) -> None:
    """Train a SentencePiece unigram tokenizer on one column of a file."""
    try:
        df = read_table(input, required=(column,))
        tokenizer = SentencePieceTokenizer.train(df[column], vocab_size=vocab_size)
    except (DataError, ValueError) as err:
        raise typer.BadParameter(str(err), param_hint="--input") from err
    tokenizer.save(out)
    typer.echo(f"{len(tokenizer)} pieces from {tokenizer.meta['trained_on']} texts -> {out}")


@app.command()
def encode(
    texts: list[str] = typer.Argument(None, help="Texts to encode (default: lines of stdin)."),
    model: Path = typer.Option(..., "--model", "-m", help="Tokenizer directory (from `train`)."),
    ids: bool = typer.Option(False, "--ids", help="Print piece ids instead of pieces."),
) -> None:
    """Print the pieces (or ids) of each text, one line per text."""
    try:
        tokenizer = SentencePieceTokenizer.load(model)
    except FileNotFoundError as err:
        raise typer.BadParameter(str(err), param_hint="--model") from err
    lines = texts or [line.rstrip("\n") for line in sys.stdin]
    for pieces in (tokenizer.encode_batch if ids else tokenizer.tokenize_batch)(lines):
        typer.echo(" ".join(map(str, pieces)))
