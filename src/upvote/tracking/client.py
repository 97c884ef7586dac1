"""Tracking for one command, without MLflow in the command's process.

:class:`Tracking` starts the writer process (``tracking/store.py``) when it is made, at the
command's beginning: MLflow is imported and the store opened there, on the other core, while the
command trains. At the end the command hands over its runs (a few small JSON messages) and the
writer logs them. Measured cost: benchmarks/RESULTS.md ("Experiment tracking").

When tracking is off (``UPVOTE_TRACKING=0``), MLflow is missing, or the store cannot be reached
or fails later, every call is a no-op returning None and the command says so once; the store's
URL is printed with its password masked.
"""

import json
import os
import select
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable

from upvote.redact import redact
from upvote.settings import Settings, get_settings
from upvote.tracking.records import RunRecord, artifact_root, quiet_environment, store_uri

CONNECT_TIMEOUT = 60.0  # seconds a command waits, at its end, for the store to answer
CALL_TIMEOUT = 300.0  # seconds one request may take (artifacts over a slow link)


class Tracking:
    """MLflow for one command. ``experiment``: the experiment's name (created when missing);
    ``say``: how to tell the user, in one line, that tracking is off."""

    def __init__(
        self,
        experiment: str,
        settings: Settings | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        self.settings = settings or get_settings()
        self.experiment, self.say = experiment, say
        self.uri = store_uri(self.settings)
        self._error: str | None = None
        self._said = False
        self._ready: bool | None = None
        self._lock = threading.Lock()  # tune's trials end in several threads: one request at once
        self._writer: subprocess.Popen | None = None
        if not self.settings.tracking:
            self._error = "UPVOTE_TRACKING=0"
            return
        quiet_environment()
        location = artifact_root(self.settings, experiment) or ""
        self._writer = subprocess.Popen(
            [sys.executable, "-m", "upvote.tracking.store", self.uri, experiment, location],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=os.environ.copy(),
        )
        weakref.finalize(self, _stop, self._writer)

    @property
    def where(self) -> str:
        return redact(self.uri, self.uri)

    def ready(self) -> bool:
        """True when runs can be logged; otherwise says why, once."""
        with self._lock:
            if self._ready is None and self._writer is not None:
                answer = self._read(CONNECT_TIMEOUT)
                self._ready = "ok" in answer
                if not self._ready:
                    self._fail(answer["error"])
            if not self._ready and not self._said:
                self._said = True
                self.say(f"tracking off: {self._error}")
            return bool(self._ready)

    def log_run(self, record: RunRecord, parent: str | None = None) -> str | None:
        """Write ``record`` as a finished run (nested under run id ``parent``); its id, or None
        when tracking is off or the store failed (said once)."""
        run_id = self.open_run(record, parent)
        if run_id is None or not self.finish_run(run_id, record):
            return None
        return run_id

    def open_run(self, record: RunRecord, parent: str | None = None) -> str | None:
        """Create a running run with ``record``'s name, tags and parameters (a parent whose
        children are logged while it runs, such as a tuning study); its id or None."""
        return self._call("open_run", record.to_json(), parent)

    def finish_run(self, run_id: str, record: RunRecord) -> bool:
        """Add ``record``'s metrics, curves and artifacts to run ``run_id`` and end it."""
        return bool(self._call("finish_run", run_id, record.to_json()))

    def mirror_version(self, bundle, run_id: str | None, metrics: dict[str, float]) -> str | None:
        """Register a published bundle folder as a version of the model ``upvote``."""
        return self._call("mirror_version", str(bundle), run_id, metrics)

    def mirror_aliases(self, aliases: dict[str, str]) -> bool:
        """Make MLflow's aliases (alias -> bundle name) equal the registry folder's."""
        return bool(self._call("mirror_aliases", aliases))

    def close(self) -> None:
        """End the writer (it also ends by itself when this process does)."""
        if self._writer is not None:
            _stop(self._writer)

    def _call(self, op: str, *args):
        if not self.ready():
            return None
        with self._lock:
            try:
                self._writer.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
                self._writer.stdin.flush()
            except OSError as error:
                answer = {"error": f"the writer process ended ({error})"}
            else:
                answer = self._read(CALL_TIMEOUT)
        if "ok" in answer:
            return answer["ok"]
        with self._lock:
            self._ready, self._said = False, False
            self._fail(answer["error"])
        self.ready()  # says it, once
        return None

    def _read(self, timeout: float) -> dict:
        """The writer's next answer, or an error if it ended or took longer than ``timeout``."""
        out = self._writer.stdout
        deadline = time.monotonic() + timeout
        while not select.select([out], [], [], max(deadline - time.monotonic(), 0))[0]:
            if time.monotonic() >= deadline:
                return {"error": f"no answer in {timeout:g} s"}
        line = out.readline()
        if not line:
            return {"error": "the writer process ended"}
        try:
            return json.loads(line)
        except ValueError:
            return {"error": "the writer process answered garbage"}

    def _fail(self, error: str) -> None:
        message = redact(error, self.uri)
        self._error = f"MLflow store {self.where} failed ({message})"
        if message.startswith("MLflow is not installed"):
            self._error = message
        _stop(self._writer)


def _stop(writer: subprocess.Popen) -> None:
    if writer.poll() is None:
        try:
            writer.stdin.close()  # the writer ends at the end of its input
            writer.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            writer.kill()
