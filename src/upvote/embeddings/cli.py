"""`upvote embed train|evaluate`: train word2vec on a corpus, score vectors on standard sets."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import replace
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from upvote.console import fail
from upvote.embeddings.checks import check_sizes, warn_unusual
from upvote.embeddings.corpus import EncodedCorpus, encode_corpus, iter_documents
from upvote.embeddings.encode import CorpusError
from upvote.embeddings.engines.common import ProgressBar
from upvote.embeddings.params import Word2VecParams
from upvote.embeddings.vectors import KeyedVectors
from upvote.embeddings.vocab import EmptyVocabularyError
from upvote.redact import redact
from upvote.tokenizer.sentencepiece import DEFAULT_VOCAB_SIZE
from upvote.tracking.client import Tracking
from upvote.tracking.records import Curve
from upvote.tracking.runs import embedding_run

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()
DEFAULTS = Word2VecParams()  # `embed train`'s defaults: an option left out keeps its value here


class TokenizerName(StrEnum):
    word = "word"
    sentencepiece = "sentencepiece"


class ModelName(StrEnum):
    sg = "sg"
    cbow = "cbow"


class Device(StrEnum):
    cpu = "cpu"
    cuda = "cuda"


class _Created:
    """What a run creates under --out, removed again when the run fails: a failed run leaves no
    empty or half-written folders, but keeps checkpoints (--resume continues from them)."""

    KEEP = ("checkpoint.npz", "checkpoint-gpu.pt", "checkpoints")

    def __init__(self, out: Path) -> None:
        self.out = out
        self.before = set(out.iterdir()) if out.is_dir() else None
        self.parents = [p for p in reversed(out.parents) if not p.exists()]

    def remove(self) -> None:
        if not self.out.is_dir():
            return
        for path in set(self.out.iterdir()) - (self.before or set()):
            if path.name in self.KEEP:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if self.before is None:
            for directory in [self.out, *reversed(self.parents)]:
                try:
                    directory.rmdir()  # only when empty: kept checkpoints stay
                except OSError:
                    break


def _tokenize_function(
    tokenizer: TokenizerName, documents, out: Path, vocab_size: int | None, resume
):
    """The tokenize callable; a SentencePiece model is trained on the corpus and kept in out."""
    from upvote.tokenizer.sentencepiece import SentencePieceTokenizer
    from upvote.tokenizer.word import WordTokenizer

    if tokenizer is TokenizerName.word:
        return WordTokenizer().tokenize
    model_dir = out / "tokenizer"
    if resume and model_dir.is_dir():
        return SentencePieceTokenizer.load(model_dir).tokenize
    vocab_size = vocab_size or DEFAULT_VOCAB_SIZE
    console.print(f"training a SentencePiece tokenizer (vocab_size={vocab_size}) ...")
    model = SentencePieceTokenizer.train(documents, vocab_size=vocab_size)
    model.save(model_dir)
    return model.tokenize


@app.command()
def train(
    corpus: str = typer.Argument(
        ...,
        help="UTF-8 text file (plain or gzip: told by content, so text8 needs no suffix), "
        "Parquet file, a database URL with --query, or an encoded "
        "corpus directory (a previous run's OUT/corpus) to skip encoding.",
    ),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    tokenizer: TokenizerName = typer.Option(TokenizerName.word, help="Word splitter."),
    model: ModelName = typer.Option(
        None, help=f"Skip-gram or CBOW (default: {'sg' if DEFAULTS.sg else 'cbow'})."
    ),
    dim: int = typer.Option(None, min=1, help=f"Vector size (default: {DEFAULTS.vector_size})."),
    window: int = typer.Option(
        None, min=1, help=f"Maximum context window (default: {DEFAULTS.window})."
    ),
    negative: int = typer.Option(
        None,
        min=0,
        help=f"Noise words per example (0: off, with --hs; default: {DEFAULTS.negative}).",
    ),
    hs: bool = typer.Option(
        None,
        "--hs/--no-hs",
        help="Hierarchical softmax (CPU; with or without NS) "
        f"(default: {'on' if DEFAULTS.hs else 'off'}).",
    ),
    min_count: int = typer.Option(
        None, min=1, help=f"Drop words rarer than this (default: {DEFAULTS.min_count})."
    ),
    max_vocab: int | None = typer.Option(None, min=1, help="Keep at most this many words."),
    sample: float = typer.Option(
        None, min=0.0, help=f"Sub-sampling threshold (0: off; default: {DEFAULTS.sample})."
    ),
    epochs: int = typer.Option(
        None, min=1, help=f"Passes over the corpus (default: {DEFAULTS.epochs})."
    ),
    threads: int = typer.Option(
        None,
        min=1,
        help="Worker threads (CPU); per rank under torchrun with --model-parallel 1 "
        f"(default: {DEFAULTS.threads}).",
    ),
    device: Device = typer.Option(None, help=f"Where to train (default: {DEFAULTS.device})."),
    alpha: float | None = typer.Option(None, min=0.0, help="Start learning rate."),
    seed: int = typer.Option(None, help=f"Random seed (default: {DEFAULTS.seed})."),
    resume: bool = typer.Option(False, help="Continue from the checkpoint in --out."),
    column: str | None = typer.Option(None, help="Parquet text column (default title/text)."),
    query: str | None = typer.Option(None, help="SQL query whose first column is the text."),
    vocab_size: int = typer.Option(
        None, min=10, help=f"SentencePiece vocabulary size (default: {DEFAULT_VOCAB_SIZE})."
    ),
    model_parallel: int | None = typer.Option(
        None, min=1, help="Under torchrun: ranks per model group (default: all)."
    ),
) -> None:
    """Train word2vec; leaves OUT/vectors.txt (word2vec text), OUT/vectors.npz, OUT/params.json.

    Under torchrun (several processes) it trains with upvote.embeddings.distributed instead.
    Every option left out keeps its default from Word2VecParams.
    """
    # the engines load numba (word2vec) or torch (distributed): only `train` pays for them
    from upvote.embeddings.word2vec import train as train_vectors

    def given(**values):
        return {k: v for k, v in values.items() if v is not None}

    params = replace(
        DEFAULTS,
        **given(
            sg=None if model is None else model is ModelName.sg,
            vector_size=dim,
            window=window,
            negative=negative,
            hs=hs,
            min_count=min_count,
            max_vocab=max_vocab,
            sample=sample,
            epochs=epochs,
            alpha=alpha,
            threads=threads,
            seed=seed,
            device=None if device is None else device.value,
        ),
    )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    distributed = world > 1  # started by torchrun
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        warn_unusual(params)
    if distributed and tokenizer is TokenizerName.sentencepiece:
        fail("under torchrun use --tokenizer word (each rank would train its own SentencePiece)")
    created = _Created(out)
    out.mkdir(parents=True, exist_ok=True)
    # MLflow connects in the background while the corpus is encoded (rank 0 alone logs)
    tracking = Tracking("upvote-embed", say=_say) if rank == 0 else None
    started, clock = time.time(), time.perf_counter()
    seconds: dict[str, float] = {}
    # under torchrun every rank encodes its own copy (deterministic, so identical): no shared
    # file system or barrier needed before the process group exists
    encoded_dir = out / "corpus" / f"rank{rank}" if distributed else out / "corpus"
    try:
        if distributed:
            from upvote.embeddings.distributed import check_layout  # torch: see above

            check_layout(world, model_parallel or world, params.vector_size)
        if (Path(corpus) / "meta.json").exists():  # already encoded, e.g. on shared storage
            encoded = EncodedCorpus.open(corpus)
        elif resume and (encoded_dir / "meta.json").exists():
            encoded = EncodedCorpus.open(encoded_dir)
        else:
            documents = iter_documents(corpus, column=column, query=query)
            tokenize = _tokenize_function(tokenizer, documents, out, vocab_size, resume)
            console.print(f"encoding {redact(corpus, corpus)} ...")  # a DSN with --query
            encoded = encode_corpus(
                documents,
                encoded_dir,
                min_count=params.min_count,
                max_vocab=params.max_vocab,
                tokenize=tokenize,
            )
        seconds["encode"] = time.perf_counter() - clock
        console.print(
            f"{encoded.n_tokens:,} tokens, {len(encoded.vocab):,} words in the vocabulary"
        )
        check_sizes(params, len(encoded.vocab), world, model_parallel or world)
        if distributed:
            from upvote.embeddings.distributed import describe_plan, train_distributed

            if rank == 0:
                local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
                for line in describe_plan(
                    world, model_parallel or world, params, len(encoded.vocab), local
                ):
                    console.print(line, soft_wrap=True, highlight=False)
            curve = Curve()
            with ProgressBar(
                [rank == 0, curve], encoded.n_tokens * params.epochs
            ) as progress:  # fmt: skip
                stats = train_distributed(
                    encoded, params, out, progress if rank == 0 else None,
                    model_parallel=model_parallel, resume=resume,
                )  # fmt: skip
            if rank == 0:
                (out / "params.json").write_text(json.dumps(params.to_dict(), indent=2))
                per_example = stats["loss"] / (1 + params.negative)
                console.print(
                    f"last epoch's loss {stats['loss']:.4f} per pair (rank 0's replica), "
                    f"~{per_example:.4f} per logistic example (the single process's scale)",
                    soft_wrap=True, highlight=False,
                )  # fmt: skip
                console.print(
                    f"wrote {out / 'vectors.txt'} and {out / 'vectors.npz'} "
                    f"({len(encoded.vocab):,} x {params.vector_size})"
                )
                seconds["train"] = time.perf_counter() - clock - seconds["encode"]
                run = embedding_run(
                    params.to_dict() | {"world_size": world}, out, redact(corpus, corpus),
                    tokenizer.value, _sizes(encoded), seconds, curve, started,
                )  # fmt: skip
                _report(tracking, run)
            return
        curve = Curve()
        vectors = train_vectors(
            encoded, params, checkpoint_dir=out, resume=resume, progress=[True, curve]
        )
        seconds["train"] = time.perf_counter() - clock - seconds["encode"]
    except typer.Exit:  # a _fail above (click's Exit is a RuntimeError: catch it first)
        created.remove()
        raise
    except (CorpusError, EmptyVocabularyError, ValueError, RuntimeError) as error:
        created.remove()
        fail(redact(str(error), corpus))
    vectors.save_word2vec_format(out / "vectors.txt")
    vectors.save(out / "vectors.npz")
    (out / "params.json").write_text(json.dumps(params.to_dict(), indent=2))
    seconds["write"] = time.perf_counter() - clock - seconds["encode"] - seconds["train"]
    console.print(f"wrote {out / 'vectors.txt'} ({len(vectors):,} x {vectors.vector_size})")
    run = embedding_run(
        params.to_dict(), out, redact(corpus, corpus), tokenizer.value, _sizes(encoded),
        seconds, curve, started,
    )  # fmt: skip
    _report(tracking, run)


def _say(message: str) -> None:
    console.print(message, soft_wrap=True, highlight=False)


def _sizes(encoded: EncodedCorpus) -> dict[str, float]:
    return {"tokens": encoded.n_tokens, "vocabulary": len(encoded.vocab)}


def _report(tracking: Tracking | None, run) -> None:
    """Log the run in MLflow; say where (or, once, why not)."""
    run_id = tracking.log_run(run) if tracking is not None else None
    if run_id is not None:
        _say(f"tracked: MLflow run {run_id} in {tracking.where} (browse: upvote ui)")


def load_vectors(path: Path) -> KeyedVectors:
    """Native .npz, word2vec binary (.bin) or word2vec text (anything else)."""
    if not path.exists():
        raise FileNotFoundError(f"vectors not found: {path}")
    if path.suffix == ".npz":
        return KeyedVectors.load(path)
    return KeyedVectors.load_word2vec_format(path, binary=path.suffix == ".bin")


@app.command()
def evaluate(
    vectors: Path = typer.Argument(..., help="vectors.txt / .bin (word2vec) or vectors.npz."),
    analogies: list[Path] = typer.Option([], help="questions-words style file(s)."),
    similarity: list[Path] = typer.Option([], help="Word-pair similarity file(s) (WS-353...)."),
    standard: list[str] = typer.Option(
        [], help="A shipped standard set (repeatable): analogy, wordsim353, simlex999."
    ),
    restrict_vocab: int = typer.Option(30_000, min=1, help="Analogies: most frequent N words."),
    method: str = typer.Option("3cosadd", help="Analogy method: 3cosadd or 3cosmul."),
) -> None:
    """Analogy accuracy and word-similarity Spearman, with coverage."""
    from upvote.embeddings.evaluate import (
        STANDARD_SETS,
        evaluate_analogies,
        evaluate_similarity,
        standard_set,
    )

    if not analogies and not similarity and not standard:
        fail("give at least one --analogies or --similarity file or a --standard set")
    unknown = [name for name in standard if name not in STANDARD_SETS]
    if unknown:
        fail(f"--standard: unknown set(s) {', '.join(unknown)}; use {', '.join(STANDARD_SETS)}")
    for name in standard:
        kind = STANDARD_SETS[name][1]
        (analogies if kind == "analogy" else similarity).append(standard_set(name))
    try:
        kv = load_vectors(vectors)
        table = Table("set", "metric", "score", "coverage", "n")
        for path in analogies:
            result = evaluate_analogies(kv, path, restrict_vocab, method)
            for name, (correct, total) in result.sections.items():
                score = f"{correct / total:.4f}" if total else "-"
                table.add_row(f"  {name}", "accuracy", score, "", str(total))
            table.add_row(
                path.name, f"accuracy ({method})", f"{result.accuracy:.4f}",
                f"{result.coverage:.3f}", str(result.total),
            )  # fmt: skip
        for path in similarity:
            result = evaluate_similarity(kv, path)
            table.add_row(
                path.name, "spearman", f"{result.spearman:.4f}", f"{result.coverage:.3f}",
                str(result.pairs),
            )  # fmt: skip
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    console.print(table)
