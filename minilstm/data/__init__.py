"""Data: the corpora (Penn Treebank, a built-in synthetic corpus) and truncated-BPTT batching.

- ``corpus``:    the ``Corpus`` container, word <-> id conversion, ``DataError``
- ``ptb``:       Mikolov's Penn Treebank: find, download, verify, read
- ``synthetic``: a built-in corpus from a known grammar, with its true entropy
- ``batching``:  ``batchify`` and ``iterate_chunks``, as in the paper's code
- ``parallel``:  translation pairs: a built-in English->French corpus with its best perplexity, your files, batching

``load_corpus("ptb")`` or ``load_corpus("builtin")`` is all a training script needs.
"""

from .batching import batchify, iterate_chunks, num_chunks
from .corpus import Corpus, DataError, decode, encode, vocab_hash
from .ptb import download_ptb, find_ptb_dir, load_ptb
from .synthetic import make_builtin_corpus
from .parallel import ParallelCorpus, load_parallel, make_builtin_parallel

from ..choices import DATASETS  # the one list of dataset names


def load_corpus(name: str, data_dir=None, download: bool = True, verify: bool = True) -> Corpus:
    """The corpus called ``name``: "builtin" (generated, no files needed) or "ptb".

    ``data_dir``, ``download`` and ``verify`` are passed to ``load_ptb`` and
    ignored for the built-in corpus.
    """
    if name == "builtin":
        return make_builtin_corpus()
    if name == "ptb":
        return load_ptb(data_dir, download=download, verify=verify)
    raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")


__all__ = [
    "Corpus", "load_corpus", "load_ptb", "find_ptb_dir", "download_ptb", "make_builtin_corpus",
    "batchify", "iterate_chunks", "num_chunks", "vocab_hash", "encode", "decode", "DataError",
    "DATASETS", "ParallelCorpus", "make_builtin_parallel", "load_parallel",
]
