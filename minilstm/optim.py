"""Plain SGD with clipping of the global gradient norm, as in the paper.

Clipping rescales *all* gradients together when their joint L2 norm exceeds
``max_norm``: the direction of the step is kept, only its length is capped.
This is what stops an occasional exploding gradient (lesson 4) from throwing
the weights far away. It lives here, in the training step, and never inside a
function under gradient check.

A gradient is a dense array, or a :class:`~minilstm.ops.embedding.RowSparseGrad`
(the embedding's, in training: only the rows of words in the batch); both
functions below handle either.
"""

from __future__ import annotations

import math

from .backend import get_array_module
from .ops.embedding import is_row_sparse


def _stored(g):
    """The array that holds a gradient's non-zero entries (all of it, unless row-sparse)."""
    return g.values if is_row_sparse(g) else g


def global_norm(grads: dict) -> float:
    """sqrt(sum over every gradient array of sum(g^2))."""
    total = 0.0
    for g in map(_stored, grads.values()):  # a sparse gradient's other rows are zero: they add nothing
        flat = g.reshape(-1)
        # One BLAS call, no temporary; summed in float64 where the arrays live, so that on a
        # GPU the only transfer to the host is the final float(), not one per gradient.
        total = total + get_array_module(g).dot(flat, flat).astype("float64")
    return math.sqrt(float(total))


def clip_global_norm_(grads: dict, max_norm: float) -> float:
    """Scale every gradient in place by min(1, max_norm / norm). Returns the norm before clipping."""
    norm = global_norm(grads)
    if norm > max_norm:
        scale = max_norm / norm
        for g in map(_stored, grads.values()):
            g *= scale
    return norm


def sgd_step_(params: dict, grads: dict, lr: float) -> None:
    """params[name] -= lr * grads[name], in place."""
    for name, p in params.items():
        g = grads[name]
        if is_row_sparse(g):  # rows are distinct, so plain indexing updates each once
            g.values *= lr
            p[g.rows] -= g.values
            continue
        g *= lr  # the gradient buffer is ours to overwrite: saves a temporary
        p -= g
