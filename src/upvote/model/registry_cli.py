"""`upvote models list | show | promote | rollback`: the registry's versions and its champion.

The service serves the ``champion`` (and follows it without a restart), so ``promote`` and
``rollback`` are how a model goes live or is taken back; both are logged with who and why
(registry.py).
"""

import json
import math
from pathlib import Path

import typer

from upvote.console import fail
from upvote.model.bundle import ModelNotFoundError
from upvote.model.mirror import after_alias_change
from upvote.model.registry import (
    ALIASES,
    LOG,
    RegistryError,
    aliases,
    history,
    list_versions,
    promote,
    registry,
    resolve_version,
    rollback,
)

app = typer.Typer(no_args_is_help=True)
REGISTRY_ERRORS = (ModelNotFoundError, RegistryError, OSError)  # a one-line message each


@app.command("list")
def list_command() -> None:
    """Versions, oldest first, with their aliases, creation time and test metrics."""
    root = registry()
    versions = list_versions(root)
    if not versions:
        typer.echo(f"no model versions in {root}: run `upvote train` first")
        return
    names = _aliases_by_version(root)
    typer.echo(f"{'version':<24} {'created':<25} {'spearman':>8} {'log R²':>7}  aliases")
    for version in versions:
        meta = _metadata(root / version)
        ours = meta.get("metrics", {}).get("ours", {})
        line = (
            f"{version:<24} {meta.get('created', '?')!s:<25} "
            f"{_number(ours.get('spearman')):>8} {_number(ours.get('log_r2')):>7}  "
            + ", ".join(names.get(version, []))
        )
        typer.echo(line.rstrip())


@app.command("show")
def show_command(
    version: str = typer.Argument(..., help="A version, or latest / champion / challenger."),
) -> None:
    """One version's metadata (data, code, options, test metrics) and its champion history."""
    root = registry()
    try:
        directory = resolve_version(version, root)
    except REGISTRY_ERRORS as err:
        fail(str(err))
    name = directory.name
    meta = _metadata(directory)
    ours = meta.get("metrics", {}).get("ours", {})
    rows = meta.get("rows", {})
    options = meta.get("options", {})
    lines = {
        "version": name,
        "aliases": ", ".join(_aliases_by_version(root).get(name, [])) or "-",
        "created": meta.get("created", "?"),
        "model": options.get("model", "?"),
        "data": f"snapshot {meta.get('data_snapshot', '?')}, cutoff {meta.get('data_cutoff', '?')}",
        "rows": ", ".join(f"{k} {v}" for k, v in rows.items()) or "?",
        "code": meta.get("code_version", "?"),
        "test": f"spearman {_number(ours.get('spearman'))}, log R² {_number(ours.get('log_r2'))}",
    }
    for key, value in lines.items():
        typer.echo(f"{key:<8} {value}")
    events = history(root, version=name)
    typer.echo(f"champion history ({root / LOG}):" if events else "champion history: none")
    for event in events:
        typer.echo(
            f"  {event.get('time')}  {event.get('action'):<8} {event.get('version')} "
            f"(was {event.get('previous')}) by {event.get('who')}: {event.get('reason') or '-'}"
        )


@app.command("promote")
def promote_command(
    version: str = typer.Argument(..., help="The version to serve (or: challenger, latest)."),
    reason: str = typer.Option("", "--reason", help="Why, for the log."),
) -> None:
    """Make VERSION the champion: the model `upvote serve` serves (it switches within seconds)."""
    try:
        event = promote(version, reason)
    except REGISTRY_ERRORS as err:
        fail(str(err))
    _changed(event)


@app.command("rollback")
def rollback_command(reason: str = typer.Option("", "--reason", help="Why, for the log.")) -> None:
    """Make the champion before the current one the champion again (repeat to go further)."""
    try:
        event = rollback(reason)
    except REGISTRY_ERRORS as err:
        fail(str(err))
    _changed(event)


def _changed(event: dict) -> None:
    typer.echo(
        f"champion: {event['version']} (was {event['previous']}), logged in {registry() / LOG}"
    )
    after_alias_change(event, say=typer.echo)


def _aliases_by_version(root: Path) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for alias, version in aliases(root).items():
        names.setdefault(version, []).append(alias)
    return {v: sorted(a, key=ALIASES.index) for v, a in names.items()}


def _metadata(directory: Path) -> dict:
    """The bundle's metadata.json, or {} if unreadable: a listing shows "?" rather than fail."""
    try:
        meta = json.loads((directory / "metadata.json").read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _number(value: object) -> str:
    if isinstance(value, int | float) and math.isfinite(value):
        return f"{value:.3f}"
    return "?"
