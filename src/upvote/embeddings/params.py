"""Word2vec hyper-parameters in one place, shared by every engine (CPU, torch, distributed)."""

from dataclasses import asdict, dataclass
from typing import Literal


@dataclass(frozen=True)
class Word2VecParams:
    """The knobs of word2vec.c / gensim, with their usual defaults."""

    sg: bool = True  # skip-gram (True) or CBOW (False)
    vector_size: int = 100
    window: int = 5  # maximum window; the effective window is drawn uniformly in [1, window]
    negative: int = 5  # noise words per positive example
    hs: bool = False  # hierarchical softmax instead of negative sampling
    min_count: int = 5
    max_vocab: int | None = None
    sample: float = 1e-3  # sub-sampling threshold of frequent words (0 disables)
    epochs: int = 1
    alpha: float | None = None  # start learning rate; None: 0.025 for skip-gram, 0.05 for CBOW
    min_alpha: float = 1e-4
    ns_exponent: float = 0.75  # noise distribution: unigram counts ** ns_exponent
    cbow_mean: bool = True  # CBOW averages (True) or sums the context vectors
    threads: int = 2
    seed: int = 0
    device: Literal["cpu", "cuda"] = "cpu"

    @property
    def start_alpha(self) -> float:
        if self.alpha is not None:
            return self.alpha
        return 0.025 if self.sg else 0.05

    def to_dict(self) -> dict:
        return asdict(self)
