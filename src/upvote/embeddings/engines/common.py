"""What every engine and front door shares, without torch or numba (importing it costs nothing).

- Progress: the one progress callback every engine calls, and ProgressBar, which wraps a user's
  callback and/or draws a bar; the front doors (word2vec.train, the CLI) make one, engines call it.
- Schedule: word2vec.c's linearly decaying learning rate.
- write_atomically: how every checkpoint is written (a temp file renamed into place), so a kill
  mid-write leaves the previous checkpoint, never half a file.
- format_bytes: sizes in the log and in error messages; memory_bytes: how much there is.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

Progress = Callable[[int, float], None]  # (corpus words done since the last call, mean loss)


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KB' (binary units)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def memory_bytes() -> int:
    """Physical memory of this machine, or the cgroup's limit when that is lower."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


class ProgressBar:
    """A Progress callback that forwards to a user's callback and/or draws a rich progress bar
    with words/s and the running loss.

    progress: True for the bar, a callable to forward to, False for neither, or a list of these
    (``[True, recorder]``: the bar on screen and the loss curve for experiment tracking).
    """

    def __init__(
        self, progress: bool | Progress | list[bool | Progress], total: int, completed: int = 0
    ) -> None:
        wanted = progress if isinstance(progress, list) else [progress]
        self.users = [p for p in wanted if callable(p)]
        self.show = any(p is True for p in wanted)
        self.total, self.completed = total, completed

    def __enter__(self) -> Progress:
        if self.show:
            # rich only when a bar is shown: library callers (progress=False) never load it
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(
                TextColumn("word2vec"),
                BarColumn(),
                TextColumn("{task.percentage:>5.1f}%"),
                TextColumn("{task.fields[wps]:>8} words/s"),
                TextColumn("loss {task.fields[loss]:.4f}"),
                TimeRemainingColumn(),
            )
            self.task = self.bar.add_task(
                "train", total=self.total, completed=self.completed, wps="-", loss=float("nan")
            )
            self.bar.start()
        self.t0, self.words = time.perf_counter(), 0
        return self._update

    def _update(self, words: int, loss: float) -> None:
        self.words += words
        for user in self.users:
            user(words, loss)
        if self.show:
            wps = self.words / max(time.perf_counter() - self.t0, 1e-9)
            self.bar.update(self.task, advance=words, wps=f"{wps / 1e3:,.0f}k", loss=loss)

    def __exit__(self, *exc) -> None:
        if self.show:
            self.bar.stop()


@dataclass
class Schedule:
    """Linear learning-rate decay over all epochs, as in word2vec.c."""

    start: float
    end: float
    total_words: int

    def lr(self, done_words: int) -> float:
        frac = min(done_words / max(self.total_words, 1), 1.0)
        return max(self.start - (self.start - self.end) * frac, self.end)


def write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call write(file) on a temp file next to `path`, then rename it to `path`.

    The rename is atomic on POSIX: a reader (or a resumed run) sees the old file or the new one,
    never half of one; a failed write leaves no temp file behind.
    """
    path = Path(path)
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as f:
        try:
            write(f)
        except BaseException:
            f.close()
            os.unlink(f.name)
            raise
    os.replace(f.name, path)
