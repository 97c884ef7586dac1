"""A SentencePiece unigram tokenizer trained in memory on an iterable of texts."""

import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import sentencepiece as spm

MODEL_FILE = "tokenizer.model"
META_FILE = "tokenizer.json"
THREADED_BATCH = 256  # from this many texts on, encode in C++ threads (measured crossover)
# SentencePiece silently skips training "sentences" longer than max_sentence_length (4,192 bytes):
# a one-line corpus such as text8 would train on almost nothing. Longer texts are cut at spaces
# into pieces of at most this many UTF-8 bytes.
MAX_SENTENCE_BYTES = 2048  # well below the limit: normalisation may grow a text
DEFAULT_VOCAB_SIZE = 8000  # an upper bound (hard_vocab_limit=False); every CLI defaults to it


def bounded_pieces(text: str, limit: int = MAX_SENTENCE_BYTES) -> Iterator[str]:
    """``text`` cut at whitespace into pieces of at most ``limit`` UTF-8 bytes (a single word
    longer than that is cut between characters)."""
    if len(text) * 4 <= limit or len(text.encode()) <= limit:  # UTF-8: at most 4 bytes a char
        yield text
        return
    words: list[str] = []
    size = 0
    for word in text.split():
        n = len(word.encode())
        if n > limit:  # a pathological "word": cut it between characters
            if words:
                yield " ".join(words)
                words, size = [], 0
            step = limit // 4
            yield from (word[i : i + step] for i in range(0, len(word), step))
            continue
        if words and size + 1 + n > limit:
            yield " ".join(words)
            words, size = [], 0
        size += n + (1 if words else 0)
        words.append(word)
    if words:
        yield " ".join(words)


class SentencePieceTokenizer:
    """Unigram SentencePiece model. Pieces (strings) are the tokens our word2vec vectors are for.

    >>> tok = SentencePieceTokenizer.train(titles)
    >>> tok.tokenize("Show HN: my new database")
    ['▁Show', '▁HN', ':', '▁my', '▁new', '▁database']
    """

    def __init__(self, model_proto: bytes, meta: dict | None = None) -> None:
        self.model_proto = model_proto
        self.meta = meta or {}
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = DEFAULT_VOCAB_SIZE,
        model_type: str = "unigram",
        character_coverage: float = 0.9995,
        max_sentences: int = 2_000_000,
    ) -> "SentencePieceTokenizer":
        """Learn the pieces from ``texts`` (empty/None entries are skipped).

        ``hard_vocab_limit=False`` makes ``vocab_size`` an upper bound, so a tiny corpus (a test, a
        first pull) still trains instead of failing with "vocab size too large". A text longer
        than MAX_SENTENCE_BYTES (a text8-style one-line corpus) is cut at spaces into pieces that
        SentencePiece does not skip (``bounded_pieces``).
        """
        count = 0

        def sentences() -> Iterator[str]:
            nonlocal count
            for text in texts:
                if isinstance(text, str) and text.strip():
                    count += 1
                    yield from bounded_pieces(text.replace("\n", " "))

        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=sentences(),
                model_writer=model,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
                hard_vocab_limit=False,
                input_sentence_size=max_sentences,
                shuffle_input_sentence=True,
                num_threads=2,
                minloglevel=2,
            )
        except RuntimeError as err:
            if count == 0:
                raise ValueError("cannot train a tokenizer on an empty corpus") from err
            raise
        meta = {"vocab_size": vocab_size, "model_type": model_type, "trained_on": count}
        return cls(model.getvalue(), meta)

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def tokenize(self, text: str) -> list[str]:
        return self.sp.encode(text, out_type=str)

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text, out_type=int)

    def tokenize_batch(self, texts: list[str]) -> list[list[str]]:
        """Many texts at once (see ``encode_batch``)."""
        return self._batch(list(texts), str)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Many texts at once: a big batch runs in 2 C++ threads, a small one in this thread.

        SentencePiece starts its threads on every batch call, which costs more CPU than encoding
        a title: below ``THREADED_BATCH`` texts (the service's batches) one by one is cheaper.
        """
        return self._batch(list(texts), int)

    def _batch(self, texts: list[str], out_type: type) -> list[list]:
        if len(texts) < THREADED_BATCH:
            return [self.sp.encode(text, out_type=out_type) for text in texts]
        return self.sp.encode(texts, out_type=out_type, num_threads=2)

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode(ids)

    def id_to_piece(self, index: int) -> str:
        return self.sp.id_to_piece(index)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MODEL_FILE).write_bytes(self.model_proto)
        (directory / META_FILE).write_text(json.dumps(self.meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "SentencePieceTokenizer":
        directory = Path(directory)
        model_path = directory / MODEL_FILE
        if not model_path.is_file():
            raise FileNotFoundError(f"no tokenizer in {directory} (missing {MODEL_FILE})")
        meta_path = directory / META_FILE
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        return cls(model_path.read_bytes(), meta)
