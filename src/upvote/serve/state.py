"""The model the service answers with, and how it is replaced without stopping the service.

Requests read ``holder.model`` once and keep that reference, so a reload (which assigns a new,
fully loaded and checked model in one step) never changes the model under a running request:
in-flight requests finish on the old model and the next ones get the new one.

A service started before any model was trained looks for one again (at most every
``RETRY_SECONDS``) whenever a request needs it, so ``upvote train`` after ``upvote serve`` is
enough: no restart and no ``/admin/reload``.

A service that serves an alias (``champion`` by default; ``challenger``, ``latest``) follows it:
a thread reads the alias's link every ``alias_poll_seconds`` (one ``readlink``) and, when it
names another version, loads that one the same way as a reload. A version that fails is logged
and not tried again until the link moves once more; the old model keeps serving. A reload to
some other version (``/admin/reload``) holds until the alias next moves.
"""

import gc
import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

from upvote.model.bundle import UpvoteModel
from upvote.model.registry import ALIASES, CHAMPION, alias_target, load_model

log = logging.getLogger(__name__)

# Stories every bundle must score, every output finite, before it is allowed to serve: one is
# not enough (a bundle whose weights are NaN can still clip some outputs to a number).
PROBE = {"title": "Show HN: A tiny word2vec in PyTorch", "url": None, "by": "probe", "time": None}
PROBES = [
    PROBE,
    {"title": "Ask HN: How do you back up your laptop?", "url": "", "by": "pg"},
    {"title": "Rust 1.80 released", "url": "https://blog.rust-lang.org/", "time": 1700000000},
    {"title": "x"},
]
RETRY_SECONDS = 5.0  # while no model is loaded, how often a request may look for one


class ModelNotLoaded(RuntimeError):
    """No model is loaded yet (empty registry); endpoints answer 503 until one is found."""


class ModelHolder:
    def __init__(
        self,
        models_dir: Path,
        version: str = CHAMPION,
        retry_seconds: float = RETRY_SECONDS,
        on_swap: Callable[[UpvoteModel], None] | None = None,
    ) -> None:
        self.models_dir = models_dir
        self.on_swap = on_swap  # told of each model swapped in, before it serves (drift's window)
        self.version = version  # what to serve: an alias is followed (``watch``)
        self.retry_seconds = retry_seconds
        self._model: UpvoteModel | None = None
        self._reload_lock = threading.Lock()  # one reload at a time; readers never wait
        self._next_try = 0.0  # monotonic time of the next look for a model while none is loaded
        self._last_error = ""
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def model(self) -> UpvoteModel:
        model = self._model
        if model is None:
            model = self._look_again()
        if model is None:
            # why (with the registry's path) is in the server's log, not in a public answer
            raise ModelNotLoaded(
                f"no model loaded; the service looks for one every {self.retry_seconds:g} s, "
                "so `upvote train` is enough: no restart"
            )
        return model

    @property
    def loaded(self) -> bool:
        return self._model is not None or self._look_again() is not None

    def _look_again(self) -> UpvoteModel | None:
        """Try to load ``self.version`` unless tried within ``retry_seconds`` or a load runs."""
        now = time.monotonic()
        if now < self._next_try or not self._reload_lock.acquire(blocking=False):
            return self._model
        try:
            self._next_try = now + self.retry_seconds
            if self._model is None:
                self._swap_in(self.version)
        except Exception as error:  # not there yet: the next look is in retry_seconds
            if str(error) != self._last_error:
                log.warning("no model loaded: %s", error)
            self._last_error = str(error)
        finally:
            self._reload_lock.release()
        return self._model

    def load(self, version: str | None = None) -> tuple[str | None, str]:
        """Load ``version`` (default: the one configured) fully, check it answers, then swap it
        in; on any error keep the old."""
        with self._reload_lock:
            try:
                return self._swap_in(version or self.version)
            except Exception as error:
                self._last_error = str(error)
                if self._model is None:
                    self._next_try = time.monotonic() + self.retry_seconds
                raise

    def _swap_in(self, version: str) -> tuple[str | None, str]:
        new = load_model(version, registry_dir=self.models_dir)
        check = new.predict_records([dict(story) for story in PROBES])
        finite = len(check) == len(PROBES) and all(
            isinstance(value, int | float) and math.isfinite(value)
            for row in check
            for value in row.values()
        )
        if not finite:
            raise ValueError(f"model {new.version} gives non-finite outputs for the probe stories")
        previous = self._model.version if self._model is not None else None
        if self.on_swap is not None:
            self.on_swap(new)
        self._model = new
        # The model's objects live as long as it serves: frozen, no collection walks them. Unfreeze
        # first, so that a reload's previous model (and its cycles) can still be collected.
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        log.info("serving model %s (was %s)", new.version, previous)
        return previous, new.version

    def watch(self, poll_seconds: float) -> None:
        """Follow the configured alias in a daemon thread (the app's lifespan starts and stops
        it); nothing to follow for a pinned version or with ``poll_seconds`` 0."""
        if poll_seconds <= 0 or self.version not in ALIASES or self._watcher is not None:
            return
        self._stop.clear()
        self._watcher = threading.Thread(
            target=self._follow, args=(poll_seconds,), name="upvote-alias-watch", daemon=True
        )
        self._watcher.start()

    def stop_watching(self) -> None:
        """Stop the thread of ``watch`` (after the load it may be doing)."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None

    def _follow(self, poll_seconds: float) -> None:
        serving = self._model
        seen = serving.version if serving is not None else None  # the target last acted on
        while not self._stop.wait(poll_seconds):
            try:
                target = alias_target(self.version, self.models_dir)
            except OSError as error:  # an unreadable registry: keep serving, look again later
                if str(error) != self._last_error:
                    log.warning("cannot read the %s link: %s", self.version, error)
                self._last_error = str(error)
                continue
            if target is None or target == seen:
                continue
            seen = target  # tried once per move of the link: a broken version is not retried
            serving = self._model
            if serving is not None and serving.version == target:
                continue
            try:
                self.load(target)
            except Exception as error:
                log.error(
                    "%s now names %s, which is refused; still serving %s: %s",
                    self.version,
                    target,
                    serving.version if serving is not None else "no model",
                    error,
                )
