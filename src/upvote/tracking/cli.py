"""`upvote ui`: the MLflow UI over this project's tracking store."""

import os
import sys

import typer

from upvote.console import fail
from upvote.settings import get_settings
from upvote.tracking.records import artifact_root, quiet_environment, store_uri


def ui_command(host: str, port: int) -> list[str]:
    """The `mlflow ui` command line for the configured store (the default SQLite file, or a
    database URL such as postgresql+psycopg://...)."""
    settings = get_settings()
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store_uri(settings)]
    root = artifact_root(settings)
    if root is not None:
        command += ["--default-artifact-root", root]
    return [*command, "--host", host, "--port", str(port), "--workers", "1"]


def ui(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (local only by default)."),
    port: int = typer.Option(5000, min=1, max=65535, help="Port of the UI."),
) -> None:
    """Browse the runs, metrics, artifacts and registered models in the MLflow UI."""
    settings = get_settings()
    uri = store_uri(settings)
    if uri.startswith(("http://", "https://")):
        typer.echo(f"the runs are on the tracking server itself: open {uri} in a browser")
        return
    if not settings.tracking_uri and not (settings.mlflow_dir / "mlflow.db").exists():
        fail(f"no runs yet in {settings.mlflow_dir}: run `upvote train` first")
    typer.echo(f"MLflow UI on http://{host}:{port} (Ctrl-C stops it)")
    command = ui_command(host, port)
    quiet_environment()
    os.execv(command[0], command)  # the UI's own process: Ctrl-C and exit codes are its own
