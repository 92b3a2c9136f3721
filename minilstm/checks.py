"""Input validation with messages a student can act on.

Every public op calls these on its inputs, so a wrong shape fails at the call
that caused it, naming the argument and the shape that was expected, instead
of as a cryptic broadcasting error three functions deeper.
"""

from __future__ import annotations

import numpy as np

from .backend import get_array_module


class ShapeError(ValueError):
    """An argument has the wrong shape."""


class EmptyError(ShapeError):
    """An argument has a dimension of size 0 (N = 0 or T = 0): there is nothing to compute."""


class NonFiniteError(FloatingPointError, ValueError):
    """An argument (input, weight, mask or gradient) holds NaN or inf.

    A FloatingPointError, as it always was here, and a ValueError, like every other bad argument.
    """


def check_array(name: str, a, ndim: int | None = None):
    if not hasattr(a, "shape") or not hasattr(a, "dtype"):
        raise TypeError(f"{name} must be a NumPy or CuPy array, got {type(a).__name__}")
    if ndim is not None and a.ndim != ndim:
        raise ShapeError(f"{name} must have {ndim} dimensions, got shape {tuple(a.shape)}")


def check_shape(name: str, a, expected: tuple, names: str = ""):
    """Check ``a.shape == expected``; ``names`` spells the dims, e.g. ``"(N, D)"``."""
    check_array(name, a)
    if tuple(a.shape) != tuple(expected):
        spelled = f" {names}" if names else ""
        raise ShapeError(f"{name} must have shape{spelled} = {tuple(expected)}, got {tuple(a.shape)}")


def check_float(name: str, a, like=None):
    """Floating dtype, and the same dtype as ``like`` when given (no silent float32/64 mixing)."""
    check_array(name, a)
    xp = get_array_module(a)
    if not xp.issubdtype(a.dtype, xp.floating):
        raise TypeError(f"{name} must be a floating-point array (float32 or float64), got dtype {a.dtype}")
    if like is not None and a.dtype != like.dtype:
        raise TypeError(
            f"{name} has dtype {a.dtype} but the weights are {like.dtype}; cast it with .astype({like.dtype})"
        )


def check_finite(name: str, a):
    xp = get_array_module(a)
    if not bool(xp.isfinite(a).all()):
        raise NonFiniteError(f"{name} contains NaN or inf; check the data and the learning rate")


def check_all_finite(arrays: dict):
    """check_finite on every ``{name: array}`` (None skipped), with one host read for all of them."""
    arrays = {k: a for k, a in arrays.items() if a is not None}
    if not arrays:
        return
    xp = get_array_module(*arrays.values())
    if xp is np:  # on the CPU: one array at a time, stopping at the first bad one
        if all(np.isfinite(a).all() for a in arrays.values()):
            return
    elif bool(xp.stack([xp.isfinite(a).all() for a in arrays.values()]).all()):  # GPU: one host read in all
        return
    for name, a in arrays.items():  # the error path only: name the culprit
        check_finite(name, a)


def check_nonempty(name: str, a, names: str = ""):
    """Every dimension at least 1: N = 0 or T = 0 gives a clear error, not a NaN or an IndexError later."""
    check_array(name, a)
    if 0 in tuple(a.shape):
        spelled = f" {names}" if names else ""
        raise EmptyError(f"{name} has shape{spelled} {tuple(a.shape)}: every dimension must be at least 1 "
                         "(an empty batch or a sequence of 0 steps has no loss and no gradient)")


def check_tokens(name: str, tokens, vocab_size: int, shape: tuple | None = None, names: str = ""):
    """Integer token ids in ``[0, vocab_size)``."""
    check_array(name, tokens)
    if shape is not None:
        check_shape(name, tokens, shape, names)
    xp = get_array_module(tokens)
    if not xp.issubdtype(tokens.dtype, xp.integer):
        raise TypeError(f"{name} must hold integer token ids, got dtype {tokens.dtype}")
    if tokens.size:
        # Both bounds in one transfer: on a GPU each host read waits for the device.
        lo, hi = xp.stack((tokens.min(), tokens.max())).tolist()
        if lo < 0 or hi >= vocab_size:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{name} holds token id {bad}, outside the vocabulary [0, {vocab_size})")
