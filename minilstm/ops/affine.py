"""Affine (fully connected) layer: out = x W + b.

Used for the decoder that maps the top LSTM's h to vocabulary scores. It
accepts any leading shape, so (N, T, H) inputs become (N, T, V) scores with a
single (N*T, H) x (H, V) matrix product for all time steps at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..backend import Array, get_array_module
from ..checks import check_all_finite, check_float, check_nonempty, check_shape


@dataclass
class AffineCache:
    """x (..., D) and W (D, M): exactly what the backward products need."""

    x: Array
    W: Array


def affine_forward(x, W, b, out=None):
    """out (..., M) = x (..., D) @ W (D, M) + b (M,).  Returns (out, cache).

    ``out``, optional: an array of the output's shape to write into (the
    training loop passes a reused buffer, see minilstm/workspace.py).
    """
    check_float("W", W)
    if W.ndim != 2:
        check_shape("W", W, ("D", "M"), "(D, M)")
    D, M = W.shape
    check_float("x", x, like=W)
    if x.ndim < 1 or x.shape[-1] != D:
        raise ValueError(f"x must have shape (..., D) with D = {D}, got {tuple(x.shape)}")
    check_float("b", b, like=W)
    check_shape("b", b, (M,), "(M,)")
    check_nonempty("x", x, "(..., D)")
    check_nonempty("W", W, "(D, M)")
    check_all_finite({"x": x, "W": W, "b": b})
    shape = (*x.shape[:-1], M)
    if out is None:
        out = (x.reshape(-1, D) @ W).reshape(shape)
    else:
        check_shape("out", out, shape, "(..., M)")
        xp = get_array_module(out)
        xp.matmul(x.reshape(-1, D), W, out=out.reshape(-1, M))
    out += b
    return out, AffineCache(x, W)


def affine_backward(dout, cache: AffineCache, dW_out=None):
    """Inputs dout (..., M).  Returns (dx (..., D), dW (D, M), db (M,)).

    ``dW_out``, optional: a (D, M) array to write dW into (a reused buffer).
    """
    x, W = cache.x, cache.W
    D, M = W.shape
    check_shape("dout", dout, (*x.shape[:-1], M), "(..., M)")
    check_float("dout", dout, like=W)
    # dout is not scanned for NaN: in the model it is the (N, T, V) softmax gradient, the largest array
    # of a step, and a NaN in it cannot pass unseen (dW and db turn NaN, and training stops at the
    # gradient norm). The weights and inputs of the forward pass are scanned.
    xp = get_array_module(dout)
    d2 = dout.reshape(-1, M)
    dx = (d2 @ W.T).reshape(x.shape)
    if dW_out is None:
        dW = x.reshape(-1, D).T @ d2
    else:
        check_shape("dW_out", dW_out, (D, M), "(D, M)")
        dW = xp.matmul(x.reshape(-1, D).T, d2, out=dW_out)
    # db sums dout over the rows; as the product ones @ dout it runs in BLAS on every core
    # (a NumPy reduction uses one), which matters for the decoder's (N*T, V) gradient.
    db = xp.ones(d2.shape[0], dtype=d2.dtype) @ d2
    return dx, dW, db
