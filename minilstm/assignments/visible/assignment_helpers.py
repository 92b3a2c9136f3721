"""Helpers shared by the assignment tests: small random inputs, the LSTM cell equations
written plainly, and assertions whose messages say *which function* is wrong,
*which value or gradient*, and *by how much*.

A message always starts with the name of the function to fix, e.g.::

    cell_backward: wrong gradient da_f (a correct backward pass gives relative errors near 1e-10)
    FAIL da_f           rel. error 6.2e-01 at (1, 2) (analytic +1.0e-01, numeric +2.3e-01; 12 checked)
"""

from __future__ import annotations

import numpy as np

from minilstm import gradcheck


def rng(seed=0):
    return np.random.default_rng(seed)


def randn(r, *shape, scale=1.0):
    """Standard normal float64 array of the given shape, times scale."""
    return scale * r.standard_normal(shape)


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def cell_equations(a, prev_c):
    """The LSTM cell, exactly as in the docstring of minilstm/ops/lstm.py.

    a (N, 4H): pre-activations, gate order i, f, o, g; prev_c (N, H).
    Returns (h, c), each (N, H).
    """
    H = prev_c.shape[1]
    i, f, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    c = f * prev_c + i * g
    return o * np.tanh(c), c


def activated(a):
    """The gates [i, f, o, g] after their nonlinearities, from pre-activations a (N, 4H)."""
    H = a.shape[1] // 4
    return np.concatenate([sigmoid(a[:, :3 * H]), np.tanh(a[:, 3 * H:])], axis=1)


def expect_shape(function, what, actual, shape):
    got = tuple(getattr(actual, "shape", ()))
    if got != tuple(shape):
        raise AssertionError(f"{function}: {what} has shape {got}, expected {tuple(shape)}")


def expect_finite(function, what, actual, why="was it written?"):
    bad = ~np.isfinite(np.asarray(actual))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(f"{function}: {what} holds NaN or inf (first at {where}; {why})")


def expect_inverted_mask(function, what, mask, p, tol, hint=""):
    """An inverted-dropout mask: every value 0 or 1/(1-p), and about 1 - p of them kept (within tol)."""
    values = np.unique(mask)
    if not (len(values) == 2 and np.allclose(values, [0.0, 1.0 / (1 - p)])):
        raise AssertionError(f"{function}: {what} must hold only 0 and 1/(1-p) = {1 / (1 - p):.4f} "
                             f"(inverted dropout), it holds {values[:5]}{hint}")
    kept = float((mask > 0).mean())
    if abs(kept - (1 - p)) > tol:
        raise AssertionError(f"{function}: {what} keeps {kept:.3f} of the units with p = {p}; expected about "
                             f"1 - p = {1 - p} (p is the probability of *dropping* a unit)")


def expect_close(function, what, actual, expected, tol=1e-9):
    """Elementwise relative error (as in minilstm.gradcheck) below tol, or a message that
    names the function, the value, the worst element and both numbers there."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    expect_shape(function, what, actual, expected.shape)
    expect_finite(function, what, actual)
    err = gradcheck.rel_error(actual, expected, floor=1e-8)
    if err.size and err.max() > tol:
        idx = tuple(int(i) for i in np.unravel_index(np.argmax(err), err.shape))
        raise AssertionError(
            f"{function}: {what} is wrong: relative error {err.max():.1e} at {idx} "
            f"(got {actual[idx]:+.6e}, expected {expected[idx]:+.6e})")


def expect_gradients(function, report, note=""):
    """Fail naming every gradient of ``report`` (a gradcheck.GradCheckReport) that is off."""
    bad = [r for r in report if not r.passed]
    if not bad:
        return
    names = ", ".join(r.name for r in bad)
    lines = [f"{function}: wrong gradient{'s' if len(bad) > 1 else ''} {names} "
             "(a correct backward pass gives relative errors near 1e-10)"]
    lines += [str(r) for r in bad]
    if note:
        lines.append(note)
    raise AssertionError("\n".join(lines))


def lstm_inputs(seed=0, N=2, T=3, D=4, H=3, scale=0.5):
    """Random float64 inputs for lstm_forward: x (N, T, D), h0, c0 (N, H), Wx, Wh, b."""
    r = rng(seed)
    return dict(x=randn(r, N, T, D), h0=randn(r, N, H, scale=scale), Wx=randn(r, D, 4 * H, scale=scale),
                Wh=randn(r, H, 4 * H, scale=scale), b=randn(r, 4 * H, scale=scale), c0=randn(r, N, H))


def keep_mask(seed, shape, p=0.5):
    """A fixed inverted-dropout mask (0 or 1/(1-p)), made here so tests do not depend on dropout_mask."""
    return (rng(seed).random(shape) >= p) / (1.0 - p)
