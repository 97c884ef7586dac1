"""The prediction log of the MLX contract: one JSON line per prediction, one file per model version.

Files live in ``settings.logs_dir`` (``/var/log/app`` in the container, a volume), survive
restarts because they are only ever appended to, and are rotated by size: when
``predictions-<version>.jsonl`` would pass ``max_bytes`` it becomes ``.1`` (``.1`` becomes ``.2``,
...), keeping ``backups`` old files, the scheme of ``logging.handlers.RotatingFileHandler``.
"""

import json
import threading
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any


class PredictionLog:
    def __init__(self, directory: Path, max_bytes: int, backups: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.backups = backups
        self._files: dict[str, IO[str]] = {}
        self._lock = threading.Lock()

    def path(self, version: str, generation: int = 0) -> Path:
        name = f"predictions-{version}.jsonl"
        return self.directory / (f"{name}.{generation}" if generation else name)

    def append(self, version: str, inputs: dict[str, Any], prediction: Any, latency_ms: float):
        record = {
            "Timestamp": datetime.now(UTC).isoformat(),
            "Version": version,
            "Input": inputs,
            "Prediction": prediction,
            "Latency": round(latency_ms, 3),
        }
        line = json.dumps(record, default=str) + "\n"
        with self._lock:
            file = self._files.get(version)
            if file is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                file = self._files[version] = self.path(version).open("a", encoding="utf-8")
            if file.tell() and file.tell() + len(line) > self.max_bytes:
                file = self._rotate(version)
            file.write(line)
            file.flush()

    def _rotate(self, version: str) -> IO[str]:
        self._files.pop(version).close()
        for generation in range(self.backups, 0, -1):
            older = self.path(version, generation - 1)
            if older.exists():
                older.replace(self.path(version, generation))  # drops the oldest beyond backups
        file = self._files[version] = self.path(version).open("a", encoding="utf-8")
        return file

    def tail(self, version: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` records of ``version``, oldest first, across rotated files."""
        lines: deque[str] = deque(maxlen=limit)
        with self._lock:
            for generation in range(self.backups, -1, -1):
                path = self.path(version, generation)
                if path.exists():
                    with path.open(encoding="utf-8") as f:
                        lines.extend(line for line in f if line.strip())
        return [json.loads(line) for line in lines]

    def close(self) -> None:
        with self._lock:
            for file in self._files.values():
                file.close()
            self._files.clear()
