"""Corpora: read documents from text / Parquet / SQL, encode them once into memory-mapped id shards.

On disk (the contract other stages rely on), a directory with
    vocab.tsv         word<TAB>count, id order = count descending
    shards/00000.npy  int32 token ids, out-of-vocabulary tokens dropped, -1 between documents
    meta.json         {"n_tokens", "n_documents", "n_shards", "min_count", "max_vocab", ...}
Training streams the shards through np.load(mmap_mode="r"), so memory does not grow with the corpus.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from upvote.embeddings.encode import CorpusError, encode_ids, fast_mode, scan_batches, scan_lines
from upvote.embeddings.vocab import PRUNE_AT, Vocab
from upvote.redact import redact

PARQUET_SUFFIXES = (".parquet", ".pq")
TABLE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl")  # text, but not one document per line
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 64 * 1024  # how much of a corpus file is checked for binary content
PSEUDO_DOCUMENT_WORDS = 10_000  # a text8-style single line is cut into documents this long (gensim)
READ_CHUNK_CHARS = 1 << 20  # iter_documents reads text this many characters at a time
READ_CHUNK_BYTES = 1 << 20  # encoding reads text files this many bytes at a time
BATCH_DOCUMENTS = 8192  # strings or token lists handed to the encoder at once
SHARD_TOKENS = 10_000_000
ASCII_SPACE = b" \n\t\r\x0b\x0c\x1c\x1d\x1e\x1f"

Tokenize = Callable[[str], list[str]]


def _open_text(path: Path, gzipped: bool) -> io.TextIOBase:
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _binary_reason(data: bytes) -> str | None:
    """Why ``data`` (the start of a file) is not UTF-8 text, or None when it is."""
    nul = data.find(b"\0")
    if nul >= 0:
        return f"a NUL byte at offset {nul}"
    try:  # incremental: a character cut by the end of the sample is not an error
        codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
    except UnicodeDecodeError as error:
        return f"invalid UTF-8 at offset {error.start}"
    return None


def sniff(path: Path) -> str:
    """What a corpus file holds, by its content rather than its name: "parquet", "gzip" (gzip
    compressed UTF-8 text) or "text" (UTF-8 text). A binary file (NUL bytes or invalid UTF-8 in
    the first SNIFF_BYTES, compressed or not) is a CorpusError naming the file."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    kind, sample = "text", head
    if head.startswith(GZIP_MAGIC):
        kind = "gzip"
        try:
            with gzip.open(path, "rb") as f:
                sample = f.read(SNIFF_BYTES)
        except (OSError, EOFError, zlib.error) as error:
            raise CorpusError(f"{path}: a corrupt gzip file ({error})") from None
    reason = _binary_reason(sample)
    if reason is not None:
        what = "its decompressed content" if kind == "gzip" else "it"
        raise CorpusError(
            f"{path}: not a text corpus ({what} has {reason}); expected UTF-8 text, "
            "gzip-compressed UTF-8 text or a Parquet file"
        )
    return kind


def _iter_text_file(path: Path, gzipped: bool) -> Iterator[str]:
    """One document per line; a line longer than PSEUDO_DOCUMENT_WORDS words (text8) is cut into
    pseudo-documents of that many words, reading in bounded chunks (never the whole line)."""
    with _open_text(path, gzipped) as f:
        words: list[str] = []
        tail = ""  # a word cut by the chunk boundary
        while chunk := f.read(READ_CHUNK_CHARS):
            lines = (tail + chunk).split("\n")
            tail = lines.pop()  # unfinished line (possibly the whole text8 chunk)
            for line in lines:
                words.extend(line.split())
                yield from _flush(words, final=True)
            # keep the last, possibly partial, word of the unfinished line for the next chunk
            head, sep, tail = tail.rpartition(" ")
            if sep:
                words.extend(head.split())
                yield from _flush(words, final=False)
        words.extend(tail.split())
        yield from _flush(words, final=True)


def _flush(words: list[str], final: bool) -> Iterator[str]:
    """Yield full pseudo-documents from the word buffer (and the remainder when final)."""
    while len(words) >= PSEUDO_DOCUMENT_WORDS:
        yield " ".join(words[:PSEUDO_DOCUMENT_WORDS])
        del words[:PSEUDO_DOCUMENT_WORDS]
    if final and words:
        yield " ".join(words)
        words.clear()


def _byte_chunks(path: Path, gzipped: bool) -> Iterator[bytes]:
    """The raw bytes of a text file, about READ_CHUNK_BYTES at a time, each chunk cut after its
    last ASCII whitespace byte so that no word or UTF-8 character straddles two chunks."""
    with gzip.open(path, "rb") if gzipped else open(path, "rb") as f:
        tail = b""
        while block := f.read(READ_CHUNK_BYTES):
            data = tail + block if tail else block
            cut = max(data.rfind(space) for space in ASCII_SPACE) + 1
            if cut == 0:  # no whitespace yet: one long word, read on
                tail = data
                continue
            tail = data[cut:]
            yield data[:cut]
        if tail:
            yield tail


def _parquet_column(path: Path, column: str | None) -> str:
    """The text column: the one asked for, else `title`, else `text`; a clear error otherwise."""
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    if column is None:
        column = next((name for name in ("title", "text") if name in names), None)
        if column is None:
            raise CorpusError(f"{path}: no title/text column; choose one with --column ({names})")
    elif column not in names:
        raise CorpusError(f"{path}: no column {column!r} (columns: {names})")
    return column


def _parquet_batches(path: Path, column: str) -> Iterator:
    """The non-empty texts of the column, as Arrow string arrays of up to 65,536 rows."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(columns=[column], batch_size=65_536):
        texts = batch.column(0)
        yield texts.filter(pc.fill_null(pc.greater(pc.binary_length(texts), 0), False))


def _iter_parquet(path: Path, column: str) -> Iterator[str]:
    for texts in _parquet_batches(path, column):
        yield from texts.to_pylist()


def _iter_sql(dsn: str, query: str) -> Iterator[str]:
    """First column of each row of the query, streamed through a server-side cursor.

    The query runs in a READ ONLY transaction (a query that writes, even through a function, is
    refused by the server) with the data layer's lock and statement timeouts
    (``UPVOTE_PG_LOCK_TIMEOUT``, ``UPVOTE_PG_STATEMENT_TIMEOUT``). Errors never show the password.
    """
    import psycopg

    from upvote.data.files import DataError
    from upvote.data.sources import set_timeouts, timeout_message

    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            conn.execute("SET TRANSACTION READ ONLY")
            set_timeouts(conn)
            with conn.cursor(name="upvote_corpus") as cursor:
                cursor.itersize = 10_000
                cursor.execute(query)
                for row in cursor:
                    if row[0]:
                        yield str(row[0])
    except DataError as error:  # a bad timeout setting
        raise CorpusError(str(error)) from None
    except psycopg.Error as error:
        why = timeout_message(error) or str(error).strip()
        raise CorpusError(redact(f"SQL corpus failed: {why}", dsn)) from None


class _Spool:
    """The documents of an SQL corpus, kept in an anonymous temporary file (one JSON string per
    line) while they are first streamed from the server: counting words, training a tokenizer
    and encoding then read the file, and the query runs once, not once per pass."""

    def __init__(self, dsn: str, query: str) -> None:
        self.dsn, self.query = dsn, query
        self.file: io.TextIOBase | None = None  # complete spool, once a pass has finished

    def __iter__(self) -> Iterator[str]:
        if self.file is not None:
            self.file.seek(0)
            for line in self.file:
                yield json.loads(line)
            return
        spool = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (kept open)
        try:
            for document in _iter_sql(self.dsn, self.query):
                spool.write(json.dumps(document) + "\n")
                yield document
        except BaseException:
            spool.close()
            raise
        if self.file is None:  # a pass that stopped early leaves no spool: the next one streams
            self.file = spool
        else:
            spool.close()


@dataclass
class Documents:
    """A re-iterable stream of documents (strings): counting and encoding each take one pass."""

    source: str | Path
    column: str | None = None
    query: str | None = None

    kind: str = field(default="sql", init=False)  # "sql", "parquet", "gzip" or "text"
    _spool: _Spool | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.query is not None:
            self._spool = _Spool(str(self.source), self.query)
            return
        path = Path(self.source)
        if not path.exists():
            raise CorpusError(f"corpus not found: {path}")
        if not path.is_file() or path.suffix.lower() in TABLE_SUFFIXES:
            raise CorpusError(
                f"unknown corpus type: {path} (expected a UTF-8 text file, plain or gzip, a "
                "Parquet file, an encoded corpus directory or --query with a database URL)"
            )
        self.kind = sniff(path)  # the content decides, not the name (text8 has no suffix)
        if path.name.endswith(PARQUET_SUFFIXES) and self.kind != "parquet":
            raise CorpusError(f"{path}: not a Parquet file (no PAR1 magic bytes)")
        if self.kind == "parquet":
            self.column = _parquet_column(path, self.column)

    def __iter__(self) -> Iterator[str]:
        if self._spool is not None:
            return iter(self._spool)
        path = Path(self.source)
        if self.kind == "parquet":
            return _iter_parquet(path, self.column)
        return _iter_text_file(path, gzipped=self.kind == "gzip")

    def byte_chunks(self) -> Iterator[bytes] | None:
        """A text file's raw bytes in chunks cut after whitespace; None for other corpora."""
        if self.kind not in ("text", "gzip"):
            return None
        return _byte_chunks(Path(self.source), gzipped=self.kind == "gzip")

    def batches(self) -> Iterator:
        """The documents in batches: Arrow string arrays (Parquet) or lists of strings."""
        if self.kind == "parquet":
            return _parquet_batches(Path(self.source), self.column)
        return _batched(self)


def _batched(documents: Iterable) -> Iterator[list]:
    batch: list = []
    for document in documents:
        batch.append(document)
        if len(batch) == BATCH_DOCUMENTS:
            yield batch
            batch = []
    if batch:
        yield batch


def iter_documents(
    source: str | Path, column: str | None = None, query: str | None = None
) -> Documents:
    """Documents of a text file (plain or gzip, told apart by content), a Parquet column, or an
    SQL query (source = DSN)."""
    return Documents(source, column, query)


@dataclass
class EncodedCorpus:
    """A corpus encoded as int32 id shards; see the module docstring for the layout."""

    directory: Path
    vocab: Vocab
    meta: dict

    @property
    def n_tokens(self) -> int:
        return int(self.meta["n_tokens"])

    def shard_paths(self) -> list[Path]:
        return sorted((self.directory / "shards").glob("*.npy"))

    def shards(self) -> Iterator[np.ndarray]:
        """Memory-mapped shards, one at a time."""
        for path in self.shard_paths():
            yield np.load(path, mmap_mode="r")

    @classmethod
    def open(cls, directory: str | Path) -> EncodedCorpus:
        directory = Path(directory)
        if not (directory / "meta.json").exists():
            raise CorpusError(f"not an encoded corpus (no meta.json): {directory}")
        meta = json.loads((directory / "meta.json").read_text())
        return cls(directory, Vocab.load(directory / "vocab.tsv"), meta)


def encode_corpus(
    documents: Iterable,
    out_dir: str | Path,
    *,
    vocab: Vocab | None = None,
    min_count: int = 5,
    max_vocab: int | None = None,
    tokenize: Tokenize | None = None,
    shard_tokens: int = SHARD_TOKENS,
) -> EncodedCorpus:
    """Encode documents (strings or token lists) into out_dir, counting words unless vocab is
    given. encode.py has how (one read of the corpus, two when the word table was pruned).

    documents must be re-iterable (a list, `iter_documents(...)`), not a one-shot generator.
    Strings are split by `tokenize` (default: whitespace, str.split()); a WordTokenizer (or its
    tokenize method) and the whitespace split run in numba kernels, a tokenizer with
    tokenize_batch (SentencePiece) gets batches, any other callable one document at a time.
    """
    if vocab is None and iter(documents) is documents:
        raise TypeError(
            "documents must be re-iterable (a list or iter_documents(...)), not a generator"
        )
    mode = fast_mode(tokenize)

    def scan(table):
        chunks = documents.byte_chunks() if isinstance(documents, Documents) and mode else None
        if chunks is not None:  # a text file: lines and pseudo-documents found by the kernel
            return scan_lines(chunks, mode == "word", PSEUDO_DOCUMENT_WORDS, table)
        batches = documents.batches() if isinstance(documents, Documents) else _batched(documents)
        return scan_batches(batches, tokenize, table)

    out_dir = Path(out_dir)
    shard_dir = out_dir / "shards"
    if shard_dir.exists():
        shutil.rmtree(shard_dir)
    shard_dir.mkdir(parents=True)
    vocab, shards = encode_ids(
        scan, out_dir, vocab=vocab, min_count=min_count,
        max_vocab=max_vocab, shard_tokens=shard_tokens, prune_at=PRUNE_AT,
    )  # fmt: skip
    if shards.n_tokens == 0:
        raise CorpusError("the corpus is empty: no in-vocabulary tokens found")
    vocab.save(out_dir / "vocab.tsv")
    meta = {
        "n_tokens": shards.n_tokens,
        "n_documents": shards.n_documents,
        "n_shards": shards.n_shards,
        "vocab_size": len(vocab),
        "min_count": min_count,
        "max_vocab": max_vocab,
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    return EncodedCorpus(out_dir, vocab, meta)
