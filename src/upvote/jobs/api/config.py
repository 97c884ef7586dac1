"""Settings of the jobs API: the project settings (the database UPVOTE_JOBS_DATABASE_URL, the
artifacts folder `jobs_dir`, the default token quotas) plus what only the HTTP service needs.
All from the environment with the ``UPVOTE_`` prefix, e.g. ``UPVOTE_JOBS_MAX_UPLOAD_BYTES``."""

from pydantic import Field

from upvote.settings import Settings


class JobsApiSettings(Settings):
    # one uploaded corpus; the token's remaining byte quota may cap it lower
    jobs_max_upload_bytes: int = Field(default=2 << 30, ge=1)
    jobs_max_json_bytes: int = Field(default=65_536, ge=1024)  # a JSON body (a URL and options)
    jobs_db_pool_size: int = Field(default=10, ge=1)  # database connections of one API process
    jobs_db_timeout_s: float = Field(default=5.0, gt=0)  # waiting for one: then a 503
    jobs_vector_cache: int = Field(default=4, ge=1)  # jobs' vectors kept loaded for /similar
    jobs_page_size: int = Field(default=50, ge=1)  # GET /jobs without ?limit
