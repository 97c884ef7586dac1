"""The prediction log of the MLX contract: one JSON line per prediction, one file per model version.

Files live in ``settings.logs_dir`` (``/var/log/app`` in the container, a volume), survive
restarts because they are only ever appended to, and are rotated by size: when
``predictions-<version>.jsonl`` would pass ``max_bytes`` it becomes ``.1`` (``.1`` becomes ``.2``,
...), keeping ``backups`` old files, the scheme of ``logging.handlers.RotatingFileHandler``.

Records are queued, made into lines in bulk and written in blocks: by ``flush()`` (the service
calls it every ``FLUSH_SECONDS``), before ``tail()`` reads, on rotation and on ``close()``: a
write per record, and then formatting each record within its request, were a large share of a
cheap request's CPU (benchmarks/RESULTS.md, "Service"). The price: a process killed with SIGKILL
loses at most the last ``FLUSH_SECONDS`` of records (a normal stop loses none).

The log is best effort: a prediction never fails because its record cannot be written. A write
error (a full disk, a read-only volume) drops the records still buffered for that file and every
record for the next ``RETRY_SECONDS``; ``errors``, ``dropped`` and ``failing`` count and say so
(``/health`` shows them). A file left with a torn last line (a crash, a full disk) gets a newline
before the next record, and readers skip (and count) lines that do not parse.

``tail()`` reads the files backwards, block by block, outside the lock that ``append`` takes (it
holds it only to flush), so a ``/logs`` call neither blocks predictions nor reads whole files:
it stops at ``limit`` records or ``TAIL_MAX_BYTES``, whichever comes first.
"""

import contextlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
BUFFER_BYTES = 1 << 16
WRITE_BATCH = 256  # queued records that ``append`` writes at once
RETRY_SECONDS = 5.0  # after a write error, records are dropped (and counted) this long
TAIL_BLOCK = 1 << 16
TAIL_MAX_BYTES = 4 << 20  # at most this much of the files is read per tail() call


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_record(line: bytes) -> dict[str, Any] | None:
    """A log line as a record, or ``None`` if it is torn or otherwise not a JSON object."""
    try:
        record = json.loads(line, parse_constant=_no_constants)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        return None
    return record if isinstance(record, dict) else None


def lines_backwards(file: BinaryIO, max_bytes: int) -> Iterator[bytes]:
    """The lines of ``file``, last first, reading at most about ``max_bytes`` from its end."""
    end = position = file.seek(0, os.SEEK_END)
    rest = b""
    while position > 0:
        if end - position >= max_bytes:
            return  # the budget is spent: the partial line in ``rest`` is not given
        step = min(TAIL_BLOCK, position)
        position -= step
        file.seek(position)
        parts = (file.read(step) + rest).split(b"\n")
        rest = parts[0]  # may begin in the block before
        yield from reversed(parts[1:])
    yield rest


class PredictionLog:
    def __init__(self, directory: Path, max_bytes: int, backups: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.backups = backups
        self._files: dict[str, BinaryIO] = {}
        self._version_json: dict[str, bytes] = {}
        self._sizes: dict[str, int] = {}  # bytes in each open file, buffered ones included
        self._lock = threading.Lock()  # /predict appends from FastAPI's worker threads
        self._queue: deque[tuple] = deque()  # records not yet made into lines (``append``)
        self._pending: dict[str, int] = {}  # records buffered per version, not yet on disk
        self._retry_at = 0.0  # while failing, records are dropped until this monotonic time
        self.errors = 0  # write errors since start
        self.dropped = 0  # records lost to them
        self.failing = False  # the last write failed (and none has succeeded since)
        self.last_error: str | None = None  # e.g. "OSError: No space left on device"

    def path(self, version: str, generation: int = 0) -> Path:
        name = f"predictions-{version}.jsonl"
        return self.directory / (f"{name}.{generation}" if generation else name)

    def append(
        self,
        version: str,
        inputs: BaseModel | dict[str, Any],
        prediction: float,
        latency_ms: float,
        interval: tuple[float, float] | None = None,
    ) -> None:
        """Queue one record. ``inputs`` is the validated request body (or a plain dict);
        ``interval`` the predicted score's p10 and p90 (`upvote monitor` checks their coverage).

        A request only queues its record: the lines are made and written in bulk (``flush``, or
        here once ``WRITE_BATCH`` records wait). Formatting each record amid the request's other
        work cost the service ~4x the CPU of formatting a queue of them in one loop
        (benchmarks/RESULTS.md, "Service"). Safe from any thread: deque appends are atomic.
        """
        if not isinstance(inputs, BaseModel):
            inputs = dict(inputs)  # the caller's dict may change before the line is made
        self._queue.append((time.time(), version, inputs, prediction, latency_ms, interval))
        if len(self._queue) >= WRITE_BATCH:
            with self._lock:
                self._write_queued()

    def _line(
        self,
        stamp: float,
        version: str,
        inputs: BaseModel | dict[str, Any],
        prediction: float,
        latency_ms: float,
        interval: tuple[float, float] | None,
    ) -> bytes:
        """A record's JSON line, assembled as bytes from pre-serialized parts (pydantic's Rust
        serializer for the input, straight to bytes; a cached JSON string per version) rather
        than ``json.dumps`` of a nested dict, and never decoded and encoded again."""
        if isinstance(inputs, BaseModel):
            inputs_json = inputs.__pydantic_serializer__.to_json(inputs)  # model_dump_json's bytes
        else:
            inputs_json = json.dumps(inputs, default=str).encode()
        version_json = self._version_json.get(version) or self._version_json.setdefault(
            version, json.dumps(version).encode()
        )
        extra = b', "Interval": [%r, %r]' % interval if interval else b""
        return (
            b'{"Timestamp": "%s", "Version": %s, "Input": %s, "Prediction": %r%s, "Latency": %r}\n'
            % (
                datetime.fromtimestamp(stamp, UTC).isoformat().encode(),
                version_json,
                inputs_json,
                float(prediction),
                extra,
                round(latency_ms, 3),
            )
        )

    def _write_queued(self) -> None:
        """Write the queued records into the files' buffers, oldest first (the lock held)."""
        queue = self._queue
        now = time.monotonic()
        for _ in range(len(queue)):  # only this method takes from the queue, under the lock
            record = queue.popleft()
            version = record[1]
            if self.failing and now < self._retry_at:
                self.dropped += 1
                continue
            line = self._line(*record)
            try:
                file = self._files.get(version) or self._open(version)
                if self._sizes[version] and self._sizes[version] + len(line) > self.max_bytes:
                    file = self._rotate(version)
                file.write(line)
            except OSError as error:
                self._failed(version, error, lost=1)
                now = time.monotonic()
                continue
            self._sizes[version] += len(line)
            self._pending[version] = self._pending.get(version, 0) + 1

    def _failed(self, version: str, error: OSError, lost: int) -> None:
        """Give up the file of ``version`` and its buffered records; retry in RETRY_SECONDS."""
        file = self._files.pop(version, None)
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()  # flushes again, fails again, but closes the descriptor
        self._sizes.pop(version, None)
        self.dropped += self._pending.pop(version, 0) + lost
        self.errors += 1
        self.failing = True
        # no file name: /health shows this to anyone
        reason = os.strerror(error.errno) if error.errno else type(error).__name__
        self.last_error = f"{type(error).__name__}: {reason}"
        self._retry_at = time.monotonic() + RETRY_SECONDS
        log.warning(
            "prediction log %s: %s; %d records dropped so far, next try in %g s",
            self.path(version), self.last_error, self.dropped, RETRY_SECONDS,
        )  # fmt: skip

    def _open(self, version: str) -> BinaryIO:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(version)
        file = path.open("ab", buffering=BUFFER_BYTES)
        size = os.fstat(file.fileno()).st_size
        if size:
            with path.open("rb") as tail:
                tail.seek(-1, os.SEEK_END)
                torn = tail.read(1) != b"\n"
            if torn:  # a crash or a full disk cut the last line: end it, so the next is whole
                file.write(b"\n")
                size += 1
        self._files[version] = file
        self._sizes[version] = size
        return file

    def _rotate(self, version: str) -> BinaryIO:
        self._files.pop(version).close()
        self._pending.pop(version, None)  # written by the close
        for generation in range(self.backups, 0, -1):
            older = self.path(version, generation - 1)
            if older.exists():
                older.replace(self.path(version, generation))  # drops the oldest beyond backups
        return self._open(version)

    def flush(self, version: str | None = None) -> None:
        """Write the queued and buffered records (of ``version``, or all) to the files; never
        raises."""
        with self._lock:
            self._write_queued()
            for name, file in list(self._files.items()):
                if version is not None and name != version:
                    continue
                try:
                    file.flush()
                except OSError as error:
                    self._failed(name, error, lost=0)
                    continue
                if self._pending.get(name):
                    self._pending[name] = 0
                    self.failing = False

    def read_tail(self, version: str, limit: int) -> tuple[list[bytes], int]:
        """The newest ``limit`` lines of ``version`` that parse, oldest first, across rotated
        files, and how many lines did not parse on the way (torn by a crash or a full disk)."""
        self.flush(version)  # the only moment the lock is held
        newest_first: list[bytes] = []
        skipped = 0
        budget = TAIL_MAX_BYTES
        for generation in range(self.backups + 1):
            try:
                file = self.path(version, generation).open("rb")
            except FileNotFoundError:
                continue
            with file:
                size = os.fstat(file.fileno()).st_size
                for line in lines_backwards(file, budget):
                    if not line.strip():
                        continue
                    if parse_record(line) is None:
                        skipped += 1
                        continue
                    newest_first.append(line)
                    if len(newest_first) >= limit:
                        return newest_first[::-1], skipped
            budget -= size
            if budget <= 0:
                break
        return newest_first[::-1], skipped

    def tail(self, version: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` records of ``version``, oldest first, across rotated files."""
        lines, _ = self.read_tail(version, limit)
        return [json.loads(line) for line in lines]

    def close(self) -> None:
        with self._lock:
            self._write_queued()
            for name, file in list(self._files.items()):
                try:
                    file.close()
                except OSError as error:
                    self._failed(name, error, lost=0)
            self._files.clear()
            self._sizes.clear()
