"""Service settings: the project settings plus the knobs only the HTTP service (or its deploy)
needs.

All come from the environment (or ``.env``) with the ``UPVOTE_`` prefix, e.g.
``UPVOTE_MAX_BATCH=500``.
"""

from pydantic import Field

from upvote.settings import Settings


class ServeSettings(Settings):
    release: str | None = None  # the image/build being served (set by the Dockerfile), for /health
    model_version: str = "champion"  # a registry version, or an alias followed while serving
    model_retry_seconds: float = 5.0  # while no model is loaded, how often to look for one
    alias_poll_seconds: float = Field(default=2.0, ge=0)  # how often to read the alias; 0: never
    max_batch: int = 256  # stories per POST /predict; bigger batches get a 422
    max_title_chars: int = 300  # HN caps titles at 80; 300 leaves room without allowing abuse
    log_max_bytes: int = 10_000_000  # prediction log file size before it is rotated
    log_backups: int = 5  # rotated prediction log files kept per model version
    max_body_bytes: int = 1_048_576  # request bodies over this get a 413 (256 stories: ~60 KB)
    request_timeout_seconds: float = 10.0  # a request's headers and body must arrive in this
    limit_concurrency: int = 1000  # connections + requests at once; beyond, uvicorn sends 503
    # Drift against the bundle's reference profile (serve/drift.py, docs/serving.md "Drift").
    drift_window: int = Field(default=2000, ge=1)  # the last N scored stories are compared
    drift_min_stories: int = Field(default=500, ge=1)  # fewer: "not enough data", no alert
    # PSI 0.2: the usual rule of thumb for a shifted population
    drift_psi_threshold: float = Field(default=0.2, gt=0)
    # KS 0.15: about what PSI 0.2 is for a shifted normal distribution (a shift of 0.45 sd gives
    # KS 0.18), yet three times the 1% noise level of a full window (~0.05 for 2,000 stories
    # against 3,000), which a KS p-value would flag long before the change matters
    drift_ks_threshold: float = Field(default=0.15, gt=0, le=1)
    drift_check_seconds: float = Field(default=30.0, ge=0)  # how often alerts are checked; 0: never


class DeploySettings(Settings):
    """The container engine of ``upvote deploy``, so the same code runs on a laptop and in a
    locked-down CI sandbox."""

    podman: str = "podman"  # the command, e.g. "podman --runtime runc --cgroup-manager cgroupfs"
    podman_run_args: str = ""  # extra `podman run` flags, e.g. "--ulimit nofile=20000:20000"
