"""`upvote embed train|evaluate`: train word2vec on a corpus, score vectors on standard sets."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from upvote.embeddings.corpus import CorpusError, EncodedCorpus, encode_corpus, iter_documents
from upvote.embeddings.engines.common import ProgressBar
from upvote.embeddings.params import Word2VecParams
from upvote.embeddings.vectors import KeyedVectors
from upvote.embeddings.vocab import EmptyVocabularyError

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()


class TokenizerName(StrEnum):
    word = "word"
    sentencepiece = "sentencepiece"


class ModelName(StrEnum):
    sg = "sg"
    cbow = "cbow"


class Device(StrEnum):
    cpu = "cpu"
    cuda = "cuda"


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


def _tokenize_function(tokenizer: TokenizerName, documents, out: Path, vocab_size: int, resume):
    """The tokenize callable; a SentencePiece model is trained on the corpus and kept in out."""
    from upvote.tokenizer import SentencePieceTokenizer, WordTokenizer

    if tokenizer is TokenizerName.word:
        return WordTokenizer().tokenize
    model_dir = out / "tokenizer"
    if resume and model_dir.is_dir():
        return SentencePieceTokenizer.load(model_dir).tokenize
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
    model: ModelName = typer.Option(ModelName.sg, help="Skip-gram or CBOW."),
    dim: int = typer.Option(100, min=1, help="Vector size."),
    window: int = typer.Option(5, min=1, help="Maximum context window."),
    negative: int = typer.Option(5, min=0, help="Noise words per example (0: off, with --hs)."),
    hs: bool = typer.Option(False, "--hs", help="Hierarchical softmax (CPU; with or without NS)."),
    min_count: int = typer.Option(5, min=1, help="Drop words rarer than this."),
    max_vocab: int | None = typer.Option(None, min=1, help="Keep at most this many words."),
    sample: float = typer.Option(1e-3, min=0.0, help="Sub-sampling threshold (0: off)."),
    epochs: int = typer.Option(1, min=1),
    threads: int = typer.Option(
        2, min=1, help="Worker threads (CPU); per rank under torchrun with --model-parallel 1."
    ),
    device: Device = typer.Option(Device.cpu),
    alpha: float | None = typer.Option(None, min=0.0, help="Start learning rate."),
    seed: int = typer.Option(0),
    resume: bool = typer.Option(False, help="Continue from the checkpoint in --out."),
    column: str | None = typer.Option(None, help="Parquet text column (default title/text)."),
    query: str | None = typer.Option(None, help="SQL query whose first column is the text."),
    vocab_size: int = typer.Option(8000, min=10, help="SentencePiece vocabulary size."),
    model_parallel: int | None = typer.Option(
        None, min=1, help="Under torchrun: ranks per model group (default: all)."
    ),
) -> None:
    """Train word2vec; leaves OUT/vectors.txt (word2vec text), OUT/vectors.npz, OUT/params.json.

    Under torchrun (several processes) it trains with upvote.embeddings.distributed instead.
    """
    # the engines load numba (word2vec) or torch (distributed): only `train` pays for them
    from upvote.embeddings.word2vec import train as train_vectors

    params = Word2VecParams(
        sg=model is ModelName.sg,
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
        device=device.value,
    )
    out.mkdir(parents=True, exist_ok=True)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1  # started by torchrun
    if distributed and tokenizer is TokenizerName.sentencepiece:
        _fail("under torchrun use --tokenizer word (each rank would train its own SentencePiece)")
    rank = int(os.environ.get("RANK", "0"))
    # under torchrun every rank encodes its own copy (deterministic, so identical): no shared
    # file system or barrier needed before the process group exists
    encoded_dir = out / "corpus" / f"rank{rank}" if distributed else out / "corpus"
    try:
        if (Path(corpus) / "meta.json").exists():  # already encoded, e.g. on shared storage
            encoded = EncodedCorpus.open(corpus)
        elif resume and (encoded_dir / "meta.json").exists():
            encoded = EncodedCorpus.open(encoded_dir)
        else:
            documents = iter_documents(corpus, column=column, query=query)
            tokenize = _tokenize_function(tokenizer, documents, out, vocab_size, resume)
            console.print(f"encoding {corpus} ...")
            encoded = encode_corpus(
                documents, encoded_dir, min_count=min_count, max_vocab=max_vocab, tokenize=tokenize
            )
        console.print(
            f"{encoded.n_tokens:,} tokens, {len(encoded.vocab):,} words in the vocabulary"
        )
        if distributed:
            from upvote.embeddings.distributed import train_distributed  # torch: see above

            with ProgressBar(rank == 0, encoded.n_tokens * epochs) as progress:
                train_distributed(
                    encoded, params, out, progress if rank == 0 else None,
                    model_parallel=model_parallel, resume=resume,
                )  # fmt: skip
            if rank == 0:
                (out / "params.json").write_text(json.dumps(params.to_dict(), indent=2))
            return
        vectors = train_vectors(encoded, params, checkpoint_dir=out, resume=resume, progress=True)
    except (CorpusError, EmptyVocabularyError, ValueError, RuntimeError) as error:
        _fail(str(error))
    vectors.save_word2vec_format(out / "vectors.txt")
    vectors.save(out / "vectors.npz")
    (out / "params.json").write_text(json.dumps(params.to_dict(), indent=2))
    console.print(f"wrote {out / 'vectors.txt'} ({len(vectors):,} x {vectors.vector_size})")


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
    restrict_vocab: int = typer.Option(30_000, min=1, help="Analogies: most frequent N words."),
    method: str = typer.Option("3cosadd", help="Analogy method: 3cosadd or 3cosmul."),
) -> None:
    """Analogy accuracy and word-similarity Spearman, with coverage."""
    from upvote.embeddings.evaluate import evaluate_analogies, evaluate_similarity

    if not analogies and not similarity:
        _fail("give at least one --analogies or --similarity file")
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
        _fail(str(error))
    console.print(table)
