"""One-line messages of the command line, the same in every command: an error names what is
wrong and exits non-zero (no traceback), a warning goes on."""

from typing import NoReturn

import typer


def fail(message: str) -> NoReturn:
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def warn(message: str) -> None:
    typer.secho(f"Warning: {message}", fg=typer.colors.YELLOW, err=True)
