"""The model registry: bundle folders (``bundle.py``) by version, and the links that name them.

    <models_dir>/<version>/       one bundle per published version
    <models_dir>/latest           relative symbolic link: the newest published version
    <models_dir>/champion         ... the version the service serves (its default)
    <models_dir>/challenger       ... the newest published version not (yet) promoted
    <models_dir>/promotions.jsonl every change of the champion: when, what, who, why
    <models_dir>/.aliases.lock    flock'ed by whoever moves a link

**This folder is the single source of truth.** An experiment tracker (MLflow) may mirror it
(``registry_cli.after_alias_change`` is where), but nothing here reads the tracker back: training,
the command line and the service work from the folder alone, offline, and a tracker that is down
or behind cannot change what is served.

Every link is replaced with ``os.replace`` of a fresh link, so a reader (the service's poll)
sees the old target or the new one, never none. Link changes hold an exclusive ``flock`` on
``.aliases.lock``, so two promotions at once happen one after the other and each logs the right
previous champion. The log line is appended after the link moved: a crash between the two loses
a record, never half a switch.

The champion is never also the challenger: promoting the challenger clears the ``challenger``
link (it has been decided on), and a version published into a registry without a champion
becomes the champion at once (action ``auto``: a first ``upvote train`` is served as it is).
Rolling back returns to the champion before the current one: the log is replayed as a stack
(promote and auto push, rollback pops), so repeated rollbacks walk back through history instead
of toggling between two versions.

A registry made before champions existed has no ``champion`` link: ``champion`` then means
``latest``, which is what such a registry's service served, and the first promotion or publish
records that version as the previous champion.
"""

import fcntl
import getpass
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from upvote.model.bundle import ModelNotFoundError, UpvoteModel
from upvote.settings import get_settings

LATEST, CHAMPION, CHALLENGER = "latest", "champion", "challenger"
ALIASES = (CHAMPION, CHALLENGER, LATEST)
LOG = "promotions.jsonl"
LOCK = ".aliases.lock"


class RegistryError(ValueError):
    """A promotion or rollback that cannot be done (already champion, nothing to roll back to)."""


def registry(registry_dir: str | Path | None = None) -> Path:
    return Path(registry_dir) if registry_dir else get_settings().models_dir


def list_versions(registry_dir: str | Path | None = None) -> list[str]:
    root = registry(registry_dir)
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.name not in ALIASES
        and not p.name.startswith(".")  # a publish's staging folder, left by a kill -9
        and p.is_dir()
        and not p.is_symlink()
        and (p / "model.json").is_file()
    )


def alias_target(alias: str, registry_dir: str | Path | None = None) -> str | None:
    """The version ``alias`` names, or None. One ``readlink``: the service polls it every few
    seconds. ``champion`` falls back to ``latest`` where no champion link exists (registries older
    than champions); a plain-text ``latest`` holding a version name (older still) is read too."""
    root = registry(registry_dir)
    link = root / alias
    try:
        return os.readlink(link)
    except FileNotFoundError:
        return alias_target(LATEST, root) if alias == CHAMPION else None
    except OSError:  # not a link: a plain-text latest, or a folder copied through the link
        if alias == LATEST and link.is_file():
            return link.read_text().strip() or None
        return None


def aliases(registry_dir: str | Path | None = None) -> dict[str, str]:
    """Each alias that names a version -> that version (``champion`` as the service resolves it,
    so through ``latest`` in a registry without a champion link)."""
    root = registry(registry_dir)
    return {alias: target for alias in ALIASES if (target := alias_target(alias, root))}


def resolve_version(version: str = LATEST, registry_dir: str | Path | None = None) -> Path:
    """The bundle folder of ``version``: a version name or an alias (``latest``, ``champion``,
    ``challenger``) whose link is followed."""
    root = registry(registry_dir)
    if version in ALIASES:
        link = root / version
        if version == CHAMPION and not os.path.lexists(link):
            return resolve_version(LATEST, root)  # a registry older than champions
        if not link.is_symlink() and (link / "model.json").is_file():
            return link  # a copy that followed the link (cp -r)
        target = alias_target(version, root)
        if target is None and version == CHALLENGER:
            raise ModelNotFoundError(f"no challenger in {root}: every version was decided on")
        if target is None:
            raise ModelNotFoundError(f"no model trained yet in {root}: run `upvote train` first")
        version = target
    directory = root / version
    if not version or "/" in version or version.startswith(".") or not directory.is_dir():
        known = ", ".join(list_versions(root)) or "none"
        raise ModelNotFoundError(f"unknown model version {version!r} in {root} (known: {known})")
    return directory


def load_model(version: str = LATEST, registry_dir: str | Path | None = None) -> UpvoteModel:
    """Load a bundle from the registry: the newest by default."""
    directory = resolve_version(version, registry_dir)
    return UpvoteModel.load(directory, version=directory.name)


def publish(
    model: UpvoteModel,
    version: str,
    registry_dir: str | Path | None = None,
    extra: dict[str, Path] | None = None,
) -> Path:
    """Write ``model`` (+ ``extra`` folders: the report) as ``version``; point ``latest`` at it
    and make it the challenger, or the champion where there is none yet."""
    if version in ALIASES or not version or "/" in version or version.startswith("."):
        raise ValueError(f"{version!r} cannot name a model version")
    root = registry(registry_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / version
    if final.exists():
        raise FileExistsError(f"model version {version} already exists in {root}")
    staging = root / f".staging-{version}-{os.getpid()}"
    try:
        model.version = version
        model.save(staging)
        for name, source in (extra or {}).items():
            shutil.copytree(source, staging / name)
        os.rename(staging, final)  # atomic on one file system
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    with _locked(root):
        previous = alias_target(CHAMPION, root)  # before latest moves: the fallback's target
        has_champion = os.path.lexists(root / CHAMPION)
        _point(root, LATEST, version)
        if has_champion:
            _point(root, CHALLENGER, version)
        else:
            _point(root, CHAMPION, version)
            _record(root, "auto", version, previous, "first version published without a champion")
    return final


def promote(
    version: str,
    reason: str = "",
    registry_dir: str | Path | None = None,
    replacing: str | None = None,
) -> dict:
    """Make ``version`` (a name, or ``challenger`` / ``latest``) the champion; the logged event.

    ``replacing``: promote only if this version is still the champion, checked under the lock
    (`upvote retrain` compared its challenger with it; a champion promoted by hand meanwhile
    must not be replaced by a challenger that was never compared with it)."""
    root = registry(registry_dir)
    with _locked(root):
        name = _complete_version(version, root)
        previous = alias_target(CHAMPION, root)
        if replacing is not None and previous != replacing:
            raise ChampionChanged(f"the champion is {previous} now, not {replacing}")
        if name == previous and os.path.islink(root / CHAMPION):
            raise RegistryError(f"model {name} is already the champion")
        _point(root, CHAMPION, name)
        if alias_target(CHALLENGER, root) == name:
            (root / CHALLENGER).unlink()
        return _record(root, "promote", name, previous, reason)


class ChampionChanged(RegistryError):
    """``promote(..., replacing=V)`` found another champion than V."""


def rollback(reason: str = "", registry_dir: str | Path | None = None) -> dict:
    """Make the champion before the current one (by the log) the champion again; the event."""
    root = registry(registry_dir)
    with _locked(root):
        stack = _champions(history(root))
        if len(stack) < 2:
            first = f" ({stack[0]} is the first champion)" if stack else ""
            raise RegistryError(f"no earlier champion to roll back to in {root / LOG}{first}")
        target = _complete_version(stack[-2], root)
        previous = alias_target(CHAMPION, root)
        _point(root, CHAMPION, target)
        return _record(root, "rollback", target, previous, reason)


def history(registry_dir: str | Path | None = None, version: str | None = None) -> list[dict]:
    """The champion changes of the log, oldest first; with ``version``, those naming it (as the
    new or the previous champion). A line torn by a crash is skipped."""
    try:
        lines = (registry(registry_dir) / LOG).read_text().splitlines()
    except FileNotFoundError:
        return []
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and (
            version is None or version in (event.get("version"), event.get("previous"))
        ):
            events.append(event)
    return events


def _champions(events: list[dict]) -> list[str]:
    """The log replayed as a stack of champions, the current one last: promote and auto push,
    rollback pops. The first event's previous champion (a registry older than the log) is the
    bottom."""
    stack: list[str] = []
    for event in events:
        if event.get("action") == "rollback":
            del stack[-1:]
        elif event.get("version"):
            if not stack and event.get("previous"):
                stack.append(event["previous"])
            stack.append(event["version"])
    return stack


def current_user() -> str:
    """Who changes the registry, for its log: ``UPVOTE_USER``, else the login name."""
    user = get_settings().user
    if user:
        return user
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return "unknown"


def _complete_version(version: str, root: Path) -> str:
    """The name of the complete bundle ``version`` (or an alias) names, else a clear error."""
    name = resolve_version(version, root).name
    if name not in list_versions(root):
        known = ", ".join(list_versions(root)) or "none"
        raise ModelNotFoundError(f"unknown model version {name!r} in {root} (known: {known})")
    return name


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold the registry's exclusive lock. ``flock`` belongs to the open file, so it serializes
    threads of one process as well as processes."""
    if not root.is_dir():
        raise ModelNotFoundError(f"no model trained yet in {root}: run `upvote train` first")
    with open(root / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _point(root: Path, alias: str, version: str) -> None:
    """Point ``alias`` at ``version`` atomically (a reader sees the old or the new link)."""
    pointer = root / f".{alias}-{os.getpid()}"
    pointer.unlink(missing_ok=True)
    os.symlink(version, pointer)  # relative: the registry folder can move
    os.replace(pointer, root / alias)


def _record(root: Path, action: str, version: str, previous: str | None, reason: str) -> dict:
    event = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "action": action,
        "alias": CHAMPION,
        "version": version,
        "previous": previous,
        "who": current_user(),
        "reason": reason,
    }
    with open(root / LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps(event) + "\n")
        log.flush()
        os.fsync(log.fileno())
    return event
