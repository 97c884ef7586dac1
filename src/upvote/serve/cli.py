"""CLI for serving and deploying the upvote model."""

import typer


def serve() -> None:
    """Start the HTTP service (not implemented yet)."""
    raise typer.Exit("not implemented yet")


def deploy() -> None:
    """Deploy the service image (not implemented yet)."""
    raise typer.Exit("not implemented yet")
