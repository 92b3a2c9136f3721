"""Word embedding: a lookup table from token ids to vectors.

Forward is indexing, W[tokens]. Its backward is a scatter-add: each row of the
upstream gradient is added into the row of dW of the word that produced it,
and a word used k times in the batch collects all k contributions.

A batch of N*T tokens touches at most N*T of the V rows (400 of 10,000 for
``small``), so the training loop asks for the gradient in row-sparse form,
:class:`RowSparseGrad`: the distinct rows and their summed gradients. SGD and
clipping then touch those rows only, never a dense (V, H) array of zeros.

Shapes: N batch, T time, V vocabulary, H embedding size.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..backend import Array, get_array_module, scatter_add
from ..checks import check_all_finite, check_float, check_nonempty, check_shape, check_tokens


@dataclass
class EmbeddingCache:
    """tokens (N, T) and the table's shape (V, H): backward needs no more."""

    tokens: Array
    W_shape: tuple


def embedding_forward(tokens, W):
    """Inputs tokens (N, T) integer ids in [0, V), W (V, H).  Returns (out (N, T, H), cache)."""
    check_float("W", W)
    if W.ndim != 2:
        raise ValueError(f"W must have shape (V, H), got {tuple(W.shape)}")
    check_nonempty("W", W, "(V, H)")
    check_tokens("tokens", tokens, W.shape[0])
    check_nonempty("tokens", tokens, "(N, T)")
    out = W[tokens]
    # What must be finite is what this op reads: the rows the tokens select (backward never reads W).
    # Checking those N*T rows, not all V, keeps the check off the training step's clock.
    check_all_finite({"W[tokens]": out})
    return out, EmbeddingCache(tokens, tuple(W.shape))


@dataclass
class RowSparseGrad:
    """A (V, H) gradient that is zero except in some rows: dW[rows] = values.

    rows (U,): distinct row ids; values (U, H). ``to_dense()`` gives the (V, H) array.
    """

    rows: Array
    values: Array
    shape: tuple

    def to_dense(self):
        xp = get_array_module(self.values)
        dense = xp.zeros(self.shape, dtype=self.values.dtype)
        dense[self.rows] = self.values
        return dense


def is_row_sparse(g) -> bool:
    """True for a RowSparseGrad (checked by its fields, so a copy of this module, as the grader loads
    beside a student's code, is recognised too)."""
    return hasattr(g, "rows") and hasattr(g, "values") and hasattr(g, "to_dense")


def embedding_backward(dout, cache: EmbeddingCache, sparse=False):
    """Inputs dout (N, T, H).  Returns dW (V, H), or a RowSparseGrad when ``sparse``."""
    xp = get_array_module(dout)
    V, H = cache.W_shape
    check_shape("dout", dout, (*cache.tokens.shape, H), "(N, T, H)")
    check_float("dout", dout)
    check_all_finite({"dout": dout})
    if sparse:
        # The same scatter-add, into U distinct rows instead of V: a (U, N*T)
        # one-hot matrix times dout (N*T, H) sums each word's contributions
        # (one small matrix product, the same on NumPy and CuPy).
        rows, where = xp.unique(cache.tokens.reshape(-1), return_inverse=True)
        M = where.size
        onehot = xp.zeros((rows.size, M), dtype=dout.dtype)  # (U, N*T)
        onehot[where.reshape(-1), xp.arange(M)] = 1.0
        return RowSparseGrad(rows, onehot @ dout.reshape(M, H), (V, H))
    dW = xp.zeros((V, H), dtype=dout.dtype)
    scatter_add(dW, cache.tokens.reshape(-1), dout.reshape(-1, H))
    return dW
