"""Shared fixtures: every test writes under its own temporary UPVOTE_DATA_DIR."""

from pathlib import Path

import pytest

from upvote.settings import get_settings

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path_factory, monkeypatch):
    data_dir = tmp_path_factory.mktemp("upvote-data")
    monkeypatch.setenv("UPVOTE_DATA_DIR", str(data_dir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (the larger real data sets); tests that need it skip clearly without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data folder {SHARED_DATA} (absent here)")
    return SHARED_DATA
