"""The prediction log of the MLX contract: one JSON line per prediction, one file per model version.

Files live in ``settings.logs_dir`` (``/var/log/app`` in the container, a volume), survive
restarts because they are only ever appended to, and are rotated by size: when
``predictions-<version>.jsonl`` would pass ``max_bytes`` it becomes ``.1`` (``.1`` becomes ``.2``,
...), keeping ``backups`` old files, the scheme of ``logging.handlers.RotatingFileHandler``.

Records are buffered and written in blocks: by ``flush()`` (the service calls it every
``FLUSH_SECONDS``), before ``tail()`` reads, on rotation and on ``close()``: a write per record
was a large share of a cheap request's CPU (benchmarks/RESULTS.md, "Service"). The price: a
process killed with SIGKILL loses at most the last ``FLUSH_SECONDS`` of records (a normal stop
loses none).
"""

import json
import os
import threading
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel

FLUSH_SECONDS = 1.0
BUFFER_BYTES = 1 << 16


class PredictionLog:
    def __init__(self, directory: Path, max_bytes: int, backups: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.backups = backups
        self._files: dict[str, BinaryIO] = {}
        self._version_json: dict[str, str] = {}
        self._sizes: dict[str, int] = {}  # bytes in each open file, buffered ones included
        self._lock = threading.Lock()  # /predict appends from FastAPI's worker threads

    def path(self, version: str, generation: int = 0) -> Path:
        name = f"predictions-{version}.jsonl"
        return self.directory / (f"{name}.{generation}" if generation else name)

    def append(
        self, version: str, inputs: BaseModel | dict[str, Any], prediction: float, latency_ms: float
    ) -> None:
        """Buffer one record. ``inputs`` is the validated request body (or a plain dict).

        The line is assembled from pre-serialized parts (pydantic's Rust ``model_dump_json`` for
        the input, a cached JSON string per version) rather than ``json.dumps`` of a nested dict:
        it runs on every prediction, and this way costs about half as much.
        """
        if isinstance(inputs, BaseModel):
            inputs_json = inputs.model_dump_json()
        else:
            inputs_json = json.dumps(inputs, default=str)
        version_json = self._version_json.get(version) or self._version_json.setdefault(
            version, json.dumps(version)
        )
        line = (
            f'{{"Timestamp": "{datetime.now(UTC).isoformat()}", "Version": {version_json}, '
            f'"Input": {inputs_json}, "Prediction": {float(prediction)!r}, '
            f'"Latency": {round(latency_ms, 3)}}}\n'
        ).encode()
        with self._lock:
            file = self._files.get(version) or self._open(version)
            if self._sizes[version] and self._sizes[version] + len(line) > self.max_bytes:
                file = self._rotate(version)
            file.write(line)
            self._sizes[version] += len(line)

    def _open(self, version: str) -> BinaryIO:
        self.directory.mkdir(parents=True, exist_ok=True)
        file = self._files[version] = self.path(version).open("ab", buffering=BUFFER_BYTES)
        self._sizes[version] = os.fstat(file.fileno()).st_size
        return file

    def _rotate(self, version: str) -> BinaryIO:
        self._files.pop(version).close()
        for generation in range(self.backups, 0, -1):
            older = self.path(version, generation - 1)
            if older.exists():
                older.replace(self.path(version, generation))  # drops the oldest beyond backups
        return self._open(version)

    def flush(self) -> None:
        """Write the buffered records to the files."""
        with self._lock:
            for file in self._files.values():
                file.flush()

    def tail(self, version: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` records of ``version``, oldest first, across rotated files."""
        lines: deque[bytes] = deque(maxlen=limit)
        with self._lock:
            if version in self._files:
                self._files[version].flush()
            for generation in range(self.backups, -1, -1):
                path = self.path(version, generation)
                if path.exists():
                    with path.open("rb") as f:
                        lines.extend(line for line in f if line.strip())
        return [json.loads(line) for line in lines]

    def close(self) -> None:
        with self._lock:
            for file in self._files.values():
                file.close()
            self._files.clear()
            self._sizes.clear()
