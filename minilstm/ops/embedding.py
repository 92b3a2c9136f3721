"""Word embedding: a lookup table from token ids to vectors.

Forward is indexing, W[tokens]. Its backward is a scatter-add: each row of the
upstream gradient is added into the row of dW of the word that produced it,
and a word used k times in the batch collects all k contributions.

Shapes: N batch, T time, V vocabulary, H embedding size.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..backend import get_array_module, scatter_add
from ..checks import check_float, check_tokens


@dataclass
class EmbeddingCache:
    """tokens (N, T) and the table's shape (V, H): backward needs no more."""

    tokens: object
    W_shape: tuple


def embedding_forward(tokens, W):
    """Inputs tokens (N, T) integer ids in [0, V), W (V, H).  Returns (out (N, T, H), cache)."""
    check_float("W", W)
    if W.ndim != 2:
        raise ValueError(f"W must have shape (V, H), got {tuple(W.shape)}")
    check_tokens("tokens", tokens, W.shape[0])
    return W[tokens], EmbeddingCache(tokens, tuple(W.shape))


def embedding_backward(dout, cache: EmbeddingCache):
    """Inputs dout (N, T, H).  Returns dW (V, H)."""
    xp = get_array_module(dout)
    V, H = cache.W_shape
    if tuple(dout.shape) != (*cache.tokens.shape, H):
        raise ValueError(f"dout must have shape (N, T, H) = {(*cache.tokens.shape, H)}, got {tuple(dout.shape)}")
    dW = xp.zeros((V, H), dtype=dout.dtype)
    scatter_add(dW, cache.tokens.reshape(-1), dout.reshape(-1, H))
    return dW
