"""Softmax cross-entropy loss over the vocabulary, numerically stable.

How the loss is averaged, and why: following the paper's official code (and
TensorFlow's PTB tutorial), the loss of a chunk is the negative log-likelihood
**summed over the T time steps and averaged over the N sequences of the batch**:

    loss = (1/N) * sum_{n, t} -log p(y[n, t] | history)

The learning rate 1 and the gradient-norm clip 5 of the paper were tuned for
this scale. Averaging over T as well would shrink every gradient T-fold (20x
for ``small``) and silently change the recipe. Pass ``normalizer`` to choose
another divisor (the evaluation code uses 1 to get the summed NLL).

Per-token weights: a translation model reads the source, a separator and the
target as one sequence, but only the target words are predictions to score.
``weights`` (N, T) multiplies each token's -log p: 1 for a counted token, 0
for the source, the separator and the padding, so those positions add nothing
to the loss and, in backward, nothing to the gradient:

    loss = (1/normalizer) * sum_{n, t} w[n, t] * -log p(y[n, t] | history)
    d loss / d s[n, t] = w[n, t] * (softmax(s[n, t]) - onehot(y[n, t])) / normalizer

Without weights (None) the code is the plain one, and weights of all ones give
bit-identical numbers (multiplying by 1.0 is exact).

Shapes: N batch, T time, V vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..backend import Array, get_array_module
from ..checks import (NonFiniteError, ShapeError, check_all_finite, check_float, check_nonempty, check_shape,
                      check_tokens)
from . import cuda_kernels


@dataclass
class SoftmaxCache:
    """probs (M, V): the softmax probabilities; y (M,): targets; normalizer; weights (M,) or None."""

    probs: Array
    y: Array
    normalizer: float
    scores_shape: tuple
    weights: Array = None


def log_softmax(scores):
    """log p = s - max(s) - log(sum(exp(s - max(s)))) along the last axis.  scores (..., V) -> (..., V).

    Subtracting the row maximum first keeps exp() from overflowing; it does not
    change the result because softmax is invariant to adding a constant.
    """
    xp = get_array_module(scores)
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


# A NaN or inf score is reported once, by the check on the loss (softmax_cross_entropy_forward), not as
# NumPy's RuntimeWarnings on the way (inf - inf in the shift, overflow of a huge score's difference).
@np.errstate(invalid="ignore", over="ignore")
def _softmax_nll_(probs, y, nll):
    """Scores probs (M, V) become probabilities in place; nll (M,) receives -log p[y] of every row."""
    xp = get_array_module(probs)
    if xp is not np:  # CuPy: the same steps with the elementwise ones fused (ops/cuda_kernels.py)
        return cuda_kernels.softmax_nll_(probs, y, nll)
    # probs = exp(s - max) / sum(exp(s - max)): subtracting the row maximum
    # keeps exp() from overflowing and does not change the softmax.
    top = probs.max(axis=1, keepdims=True)  # (M, 1)
    probs -= top
    picked = probs[xp.arange(probs.shape[0]), y]  # s[y] - max, kept before exp() overwrites it
    xp.exp(probs, out=probs)
    # The row sums as a matrix-vector product, probs @ ones: BLAS spreads it over every
    # core, where a NumPy reduction uses one (3x faster on a 400 x 10,000 array here).
    total = probs @ xp.ones(probs.shape[1], dtype=probs.dtype)  # (M,)
    probs *= (1.0 / total)[:, None]  # one reciprocal per row, then a multiply: cheaper than dividing
    # -log p[y] = log(sum exp(s - max)) - (s[y] - max), without taking log of a tiny p.
    xp.subtract(xp.log(total), picked, out=nll)


def softmax_cross_entropy_forward(scores, y, normalizer=None, overwrite_scores=False, weights=None):
    """Inputs: scores (N, T, V) (or (M, V)), y (N, T) (or (M,)) target ids,
    weights (N, T) (or (M,)) or None: how much each token counts (module docstring).

    ``normalizer`` defaults to N (the batch size), see the module docstring.
    ``overwrite_scores``: turn ``scores`` into the probabilities in place
    instead of allocating a copy (the training loop does: the scores are not
    needed again, and a (N*T, V) array is the largest of the whole step).
    Returns (loss, cache), loss a Python float.
    """
    xp = get_array_module(scores)
    check_float("scores", scores)
    check_nonempty("scores", scores, "(N, T, V)")
    V = scores.shape[-1]
    check_tokens("y", y, V, shape=scores.shape[:-1], names="(scores.shape[:-1])")
    if weights is not None:
        check_float("weights", weights, like=scores)
        check_shape("weights", weights, tuple(y.shape), "(scores.shape[:-1])")
        check_all_finite({"weights": weights})
        if bool((weights < 0).any()):
            raise ValueError("weights must be 0 or positive (1 counts a token, 0 ignores it)")
        weights = weights.reshape(-1)
    if normalizer is None:
        normalizer = scores.shape[0]
    elif (isinstance(normalizer, bool) or not isinstance(normalizer, (int, float, np.integer, np.floating))
          or not math.isfinite(normalizer) or normalizer <= 0):
        # The loss is divided by it: 0 gives inf, a negative one a loss that training would push up.
        raise ValueError(f"normalizer must be a positive finite number (None: the batch size N; 1: the summed "
                         f"NLL), got {normalizer!r}"[:200])
    probs = scores.reshape(-1, V) if overwrite_scores else scores.reshape(-1, V).copy()  # (M, V)
    yy = y.reshape(-1)
    nll = xp.empty(probs.shape[0], dtype=probs.dtype)  # (M,): -log p[y] of every row
    _softmax_nll_(probs, yy, nll)
    if weights is not None:
        ### BEGIN SOLUTION [translation:masked_loss] (hint: nll (M,) holds -log p of every token and weights
        ### was flattened to (M,) above: multiply each token's -log p by its weight, in place, before the
        ### sum below, so that a weight-0 token (source, separator, padding) adds nothing to the loss)
        nll *= weights  # an uncounted token (weight 0) adds nothing
        ### END SOLUTION
    loss = float(nll.sum()) / normalizer
    # One check on the sum, not on every score: a NaN or inf anywhere in scores reaches the loss (a NaN
    # row gives a NaN -log p; an inf score an inf - inf), so the (N*T, V) scores are never scanned.
    if not math.isfinite(loss):
        raise NonFiniteError(f"the loss is {loss}: scores holds NaN or inf (or gives a target probability 0); "
                             "check the weights and inputs of the layer that made them, or lower the "
                             "learning rate if training diverged")
    return loss, SoftmaxCache(probs, yy, normalizer, tuple(scores.shape), weights)


def softmax_cross_entropy_backward(dloss, cache: SoftmaxCache, overwrite_cache=False):
    """d loss / d scores = (softmax(s) - onehot(y)) * dloss / normalizer.  Returns (N, T, V).

    ``overwrite_cache``: build the gradient in the cache's probability array
    instead of a new one (the training loop does). The cache is then used up:
    a second backward through it raises an error instead of a wrong answer.
    """
    if cache.probs is None:
        raise RuntimeError("this softmax cache was already used by a backward pass that overwrote it; "
                           "run the forward pass again")
    xp = get_array_module(cache.probs)
    # The loss is a scalar, so its upstream gradient is one number: an array would broadcast wrongly.
    try:
        finite = getattr(dloss, "ndim", 0) == 0 and bool(np.isfinite(float(dloss)))
    except (TypeError, ValueError):
        finite = False
    if not finite:
        raise ShapeError(f"dloss must be one finite number (the loss is a scalar), got {dloss!r}"[:200])
    scale = dloss / cache.normalizer
    if overwrite_cache:
        dscores, cache.probs = cache.probs, None
    else:
        dscores = cache.probs.copy()
    if xp is not np:  # CuPy: one fused kernel (ops/cuda_kernels.py)
        cuda_kernels.softmax_grad_(dscores, cache.y, scale)
    else:
        dscores *= scale
        dscores[xp.arange(cache.y.shape[0]), cache.y] -= scale
    if cache.weights is not None:
        ### BEGIN SOLUTION [translation:masked_loss] (hint: dscores (M, V) holds one row per token and
        ### cache.weights (M,) one weight per token: scale each row by its token's weight (turn the weights
        ### into a column to broadcast over V), so that a weight-0 token gets no gradient at all)
        dscores *= cache.weights[:, None]  # each row scaled by its token's weight: 0 for uncounted ones
        ### END SOLUTION
    return dscores.reshape(cache.scores_shape)
