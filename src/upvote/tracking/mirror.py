"""The bundle registry mirrored into MLflow's model registry.

The bundle folder is the source of truth (``model/registry.py``: versions, the ``champion`` and
``challenger`` aliases, the promotions log); the service reads only it. MLflow gets a copy so that
people who browse runs in the MLflow UI see the same picture: every published bundle is a version
of the registered model ``upvote`` (its source is the bundle folder, its tags the headline
metrics and the bundle's name), and MLflow's aliases follow the folder's after every change.
A mirror that fails (store down) is said once and repaired by the next change: each call copies
the whole alias state, not a delta.
"""

from pathlib import Path

from upvote.tracking.client import Tracking

MODEL_NAME = "upvote"
VERSION_TAG = "upvote.version"  # the bundle's name on each MLflow model version


def mirror_version(
    tracking: Tracking, bundle: Path, run_id: str | None, metrics: dict[str, float]
) -> str | None:
    """Register ``bundle`` as a version of ``upvote`` (once); MLflow's version number or None."""
    if not tracking.ready():
        return None
    try:
        client = tracking.client
        known = _versions(tracking)
        if bundle.name in known:
            return known[bundle.name]
        if not client.search_registered_models(f"name = '{MODEL_NAME}'"):
            client.create_registered_model(
                MODEL_NAME, description="HN upvote model; bundles are in UPVOTE_DATA_DIR/models"
            )
        tags = {VERSION_TAG: bundle.name} | {k: f"{v:.4f}" for k, v in metrics.items()}
        created = client.create_model_version(
            MODEL_NAME, source=bundle.resolve().as_uri(), run_id=run_id, tags=tags
        )
        return created.version
    except Exception as error:
        tracking.say(f"MLflow registry mirror failed ({type(error).__name__}: {error})"[:300])
        return None


def mirror_aliases(tracking: Tracking, aliases: dict[str, str]) -> bool:
    """Make MLflow's aliases of ``upvote`` what ``aliases`` (alias -> bundle name) says; an alias
    absent there is removed from MLflow. True when MLflow now agrees."""
    if not tracking.ready():
        return False
    try:
        client = tracking.client
        known = _versions(tracking)
        current = {}
        if known:
            current = dict(client.get_registered_model(MODEL_NAME).aliases or {})
        for alias, bundle_name in aliases.items():
            number = known.get(bundle_name)
            if number is not None and str(current.get(alias)) != str(number):
                client.set_registered_model_alias(MODEL_NAME, alias, number)
        for alias in set(current) - set(aliases):
            client.delete_registered_model_alias(MODEL_NAME, alias)
        return all(name in known for name in aliases.values())
    except Exception as error:
        tracking.say(f"MLflow alias mirror failed ({type(error).__name__}: {error})"[:300])
        return False


def _versions(tracking: Tracking) -> dict[str, str]:
    """bundle name -> MLflow version number of every mirrored bundle."""
    found = tracking.client.search_model_versions(f"name = '{MODEL_NAME}'")
    return {v.tags[VERSION_TAG]: v.version for v in found if VERSION_TAG in v.tags}
