"""The model the service answers with, and how it is replaced without stopping the service.

Requests read ``holder.model`` once and keep that reference, so a reload (which assigns a new,
fully loaded and checked model in one step) never changes the model under a running request:
in-flight requests finish on the old model and the next ones get the new one.
"""

import logging
import math
import threading
from pathlib import Path

import upvote
from upvote.model.bundle import UpvoteModel

log = logging.getLogger(__name__)

# A story every bundle must be able to score before it is allowed to serve.
PROBE = {"title": "Show HN: A tiny word2vec in PyTorch", "url": None, "by": "probe", "time": None}


class ModelNotLoaded(RuntimeError):
    """No model is loaded yet (empty registry); endpoints answer 503 until a reload succeeds."""


class ModelHolder:
    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        self._model: UpvoteModel | None = None
        self._reload_lock = threading.Lock()  # one reload at a time; readers never wait

    @property
    def model(self) -> UpvoteModel:
        model = self._model
        if model is None:
            raise ModelNotLoaded(f"no model loaded from {self.models_dir}; train one first")
        return model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self, version: str = "latest") -> tuple[str | None, str]:
        """Load ``version`` fully, check it answers, then swap it in; on any error keep the old."""
        with self._reload_lock:
            new = upvote.load_model(version, registry_dir=self.models_dir)
            check = new.predict_records([PROBE])
            if len(check) != 1 or not math.isfinite(check[0]["predicted_score"]):
                raise ValueError(f"model {new.version} gives no score for the probe story")
            previous = self._model.version if self._model is not None else None
            self._model = new
            log.info("serving model %s (was %s)", new.version, previous)
            return previous, new.version
