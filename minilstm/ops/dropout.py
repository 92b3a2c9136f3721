"""The dropout operator D, explicit and with injectable masks.

Inverted dropout: in training every unit is kept with probability 1 - p and
the kept ones are scaled by 1 / (1 - p), so that E[D(x)] = x and nothing needs
rescaling at test time, where D is the identity.

The mask is an array of the input's shape holding 0 or 1/(1-p). For an input
(N, T, H) that is a fresh, independent mask for every time step, as in the
paper. A mask can be passed in (gradient checks and lessons fix it so the
function is deterministic) and the one used is always returned in the cache.

A mask for an (N, T, H) input may also be (N, 1, H): one mask per sequence,
shared by all T steps (broadcast over time, never copied). That is the
``variational`` dropout of Gal & Ghahramani (2016); the backward pass is the
same product, dout * mask, broadcast the same way.

Where D goes in the model (``none``, ``zaremba``, ``recurrent``,
``variational``) is decided in :mod:`minilstm.model`; this file only knows how
to drop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import Array, get_array_module
from ..checks import FLOAT_DTYPES, check_all_finite, check_array, check_float, check_shape


@dataclass
class DropoutCache:
    """mask: same shape as x, 0 or 1/(1-p); None when D was the identity."""

    mask: Array


def _dtype_name(dtype):
    """'float32' for np.float32, np.dtype('float32') or 'float32'; None for what is no dtype."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        return None


def dropout_mask(shape, p, rng, dtype):
    """Draw an inverted-dropout mask: 1/(1-p) with probability 1-p, else 0."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability p must be in [0, 1), got {p}")
    if _dtype_name(dtype) not in FLOAT_DTYPES:  # as every op: float32 or float64 (checks.py)
        raise TypeError(f"dropout_mask's dtype must be float32 or float64, got {dtype!r}")
    ### BEGIN SOLUTION [dropout:operator] (hint: keep each unit with probability 1 - p: rng.random(shape,
    ###     dtype=dtype) is uniform between 0 and 1, so compare it with 1 - p; turn the booleans into dtype and
    ###     scale the kept ones by 1 / (1 - p) (inverted dropout: E[mask] = 1))
    keep = 1.0 - p
    # rng.random is uniform on [0, 1): below `keep` with probability exactly 1 - p.
    mask = (rng.random(shape, dtype=dtype) < keep).astype(dtype)
    mask *= 1.0 / keep
    return mask
    ### END SOLUTION


def broadcast_over_time(mask, shape):
    """A (N, 1, H) mask as a read-only (N, T, H) view for an input of ``shape`` (N, T, H), no copy.

    Any other mask is returned as it is (the caller checks its shape). Used by
    dropout_forward and by lstm_forward's h_masks: one mask per sequence.
    """
    shape = tuple(shape)
    if mask is None or len(shape) != 3 or mask.ndim != 3 or tuple(mask.shape) == shape:
        return mask
    ### BEGIN SOLUTION [dropout:variational] (hint: a mask of shape (N, 1, H) for shape (N, T, H) becomes
    ###     xp.broadcast_to(mask, shape) with xp = get_array_module(mask): a read-only view in which every step t
    ###     reads the same (N, H) mask, no copy; any other mask is returned unchanged)
    if mask.shape[1] == 1 and (mask.shape[0], mask.shape[2]) == (shape[0], shape[2]):
        return get_array_module(mask).broadcast_to(mask, shape)
    return mask
    ### END SOLUTION


def dropout_forward(x, p, train=True, rng=None, mask=None):
    """D(x). Inputs: x (any shape), p = drop probability, train flag,
    rng (a generator from backend.default_rng) or a ready mask (x.shape, or
    (N, 1, H) for an (N, T, H) input: the same mask at every time step).

    Returns (out, cache); cache.mask is the mask used (None in eval or p = 0),
    of x's shape (a per-sequence mask appears as its broadcast view).
    """
    check_float("x", x)  # float32 or float64, as every op (in evaluation too: D is then the identity)
    if train and mask is not None:  # a given mask must be usable: NaN in it would pass silently into x
        check_array("mask", mask)
        check_all_finite({"mask": mask})
        # A per-sequence (N, 1, H) mask becomes an (N, T, H) view, so the code below is unchanged.
        mask = broadcast_over_time(mask, x.shape)
    ### BEGIN SOLUTION [dropout:operator] (hint: D is the identity (return x, DropoutCache(None)) when not
    ###     training, or when p is 0 and no mask is given. Otherwise use the given mask (ValueError if its
    ###     shape is not x's) or draw one with dropout_mask(x.shape, p, rng, dtype of x) (ValueError if rng is
    ###     None too); return x * mask and DropoutCache(mask))
    if not train or (p == 0.0 and mask is None):
        return x, DropoutCache(None)
    if mask is None:
        if rng is None:
            raise ValueError("dropout_forward in training needs rng= (a seeded generator) or mask=")
        xp = get_array_module(x)
        mask = dropout_mask(x.shape, p, rng, xp.dtype(x.dtype))
    elif tuple(mask.shape) != tuple(x.shape):
        raise ValueError(f"mask must have the shape of x, {tuple(x.shape)}, got {tuple(mask.shape)}")
    return x * mask, DropoutCache(mask)
    ### END SOLUTION


def dropout_backward(dout, cache: DropoutCache):
    """dx = dout * mask (the identity when no mask was used)."""
    if cache.mask is not None:  # else a wrong shape could broadcast into a silently wrong gradient
        check_shape("dout", dout, tuple(cache.mask.shape), "(the input's shape)")
    ### BEGIN SOLUTION [dropout:operator] (hint: out = x * mask, so the gradient is multiplied by the same
    ###     mask; identity when cache.mask is None)
    if cache.mask is None:
        return dout
    return dout * cache.mask
    ### END SOLUTION
