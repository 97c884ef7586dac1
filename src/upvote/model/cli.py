"""CLI for training, evaluating and applying the upvote model."""

import typer


def train() -> None:
    """Train the default upvote model (not implemented yet)."""
    raise typer.Exit("not implemented yet")


def evaluate() -> None:
    """Evaluate a model bundle (not implemented yet)."""
    raise typer.Exit("not implemented yet")


def predict() -> None:
    """Batch prediction (not implemented yet)."""
    raise typer.Exit("not implemented yet")
