"""`upvote embed train`'s checks of its options, made before anything is read or allocated: a
mistake costs one line, not a crash minutes into a run."""

from __future__ import annotations

import os

from upvote.console import fail, warn
from upvote.embeddings.engines.common import format_bytes, memory_bytes
from upvote.embeddings.params import Word2VecParams

MAX_USUAL_ALPHA = 1.0  # word2vec's start rates are 0.025 (skip-gram) and 0.05 (CBOW)
MAX_USUAL_NEGATIVE = 50  # word2vec.c suggests 5-20 (2-5 for large corpora)


def warn_unusual(params: Word2VecParams) -> None:
    """One line on stderr per option far outside its useful range (training still runs)."""
    if params.alpha is not None and params.alpha > MAX_USUAL_ALPHA:
        warn(
            f"--alpha {params.alpha:g} is far above word2vec's usual start rates (0.025 "
            "skip-gram, 0.05 CBOW): training will likely diverge"
        )
    if params.negative > MAX_USUAL_NEGATIVE:
        warn(
            f"--negative {params.negative} is far above the usual 5-20 noise words per example: "
            f"each example costs {params.negative + 1} dot products and rare words drown"
        )


def check_sizes(params: Word2VecParams, vocab_size: int, world: int, model_parallel: int) -> None:
    """Refuse, before anything is allocated, a model that cannot fit in memory or a number of
    noise words the vocabulary cannot supply."""
    if params.negative >= vocab_size:
        fail(
            f"--negative {params.negative} draws at least as many noise words per example as the "
            f"vocabulary has words ({vocab_size:,}): use a much smaller --negative (usual: 5-20)"
        )
    matrices = 1 + (params.negative > 0) + params.hs
    local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world))) if world > 1 else 1
    width = params.vector_size // model_parallel if world > 1 else params.vector_size
    need = vocab_size * width * 4 * matrices * local
    have = memory_bytes()
    if need > have:
        ranks = f" per rank x {local} ranks on this machine" if local > 1 else ""
        fail(
            f"--dim {params.vector_size} needs {format_bytes(need)} ({vocab_size:,} words x "
            f"{width:,} dims x 4 bytes x {matrices} matrices{ranks}), more than this machine's "
            f"{format_bytes(have)} of memory: lower --dim (or shrink the vocabulary with "
            "--min-count or --max-vocab)"
        )
