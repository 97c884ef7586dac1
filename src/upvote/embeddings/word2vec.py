"""The gensim-style front door: `train(sentences, vector_size=100, sg=True, epochs=5)`.

It turns what the user has (token lists, a text file, an encoded corpus) into an encoded corpus
and hands it to an engine: the per-word numba engine on CPU (engines/cpu.py), the Triton engine
with `device="cuda"` (engines/gpu.py). The other front doors are distributed.py (torchrun) and
cli.py (`upvote embed`); engines never import a front door. docs/word2vec.md describes the
engines and why there are several.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from upvote.embeddings.corpus import EncodedCorpus, encode_corpus, iter_documents
from upvote.embeddings.engines.common import Progress, ProgressBar
from upvote.embeddings.engines.cpu import train_cpu
from upvote.embeddings.params import Word2VecParams
from upvote.embeddings.vectors import KeyedVectors
from upvote.tokenizer.word import WordTokenizer

GPU_CHECKPOINT = "checkpoint-gpu.pt"  # the Triton engine's own format (--device cuda)


def _resolve_params(params: Word2VecParams | None, overrides: dict) -> Word2VecParams:
    names = {f.name for f in fields(Word2VecParams)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"unknown word2vec parameter(s) {unknown}; known: {sorted(names)}")
    return replace(params or Word2VecParams(), **overrides)


def _as_encoded(corpus, params: Word2VecParams, workdir: Path) -> EncodedCorpus:
    """Encode a text file path or an iterable of token lists; pass an EncodedCorpus through."""
    if isinstance(corpus, EncodedCorpus):
        return corpus
    if isinstance(corpus, str | os.PathLike):
        documents: Iterable = iter_documents(corpus)
        tokenize = WordTokenizer().tokenize
    else:
        documents, tokenize = corpus, None
    return encode_corpus(
        documents,
        workdir,
        min_count=params.min_count,
        max_vocab=params.max_vocab,
        tokenize=tokenize,
    )


def train(
    corpus,
    params: Word2VecParams | None = None,
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool | Progress = False,
    on_checkpoint: Callable[[Path], None] | None = None,
    **overrides,
) -> KeyedVectors:
    """Train word2vec, gensim style: `train(sentences, vector_size=100, sg=True, epochs=5)`.

    corpus: an iterable of token lists (re-iterable, like gensim `sentences`), a text file path
    (text8 style), or an EncodedCorpus. checkpoint_dir: where a checkpoint is written after every
    epoch; resume=True continues from it. progress: True for a progress bar, a callback
    (words done, mean loss), or a list of both. on_checkpoint(path): called after each epoch's
    checkpoint is written, e.g. to copy it elsewhere (CPU engine only: engines/cpu.py
    train_cpu; the CUDA engine's checkpoints are its own).
    """
    params = _resolve_params(params, overrides)
    with tempfile.TemporaryDirectory(prefix="upvote-corpus-") as workdir:
        encoded = _as_encoded(corpus, params, Path(workdir))
        vocab = encoded.vocab
        if params.device == "cuda":
            syn0 = _train_gpu(encoded, params, checkpoint_dir, resume, progress)
        else:
            syn0 = train_cpu(encoded, params, checkpoint_dir, resume, progress, on_checkpoint)
    return KeyedVectors(vocab.words, syn0, vocab.counts)


def _train_gpu(
    corpus: EncodedCorpus,
    params: Word2VecParams,
    checkpoint_dir: str | Path | None,
    resume: bool,
    progress: bool | Progress,
) -> np.ndarray:
    """The Triton engine (engines/gpu.py): word2vec.c's per-word SGD in thousands of programs."""
    # torch and triton are imported only here: CPU training needs neither (torch is a heavy
    # import), and a machine without triton can still train on CPU
    from upvote.embeddings.engines.torch_common import resolve_device

    resolve_device(params.device)  # a clear error without a GPU, before triton is imported
    if params.hs or params.negative <= 0:
        raise ValueError("--device cuda does negative sampling only: negative > 0, no hs")
    try:
        from upvote.embeddings.engines.gpu import train_triton
    except ImportError as error:
        raise RuntimeError(f"--device cuda needs Triton (pip install triton): {error}") from None

    checkpoint = Path(checkpoint_dir) / GPU_CHECKPOINT if checkpoint_dir else None
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        if not resume:
            checkpoint.unlink(missing_ok=True)  # a fresh run: train_triton resumes from it
    with ProgressBar(progress, corpus.n_tokens * params.epochs) as callback:
        syn0, _ = train_triton(corpus, params, callback, checkpoint=checkpoint)
    return syn0
