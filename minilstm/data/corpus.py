"""The ``Corpus`` container and the word <-> id conversions every data source shares.

A language model never sees words, only integer ids: row ``i`` of the
embedding matrix belongs to ``vocab[i]``. A corpus is therefore just

- a vocabulary ``vocab`` (a list: id -> word), fixed once and for all, and
- three 1-D streams of ids: ``train``, ``valid`` and ``test``.

Sentence boundaries are not lost: they are the token ``<eos>``, an ordinary
word of the vocabulary that the model learns to predict like any other.

Because a trained model is only meaningful together with the exact vocabulary it
was trained with, ``vocab_hash`` gives a short fingerprint of a vocabulary that
checkpoints can store and compare.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..choices import SPLITS  # noqa: F401  (the split names, defined once; re-exported as data.corpus.SPLITS)


class DataError(ValueError):
    """Any problem with the data: missing, damaged, or not in the expected format.

    The message always says what went wrong *and* what to do about it, because
    it is shown to the user as is (the CLI prints it and exits with status 1).
    """


@dataclass(eq=False, repr=False)
class Corpus:
    """A vocabulary and three token-id streams.

    name:        short name, "ptb" or "builtin"
    vocab:       list of words; ``vocab[i]`` is the word with id ``i``
    train, valid, test: 1-D ``np.int64`` arrays of ids, in reading order
    entropy:     for a synthetic corpus whose generator is known, the true
                 per-word entropy of each split in nats, e.g.
                 ``{"train": 1.7, "valid": 1.7, "test": 1.7}``; ``None`` for real
                 text, whose true distribution nobody knows
    description: one human-readable line about where the data comes from
    """

    name: str
    vocab: list[str]
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    entropy: dict | None = None
    description: str = ""

    def __post_init__(self):
        self.vocab = list(self.vocab)
        if len(set(self.vocab)) != len(self.vocab):
            raise DataError(f"corpus {self.name!r}: the vocabulary lists some word twice")
        for split in SPLITS:
            ids = np.asarray(getattr(self, split))
            if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
                raise DataError(f"corpus {self.name!r}: {split} must be a 1-D array of integer ids, "
                                f"got shape {ids.shape} and dtype {ids.dtype}")
            if ids.size and (ids.min() < 0 or ids.max() >= len(self.vocab)):
                raise DataError(f"corpus {self.name!r}: {split} holds ids outside [0, {len(self.vocab)})")
            setattr(self, split, ids.astype(np.int64, copy=False))

    @cached_property
    def word_to_id(self) -> dict[str, int]:
        """The inverse of ``vocab``: word -> id (computed once, then cached)."""
        return {w: i for i, w in enumerate(self.vocab)}

    @property
    def vocab_size(self) -> int:
        """V, the number of distinct words (the width of the softmax)."""
        return len(self.vocab)

    def best_perplexity(self, split: str = "valid") -> float | None:
        """exp(true entropy) of ``split``: the perplexity of the generator itself.

        No model can beat it (in expectation), so it is the floor to compare a
        trained model with. ``None`` when the true entropy is unknown (PTB).
        """
        if not self.entropy or split not in self.entropy:
            return None
        return math.exp(self.entropy[split])

    def __repr__(self):
        sizes = ", ".join(f"{s}={len(getattr(self, s)):,}" for s in SPLITS)
        return f"Corpus(name={self.name!r}, vocab_size={self.vocab_size:,}, {sizes} tokens)"


def vocab_hash(vocab: Sequence[str]) -> str:
    """A 16-hex-digit fingerprint of a vocabulary (order matters: ids are positions).

    sha256 of the words joined by newlines. Two vocabularies with the same hash
    map every id to the same word, so a checkpoint can refuse a corpus whose
    ids would mean different words than the ones it was trained on.
    """
    return hashlib.sha256("\n".join(vocab).encode("utf-8")).hexdigest()[:16]


def encode(words: Iterable[str] | str, word_to_id: Mapping[str, int]) -> np.ndarray:
    """Words -> 1-D ``np.int64`` array of ids. A string is split on whitespace first.

    Every word must be in the vocabulary: a language model has no row for a word
    it never saw. The error names the unknown words.
    """
    if isinstance(words, str):
        words = words.split()
    words = list(words)
    unknown = [w for w in dict.fromkeys(words) if w not in word_to_id]  # unique, in order
    if unknown:
        shown = ", ".join(repr(w) for w in unknown[:8]) + (", ..." if len(unknown) > 8 else "")
        hint = ""
        if "<unk>" in word_to_id:
            hint = (" This vocabulary (like Mikolov's Penn Treebank) writes every rare word as <unk>, "
                    "every number as N, in lower case and without punctuation: "
                    "replace the word(s) by <unk> or by a word of the vocabulary.")
        else:
            hint = " Use only words of the corpus's vocabulary."
        raise DataError(f"{len(unknown)} word(s) not in the vocabulary: {shown}.{hint}")
    return np.fromiter((word_to_id[w] for w in words), dtype=np.int64, count=len(words))


def decode(ids: Iterable[int], vocab: Sequence[str]) -> list[str]:
    """Ids -> list of words (the inverse of ``encode``)."""
    out = []
    for i in np.asarray(ids).ravel().tolist():
        if not 0 <= i < len(vocab):
            raise DataError(f"id {i} is outside the vocabulary [0, {len(vocab)}): "
                            "were these ids produced with another corpus?")
        out.append(vocab[i])
    return out
