"""CLI for serving and deploying the upvote model."""

from pathlib import Path

import typer

from upvote.console import fail


def serve(
    host: str = typer.Option(
        "127.0.0.1", envvar="UPVOTE_HOST", help="Interface to listen on (0.0.0.0 in a container)."
    ),
    port: int = typer.Option(8000, min=1, max=65535, envvar="UPVOTE_PORT", help="TCP port."),
    model_version: str = typer.Option(
        None,
        help="Registry version or alias to serve; an alias is followed when it moves "
        "(default: UPVOTE_MODEL_VERSION, else champion).",
    ),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Start the HTTP service (API, web page, metrics) on the registry's model."""
    import uvicorn

    from upvote.serve.app import create_app
    from upvote.serve.config import ServeSettings
    from upvote.serve.server import uvicorn_options

    overrides = {"model_version": model_version} if model_version else {}
    settings = ServeSettings(**overrides)
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_level=log_level, **uvicorn_options(settings))


def deploy(
    image: str = typer.Argument(..., help="Local image to deploy, e.g. localhost/upvote-api:v2."),
    registry: str = typer.Option("127.0.0.1:5000", help="Registry to push to and pull from."),
    name: str = typer.Option("upvote", help="Service name (prefix of container names)."),
    port: int = typer.Option(8000, min=1, max=65535, help="Public port (the proxy listens here)."),
    data_dir: Path = typer.Option(
        None,
        help="Its models/ is mounted read-only at /data/models (default: UPVOTE_DATA_DIR).",
    ),
    health_timeout: float = typer.Option(
        60.0, help="Seconds the new container gets to be healthy."
    ),
    drain: float = typer.Option(
        2.0, help="Seconds the old container keeps serving after the switch."
    ),
) -> None:
    """Blue/green deploy: push, pull, start beside the old one, check /health, switch, stop old.

    If the new container does not become healthy the deploy is rolled back: the new container is
    removed and traffic never leaves the old one.
    """
    from upvote.serve.deploy import DeployError, Deployment
    from upvote.settings import get_settings

    deployment = Deployment(
        name=name,
        registry=registry,
        port=port,
        data_dir=(data_dir or get_settings().data_dir).resolve(),
        health_timeout=health_timeout,
        drain=drain,
    )
    try:
        deployment.deploy(image)
    except DeployError as error:
        fail(str(error))
