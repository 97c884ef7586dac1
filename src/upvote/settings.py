"""Settings read from the environment (and an optional `.env`), so nothing needs a config file.

Everything the tool writes lives under ``UPVOTE_DATA_DIR``:

    datasets/   pulled Hacker News datasets (Parquet)
    models/     the model registry (one folder per version; ``latest``, ``champion`` and
                ``challenger`` link to versions: model/registry.py)
    logs/       prediction logs of the service
    mlflow/     the default MLflow tracking store (mlflow.db) and its artifacts
    jobs/       the vectors of `upvote jobs` (one folder per job); postgres/ and database_url:
                the private PostgreSQL of `upvote jobs serve` (jobs/embedded.py)
"""

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "upvote"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UPVOTE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "UPVOTE_DATABASE_URL")
    )
    log_dir: Path | None = None  # prediction logs; default: <data_dir>/logs
    admin_token: str | None = None  # protects POST /admin/reload
    user: str | None = None  # who promotes models, in the registry's log; default: login name
    seed: int = 0
    # PostgreSQL session limits of a pull or an SQL corpus, in seconds (0: none). The statement
    # timeout covers a whole pull's single COPY, so it is long; a locked table fails fast.
    pg_lock_timeout: float = Field(default=30.0, ge=0)
    pg_statement_timeout: float = Field(default=3600.0, ge=0)
    # MLflow tracking of `upvote train`, `upvote embed train` and `upvote tune` (tracking/). Off:
    # UPVOTE_TRACKING=0. The store: UPVOTE_TRACKING_URI or MLflow's own MLFLOW_TRACKING_URI (a
    # server, or a database URL such as postgresql+psycopg://...); default: SQLite under data_dir.
    tracking: bool = True
    tracking_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("UPVOTE_TRACKING_URI", "MLFLOW_TRACKING_URI")
    )
    tracking_artifacts: str | None = None  # artifact root of new experiments (default: data_dir)
    # Hosts a corpus URL of an embedding job may reach although they are not public addresses
    # (jobs/fetch.py refuses loopback, private, link-local, ... otherwise): comma-separated host
    # names, IP addresses or CIDR networks, e.g. "corpora.internal,10.20.0.0/16". Default: none.
    jobs_allow_hosts: str = ""
    # `upvote jobs` (jobs/): the PostgreSQL database of the job queue and of our job records, and
    # where each job's vectors go (default: <data_dir>/jobs/<job id>/)
    jobs_database_url: str | None = None
    jobs_artifacts_dir: Path | None = None
    # a store shared by API and workers on many machines, as an fsspec URL (s3://bucket/prefix,
    # gs://..., file:///shared/jobs; the protocol's package installed, e.g. pip install
    # 'upvote[jobs-s3]'): then jobs_artifacts_dir is only each worker's local scratch folder
    # (jobs/artifacts.py). Unset: the folder is the store.
    jobs_artifacts_url: str | None = None
    # the quota of an API token created without its own (`upvote jobs token create`): jobs not
    # finished at once, and corpus bytes of all its jobs not deleted (uploads and downloads)
    jobs_max_concurrent_jobs: int = Field(default=4, ge=1)
    jobs_max_bytes: int = Field(default=20 << 30, ge=1)
    # `upvote jobs serve` without UPVOTE_JOBS_DATABASE_URL runs its own PostgreSQL
    # (jobs/embedded.py) under <data_dir>/jobs/postgres on this port (default: the port it used
    # before, or a free one)
    jobs_postgres_port: int | None = Field(default=None, ge=1, le=65535)

    @property
    def datasets_dir(self) -> Path:
        return self.data_dir / "datasets"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def mlflow_dir(self) -> Path:
        return self.data_dir / "mlflow"

    @property
    def logs_dir(self) -> Path:
        return self.log_dir or self.data_dir / "logs"

    @property
    def jobs_dir(self) -> Path:
        return self.jobs_artifacts_dir or self.data_dir / "jobs"

    @property
    def jobs_postgres_dir(self) -> Path:
        return self.data_dir / "jobs" / "postgres"

    @property
    def jobs_database_url_file(self) -> Path:
        """The embedded PostgreSQL's URL (0600), which `upvote jobs` commands use when
        UPVOTE_JOBS_DATABASE_URL is unset."""
        return self.data_dir / "jobs" / "database_url"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests call ``get_settings.cache_clear()``)."""
    return Settings()
