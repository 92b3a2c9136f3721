"""Affine (fully connected) layer: out = x W + b.

Used for the decoder that maps the top LSTM's h to vocabulary scores. It
accepts any leading shape, so (N, T, H) inputs become (N, T, V) scores with a
single (N*T, H) x (H, V) matrix product for all time steps at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import check_float, check_shape


@dataclass
class AffineCache:
    """x (..., D) and W (D, M): exactly what the backward products need."""

    x: object
    W: object


def affine_forward(x, W, b):
    """out (..., M) = x (..., D) @ W (D, M) + b (M,).  Returns (out, cache)."""
    check_float("W", W)
    if W.ndim != 2:
        check_shape("W", W, ("D", "M"), "(D, M)")
    D, M = W.shape
    check_float("x", x, like=W)
    if x.ndim < 1 or x.shape[-1] != D:
        raise ValueError(f"x must have shape (..., D) with D = {D}, got {tuple(x.shape)}")
    check_float("b", b, like=W)
    check_shape("b", b, (M,), "(M,)")
    out = (x.reshape(-1, D) @ W).reshape(*x.shape[:-1], M)
    out += b
    return out, AffineCache(x, W)


def affine_backward(dout, cache: AffineCache):
    """Inputs dout (..., M).  Returns (dx (..., D), dW (D, M), db (M,))."""
    x, W = cache.x, cache.W
    D, M = W.shape
    check_shape("dout", dout, (*x.shape[:-1], M), "(..., M)")
    d2 = dout.reshape(-1, M)
    dx = (d2 @ W.T).reshape(x.shape)
    dW = x.reshape(-1, D).T @ d2
    db = d2.sum(axis=0)
    return dx, dW, db
