"""The model the service answers with, and how it is replaced without stopping the service.

Requests read ``holder.model`` once and keep that reference, so a reload (which assigns a new,
fully loaded and checked model in one step) never changes the model under a running request:
in-flight requests finish on the old model and the next ones get the new one.

A service started before any model was trained looks for one again (at most every
``RETRY_SECONDS``) whenever a request needs it, so ``upvote train`` after ``upvote serve`` is
enough: no restart and no ``/admin/reload``.
"""

import gc
import logging
import math
import threading
import time
from pathlib import Path

from upvote.model.bundle import UpvoteModel
from upvote.model.registry import load_model

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
        self, models_dir: Path, version: str = "latest", retry_seconds: float = RETRY_SECONDS
    ) -> None:
        self.models_dir = models_dir
        self.version = version  # what to look for while none is loaded
        self.retry_seconds = retry_seconds
        self._model: UpvoteModel | None = None
        self._reload_lock = threading.Lock()  # one reload at a time; readers never wait
        self._next_try = 0.0  # monotonic time of the next look for a model while none is loaded
        self._last_error = ""

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

    def load(self, version: str = "latest") -> tuple[str | None, str]:
        """Load ``version`` fully, check it answers, then swap it in; on any error keep the old."""
        with self._reload_lock:
            try:
                return self._swap_in(version)
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
        self._model = new
        # The model's objects live as long as it serves: frozen, no collection walks them. Unfreeze
        # first, so that a reload's previous model (and its cycles) can still be collected.
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        log.info("serving model %s (was %s)", new.version, previous)
        return previous, new.version
