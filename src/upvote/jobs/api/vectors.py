"""A job's vectors for the API: loaded for /similar (a few jobs kept, least recently used
dropped), and the word2vec binary file written once, next to the text file, on first request."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from upvote.embeddings.vectors import KeyedVectors

TEXT, BINARY = "vectors.txt", "vectors.bin"


class VectorCache:
    """Keyed by path and modification time, so a rewritten file is never served stale. Loading
    happens under a lock: two requests for one job load it once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.loaded: OrderedDict[tuple[str, int], KeyedVectors] = OrderedDict()

    def get(self, path: Path) -> KeyedVectors:
        key = (str(path), path.stat().st_mtime_ns)
        with self.lock:
            if key in self.loaded:
                self.loaded.move_to_end(key)
                return self.loaded[key]
            vectors = KeyedVectors.load_word2vec_format(path)
            self.loaded[key] = vectors
            while len(self.loaded) > self.size:
                self.loaded.popitem(last=False)
            return vectors

    def binary(self, job_dir: Path) -> Path:
        """job_dir/vectors.bin, written from vectors.txt the first time (atomically: a reader
        never sees half a file)."""
        out = job_dir / BINARY
        if out.exists():
            return out
        with self.lock:
            if not out.exists():
                partial = job_dir / f".{BINARY}.{os.getpid()}.tmp"
                vectors = KeyedVectors.load_word2vec_format(job_dir / TEXT)
                vectors.save_word2vec_format(partial, binary=True)
                os.replace(partial, out)
        return out
