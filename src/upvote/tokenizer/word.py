"""text8-style word tokenizer: lower case, digits spelled out, only a-z, split on whitespace."""

import re

_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_NON_LETTERS = re.compile(r"[^a-z]+")


class WordTokenizer:
    """Normalise text exactly like Mahoney's text8 (the Wikipedia corpus) and split it into words.

    Using the same normalisation for titles and Wikipedia is what lets vectors learned on one
    corpus be looked up with tokens from the other. Corpus encoding applies the same rules to
    UTF-8 bytes in a numba kernel (embeddings/encode_kernels.py split_text), without a Python
    string per token; tests/model/test_corpus_encoding.py checks both agree on every Unicode
    character.
    """

    def normalize(self, text: str) -> str:
        text = text.lower()
        for digit, word in enumerate(_DIGITS):
            text = text.replace(str(digit), f" {word} ")
        return _NON_LETTERS.sub(" ", text).strip()

    def tokenize(self, text: str) -> list[str]:
        return self.normalize(text).split()
