"""A job's files for the API, read from the artifact store (jobs/artifacts.py): vectors loaded
for /similar (a few jobs kept, least recently used dropped), the word2vec binary file written
once into the store, next to the text file, on first request, and files streamed to clients."""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from fastapi.responses import FileResponse, Response, StreamingResponse

from upvote.embeddings.vectors import KeyedVectors
from upvote.jobs.artifacts import ArtifactStore

TEXT, BINARY = "vectors.txt", "vectors.bin"


def file_response(artifacts: ArtifactStore, key: str, media_type: str, filename: str) -> Response:
    """The file as a download: straight from disk in a local folder, else streamed from the
    store in chunks (never whole in memory)."""
    path = artifacts.local_path(key)
    if path is not None:
        return FileResponse(path, media_type=media_type, filename=filename)
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Content-Length": str(artifacts.size(key)),
    }
    return StreamingResponse(artifacts.chunks(key), media_type=media_type, headers=headers)


class VectorCache:
    """Keyed by the file's store key and version (mtime, ETag: artifacts.version), so a rewritten
    file is never served stale. Loading happens under a lock: two requests for one job load it
    once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.loaded: OrderedDict[tuple[str, str], KeyedVectors] = OrderedDict()

    def get(self, artifacts: ArtifactStore, key: str) -> KeyedVectors:
        cache_key = (artifacts.path(key), artifacts.version(key))
        with self.lock:
            if cache_key in self.loaded:
                self.loaded.move_to_end(cache_key)
                return self.loaded[cache_key]
            vectors = _load(artifacts, key)
            self.loaded[cache_key] = vectors
            while len(self.loaded) > self.size:
                self.loaded.popitem(last=False)
            return vectors

    def binary(self, artifacts: ArtifactStore, job_id: int) -> str:
        """The key of <id>/vectors.bin, written from vectors.txt the first time (through a
        temporary name: a reader never sees half a file)."""
        key = f"{job_id}/{BINARY}"
        if artifacts.exists(key):
            return key
        with self.lock, tempfile.TemporaryDirectory(prefix="upvote-vectors-") as folder:
            if not artifacts.exists(key):
                vectors = _load(artifacts, f"{job_id}/{TEXT}", Path(folder))
                vectors.save_word2vec_format(Path(folder) / BINARY, binary=True)
                artifacts.put(Path(folder) / BINARY, key)
        return key


def _load(artifacts: ArtifactStore, key: str, folder: Path | None = None) -> KeyedVectors:
    """Read vectors of the store: in place from a local folder, else from a local copy."""
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="upvote-vectors-") as tmp:
            return _load(artifacts, key, Path(tmp))
    return KeyedVectors.load_word2vec_format(artifacts.fetch(key, folder))
