"""Input validation with messages a student can act on.

Every public op calls these on its inputs, so a wrong shape fails at the call
that caused it, naming the argument and the shape that was expected, instead
of as a cryptic broadcasting error three functions deeper.
"""

from __future__ import annotations

import numpy as np

from .backend import get_array_module
from .choices import DTYPES


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


# The dtypes the ops compute in (choices.DTYPES): float32 to train, float64 to check gradients. float16 is
# refused, not half-supported: its 3 digits and its overflow at 65,504 would give wrong sums and infs.
FLOAT_DTYPES = DTYPES


def check_float(name: str, a, like=None):
    """dtype float32 or float64, and the same dtype as ``like`` when given (no silent float32/64 mixing)."""
    check_array(name, a)
    if a.dtype.name not in FLOAT_DTYPES:
        hint = "; cast it with .astype('float32')" if a.dtype.kind == "f" else ""
        raise TypeError(f"{name} must be a floating-point array of dtype float32 or float64 (the ops compute "
                        f"in those only), got dtype {a.dtype}{hint}")
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


def check_positive_int(name: str, value) -> int:
    """A whole number >= 1 (a size: V, H, L), returned as an int. ``True`` and 2.5 are refused, not rounded.

    A ValueError either way (a wrong type included), as the translation model's sizes: the command line
    reports ValueErrors as messages.
    """
    # bool is a subclass of int in Python, but hidden_size=True is a mistake, not a size of 1.
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive whole number (an int), got {value!r}"[:200])
    return int(value)


# ----------------------------------------------------------------------------
# The LSTM's arguments (minilstm/ops/lstm.py): the checks live here so that each
# op reads as its algorithm. Shapes: N batch, T time, D input size, H hidden size.
# ----------------------------------------------------------------------------

def check_lstm_weights(Wx, Wh, b):
    """Wx (D, 4H), Wh (H, 4H), b (4H,), all of one float dtype, nothing empty. Returns (D, H)."""
    check_float("Wx", Wx)
    D, H4 = Wx.shape if Wx.ndim == 2 else (None, None)
    if Wx.ndim != 2 or H4 % 4:
        raise ShapeError(f"Wx must have shape (D, 4H), got {tuple(Wx.shape)}")
    H = H4 // 4
    check_float("Wh", Wh, like=Wx)
    check_shape("Wh", Wh, (H, 4 * H), "(H, 4H)")
    check_float("b", b, like=Wx)
    check_shape("b", b, (4 * H,), "(4H,)")
    check_nonempty("Wx", Wx, "(D, 4H)")
    return D, H


def check_lstm_step_inputs(x, prev_h, prev_c, Wx, Wh, b):
    """lstm_step_forward's arguments: x (N, D), prev_h and prev_c (N, H), the weights; all finite.
    Returns (N, D, H)."""
    D, H = check_lstm_weights(Wx, Wh, b)
    check_float("x", x, like=Wx)
    N = x.shape[0] if x.ndim == 2 else None
    check_shape("x", x, (N, D), "(N, D)")
    check_nonempty("x", x, "(N, D)")
    for name, arr in (("prev_h", prev_h), ("prev_c", prev_c)):
        check_float(name, arr, like=Wx)
        check_shape(name, arr, (N, H), "(N, H)")
    check_all_finite({"prev_h": prev_h, "prev_c": prev_c, "x": x, "Wx": Wx, "Wh": Wh, "b": b})
    return N, D, H


def check_lstm_step_grads(dnext_h, dnext_c, prev_h, prev_c):
    """lstm_step_backward's upstream gradients: dnext_h, dnext_c (N, H) like the step's prev_h, prev_c."""
    check_shape("dnext_h", dnext_h, prev_h.shape, "(N, H)")
    check_shape("dnext_c", dnext_c, prev_c.shape, "(N, H)")
    check_float("dnext_h", dnext_h, like=prev_h)
    check_float("dnext_c", dnext_c, like=prev_c)
    check_all_finite({"dnext_h": dnext_h, "dnext_c": dnext_c})


def check_lstm_inputs(x, h0, Wx, Wh, b, c0=None, h_masks=None):
    """lstm_forward's arguments: x (N, T, D), h0 (N, H), the weights, c0 (N, H) or None, h_masks
    (N, T, H), (N, 1, H) or None; one float dtype, nothing empty, all finite. Returns (N, T, D, H)."""
    D, H = check_lstm_weights(Wx, Wh, b)
    check_float("x", x, like=Wx)
    if x.ndim != 3:
        check_shape("x", x, ("N", "T", D), "(N, T, D)")
    N, T = x.shape[:2]
    check_shape("x", x, (N, T, D), "(N, T, D)")
    check_nonempty("x", x, "(N, T, D)")
    check_float("h0", h0, like=Wx)
    check_shape("h0", h0, (N, H), "(N, H)")
    if c0 is not None:
        check_float("c0", c0, like=Wx)
        check_shape("c0", c0, (N, H), "(N, H)")
    if h_masks is not None:
        check_float("h_masks", h_masks, like=Wx)
        if tuple(h_masks.shape) != (N, 1, H):  # one mask per sequence, or else one per step:
            check_shape("h_masks", h_masks, (N, T, H), "(N, T, H) or (N, 1, H)")
    # One host read for all of them (on a GPU each read waits for the device).
    check_all_finite({"x": x, "h0": h0, "c0": c0, "Wx": Wx, "Wh": Wh, "b": b, "h_masks": h_masks})
    return N, T, D, H


def check_lstm_grads(dh, h, dh_final=None, dc_final=None):
    """lstm_backward's upstream gradients: dh (N, T, H) like the forward's output h, and
    dh_final, dc_final (N, H) or None; all finite."""
    N, T, H = h.shape
    check_shape("dh", dh, (N, T, H), "(N, T, H)")
    check_float("dh", dh, like=h)
    for name, g in (("dh_final", dh_final), ("dc_final", dc_final)):
        if g is not None:
            check_float(name, g, like=h)
            check_shape(name, g, (N, H), "(N, H)")
    check_all_finite({"dh": dh, "dh_final": dh_final, "dc_final": dc_final})
