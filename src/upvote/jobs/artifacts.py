"""Where the files of jobs live: a local folder (the default) or an fsspec URL shared by machines.

One job's files sit under ``<store>/<job id>/``: ``upload/NAME`` (a corpus the API received),
``checkpoint.npz`` (the last finished epoch), ``vectors.txt``, ``params.json``,
``evaluation.json`` and ``vectors.bin`` (written by the API on first request).

- `LocalStore` (UPVOTE_JOBS_ARTIFACTS_URL unset): the folder ``settings.jobs_dir``. A worker
  trains right in ``<folder>/<id>``, so pushing and pulling are no-ops: nothing is copied. API
  and workers on several machines then need one shared folder (NFS, a compose volume).
- `FsspecStore` (UPVOTE_JOBS_ARTIFACTS_URL=s3://bucket/prefix, gs://..., file:///...): a worker
  trains in a local scratch folder (``settings.jobs_dir/<id>``) and copies to and from the store
  at a few points (queue.run_job): the upload before encoding, the last checkpoint before
  training (a job killed on one machine resumes on another from its last epoch), each new
  checkpoint, and the results at the end. The API reads and writes only the store.

What a reader may rely on: every file a worker pushes is written to a temporary name beside its
final one and then moved there (`put`). On a POSIX file system (file://, a mounted share) the
move is a rename, which is atomic; on an object store (S3, GCS) an object becomes visible only
once its upload completed, and the move is a server-side copy that creates the final object in
one step. So a reader sees no file or a whole one, never half a vectors file. A job's results are
pushed before its row says succeeded, so the API never looks for them too early.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from upvote.jobs.options import JobsError
from upvote.redact import redact
from upvote.settings import Settings

CHUNK = 1 << 20  # bytes per read when streaming a file out of the store


class FsspecStore:
    """A store at an fsspec URL; `url_to_fs` picks the file system by protocol (s3fs for s3://,
    gcsfs for gs://, built in for file://), so any installed protocol works."""

    def __init__(self, url: str, scratch: Path) -> None:
        import fsspec.core  # only a process that uses a store URL pays for the import

        try:
            self.fs, root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as error:  # an unknown protocol, a missing package
            message = f"UPVOTE_JOBS_ARTIFACTS_URL {url}: {error}".splitlines()[0]
            raise JobsError(redact(message, url)) from None
        self.root = root.rstrip("/")
        self.scratch_root = scratch

    def path(self, key: str) -> str:
        """The file system path of a key such as '12/vectors.txt'."""
        return f"{self.root}/{key}"

    # --- the worker's side: a local scratch folder synced with the store ---

    def scratch(self, job_id: int) -> Path:
        """The local folder a worker trains the job in."""
        return self.scratch_root / str(job_id)

    def begin(self, job_id: int) -> None:
        """An attempt starts: from the store alone. A scratch folder left here by an earlier
        attempt (a killed worker) may hold an older checkpoint than the store's, pushed since by
        an attempt elsewhere."""
        shutil.rmtree(self.scratch(job_id), ignore_errors=True)

    def scratch_jobs(self) -> list[int]:
        """The jobs with a scratch folder here: attempts running, or killed (their folder stays)."""
        if not self.scratch_root.is_dir():
            return []
        return [int(p.name) for p in self.scratch_root.iterdir() if p.name.isdigit()]

    def pull(self, job_id: int, name: str) -> bool:
        """Copy <store>/<id>/name to the scratch folder unless it is there already; whether the
        scratch folder has it now."""
        local = self.scratch(job_id) / name
        if local.exists():
            return True
        if not self.exists(f"{job_id}/{name}"):
            return False
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(f".{local.name}.{uuid.uuid4().hex}.tmp")
        try:
            self.fs.get_file(self.path(f"{job_id}/{name}"), str(partial))
            partial.replace(local)
        finally:
            partial.unlink(missing_ok=True)
        return True

    def push(self, job_id: int, name: str) -> None:
        """Copy scratch/name to <store>/<id>/name (atomically for readers: see the module)."""
        self.put(self.scratch(job_id) / name, f"{job_id}/{name}")

    def finish(self, job_id: int) -> None:
        """The attempt ended: its scratch folder goes (what matters was pushed)."""
        shutil.rmtree(self.scratch(job_id), ignore_errors=True)

    # --- files in the store (the API's side, and what the worker's side is made of) ---

    def local_path(self, key: str) -> Path | None:
        """A local path of the key that can be served as it is, or None (copy it first)."""
        return None

    def exists(self, key: str) -> bool:
        return self.fs.exists(self.path(key))

    def version(self, key: str) -> str:
        """Changes whenever the file is rewritten (fsspec's ukey: mtime, ETag, ...); raises
        FileNotFoundError for a missing file."""
        return self.fs.ukey(self.path(key))

    def size(self, key: str) -> int:
        return self.fs.size(self.path(key))

    def read_text(self, key: str) -> str:
        return self.fs.cat_file(self.path(key)).decode()

    def chunks(self, key: str) -> Iterator[bytes]:
        """The file in CHUNK-sized pieces, never whole in memory."""
        with self.fs.open(self.path(key), "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def open_write(self, key: str) -> BinaryIO:
        """A file to stream to (for an upload that arrives in chunks); `move` it into place."""
        self.fs.makedirs(self.path(key).rsplit("/", 1)[0], exist_ok=True)
        return self.fs.open(self.path(key), "wb")

    def move(self, key: str, to: str) -> None:
        self.fs.makedirs(self.path(to).rsplit("/", 1)[0], exist_ok=True)
        self.fs.mv(self.path(key), self.path(to))

    def put(self, local: Path, key: str) -> None:
        """Upload a local file to key through a temporary name (atomic for readers)."""
        folder, _, name = key.rpartition("/")
        partial = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
        self.fs.makedirs(self.path(key).rsplit("/", 1)[0], exist_ok=True)
        try:
            self.fs.put_file(str(local), self.path(partial))
            self.fs.mv(self.path(partial), self.path(key))
        finally:
            self.remove(partial)

    def fetch(self, key: str, folder: Path) -> Path:
        """A local copy of key in folder (a temporary folder of the caller's)."""
        local = folder / key.rsplit("/", 1)[-1]
        self.fs.get_file(self.path(key), str(local))
        return local

    def remove(self, key: str) -> None:
        """Remove a file; a missing one is no error."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path(key))

    def remove_job(self, job_id: int) -> None:
        """Remove everything of the job (its whole prefix); a missing one is no error."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path(str(job_id)), recursive=True)


class LocalStore(FsspecStore):
    """The folder case: the store is the folder a worker trains in, so nothing is copied; the
    API serves files straight from it."""

    def __init__(self, folder: Path) -> None:
        from fsspec.implementations.local import LocalFileSystem

        self.fs, self.root, self.scratch_root = LocalFileSystem(), str(folder), folder

    def begin(self, job_id: int) -> None:
        """The folder is the store: what an earlier attempt left is the job's newest state."""

    def scratch_jobs(self) -> list[int]:
        return []  # the folders are the store, not scratch

    def pull(self, job_id: int, name: str) -> bool:
        return (self.scratch(job_id) / name).exists()

    def push(self, job_id: int, name: str) -> None:
        """Nothing to copy: the scratch folder is the store."""

    def finish(self, job_id: int) -> None:
        """The folder holds the job's results: it stays."""

    def local_path(self, key: str) -> Path | None:
        return Path(self.path(key))

    def fetch(self, key: str, folder: Path) -> Path:
        return Path(self.path(key))

    def remove_job(self, job_id: int) -> None:
        shutil.rmtree(self.path(str(job_id)), ignore_errors=True)


ArtifactStore = FsspecStore  # the type callers name: either class


def open_store(settings: Settings, scratch: Path | None = None) -> ArtifactStore:
    """The store of the settings: UPVOTE_JOBS_ARTIFACTS_URL, else the folder jobs_dir. scratch:
    the local folder jobs train in (default jobs_dir), which is the store itself without a URL."""
    folder = scratch or settings.jobs_dir
    if settings.jobs_artifacts_url:
        return FsspecStore(settings.jobs_artifacts_url, folder)
    return LocalStore(folder)
