"""Finite-difference gradient checking: the proof that a backward pass is right.

The idea: for a scalar function f and a small step h, the centred difference

    (f(x + h e_i) - f(x - h e_i)) / (2 h)                        (order 2)

approximates df/dx_i with an error of order h^2, so it can referee a
hand-written backward pass element by element.

Two errors pull h in opposite directions. Truncation (the h^2 term) wants h
small; rounding wants it large, because f(x+h) - f(x-h) cancels all but the
last few digits of f: each evaluation is only good to about eps * |f|
(eps = 2.2e-16 in float64), so the estimate carries noise ~ eps |f| / h. For a
language-model loss |f| ~ 10 and h = 1e-5 that is ~1e-10 in absolute terms,
too much to verify a 1e-6 gradient to 1e-7 relative error.

So by default we use a higher-order centred stencil (Richardson's trick:
combine steps h, 2h and 3h so that the h^2 and h^4 error terms cancel),

    (45 (f(x+h) - f(x-h)) - 9 (f(x+2h) - f(x-2h)) + (f(x+3h) - f(x-3h))) / (60 h)

whose truncation error is of order h^6. That allows a much larger step,
h = 5e-3, which divides the rounding noise by 500 while truncation stays
around 1e-12. ``order=2`` gives the textbook version (h = 1e-5), ``order=4``
the five-point one (h = 1e-3); lesson 3 compares them.

Why float64: in float32 (7 digits) the cancellation would leave nothing to
compare. Checks refuse other dtypes.

Why fixed dropout masks: f must be the same function at x+h and x-h. A fresh
random mask at each evaluation would make the difference meaningless, so the
checker draws the masks once and replays them.

The relative error of one element is |a - n| / max(|a| + |n|, floor). The
floor keeps gradients that are exactly or nearly zero (an unused embedding
row, a saturated gate) from producing 0/0 or amplifying rounding noise that is
far below anything a bug could cause: an element smaller than the floor
(1e-4) must still agree to floor * tol = 1e-11 in absolute terms, while a
wrong one is off by about its own size. A correct backward pass gives errors
around 1e-10 here; a wrong one gives 1e-2 or more; the default tolerance 1e-7
sits between the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import default_rng, get_array_module, to_host
from .ops.embedding import is_row_sparse

DEFAULT_H = None  # per order: see _STEP
DEFAULT_ORDER = 6
DEFAULT_TOL = 1e-7
DEFAULT_FLOOR = 1e-4
_STEP = {2: 1e-5, 4: 1e-3, 6: 5e-3}  # order -> default step h


def rel_error(analytic, numeric, floor=DEFAULT_FLOOR):
    """Elementwise |a - n| / max(|a| + |n|, floor), as a NumPy array."""
    a = np.asarray(to_host(analytic), dtype=np.float64)
    n = np.asarray(to_host(numeric), dtype=np.float64)
    return np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), floor)


def _require_float64(name, x):
    if x.dtype != np.float64:
        raise TypeError(
            f"gradient checks run in float64, but {name} is {x.dtype}: float32 keeps only ~7 digits, "
            "fewer than a finite difference cancels. Build the inputs (or the model) with dtype float64.")


def _step(h, order):
    if order not in _STEP:
        raise ValueError(f"order must be 2, 4 or 6, got {order}")
    if h is not None and not (_number_in(h, 0, 1e300) and h > 0):  # any positive step: lesson 3 sweeps to 1
        raise ValueError(f"the step h must be a positive finite number (default for order {order}: "
                         f"{_STEP[order]}), got {h!r}"[:200])
    return _STEP[order] if h is None else h


def _check_settings(h, order, tol, floor):
    """What a check that gives a verdict needs: a small step, tol in (0, 1), a positive floor."""
    h = _step(h, order)
    if not 1e-12 <= h <= 0.1:
        # Above 0.1 the stencil's points (up to 3h away) leave the region the gradient describes;
        # below 1e-12, x + h rounds to x or nearly so and the difference is all rounding noise.
        raise ValueError(f"the step h must be small: between 1e-12 and 0.1 (default for order {order}: "
                         f"{_STEP[order]}), got {h!r}")
    # A relative error is at most 1, so tol >= 1 would pass anything.
    if not _number_in(tol, 1e-300, 1 - 1e-12):
        raise ValueError(f"tol must be a positive number below 1 (default {DEFAULT_TOL}), got {tol!r}"[:200])
    if not _number_in(floor, 1e-300, 1e300):
        raise ValueError(f"floor must be a positive finite number (default {DEFAULT_FLOOR}), got {floor!r}"[:200])


def _number_in(value, low, high) -> bool:
    """A real number (not a bool), finite, in [low, high]."""
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            and low <= value <= high)  # NaN fails both comparisons


def _centred(f_at, h, order):
    """The centred difference of order 2, 4 or 6, from f_at(t) = f(x + t v)."""
    if order == 2:
        return (f_at(h) - f_at(-h)) / (2.0 * h)
    d1 = f_at(h) - f_at(-h)
    d2 = f_at(2 * h) - f_at(-2 * h)
    if order == 4:
        return (8.0 * d1 - d2) / (12.0 * h)
    d3 = f_at(3 * h) - f_at(-3 * h)
    return (45.0 * d1 - 9.0 * d2 + d3) / (60.0 * h)


def numerical_gradient(f, x, index, h=DEFAULT_H, order=DEFAULT_ORDER):
    """Centred difference of the scalar f() with respect to x[index].

    x is perturbed in place (that is how f "sees" the change) and restored.
    """
    h = _step(h, order)
    old = float(x[index])

    def f_at(t):
        x[index] = old + t
        return f()

    try:
        return _centred(f_at, h, order)
    finally:
        x[index] = old


@dataclass
class CheckResult:
    """The outcome of checking one gradient.

    name: the argument or parameter; method: "elementwise" or "direction";
    worst_index / analytic / numeric: where the largest relative error was and both values there.
    """

    name: str
    max_rel_error: float
    worst_index: tuple
    analytic: float
    numeric: float
    checked: int
    tol: float
    method: str = "elementwise"

    @property
    def passed(self):
        return bool(self.max_rel_error <= self.tol)

    def __str__(self):
        flag = "ok  " if self.passed else "FAIL"
        where = f"at {self.worst_index}" if self.method == "elementwise" else "along a random direction"
        return (f"{flag} {self.name:<14} rel. error {self.max_rel_error:.2e} {where} "
                f"(analytic {self.analytic:+.10e}, numeric {self.numeric:+.10e}; {self.checked} checked)")


class GradCheckReport(list):
    """A list of CheckResult with a readable table and a pass/fail verdict."""

    @property
    def passed(self):
        return all(r.passed for r in self)

    @property
    def worst(self):
        return max(self, key=lambda r: r.max_rel_error) if self else None

    def __str__(self):
        lines = [str(r) for r in self]
        verdict = "all gradients match" if self.passed else "SOME GRADIENTS ARE WRONG"
        return "\n".join(lines + [verdict])

    def raise_if_failed(self):
        if not self.passed:
            raise AssertionError("gradient check failed:\n" + str(self))
        return self


def check_array_gradient(f, x, analytic, name="x", h=DEFAULT_H, tol=DEFAULT_TOL, floor=DEFAULT_FLOOR,
                         max_checks=None, rng=None, order=DEFAULT_ORDER):
    """Compare ``analytic`` = df/dx with centred differences of the scalar ``f()``.

    ``f`` takes no arguments and reads ``x``, which is perturbed in place. With
    ``max_checks`` only that many randomly chosen elements are checked (use it
    for large tensors, together with :func:`check_direction`).
    """
    _require_float64(name, x)
    _check_settings(h, order, tol, floor)  # before the first evaluation
    if tuple(analytic.shape) != tuple(x.shape):
        raise ValueError(f"the gradient of {name} has shape {tuple(analytic.shape)}, expected {tuple(x.shape)}")
    analytic = to_host(analytic)
    indices = list(np.ndindex(*x.shape))
    if max_checks is not None and len(indices) > max_checks:
        rng = rng if rng is not None else np.random.default_rng(0)
        pick = rng.choice(len(indices), size=max_checks, replace=False)
        indices = [indices[i] for i in sorted(pick)]
    worst = (-1.0, (), 0.0, 0.0)
    for idx in indices:
        num = numerical_gradient(f, x, idx, h, order)
        err = float(rel_error(analytic[idx], num, floor))
        if err > worst[0]:
            worst = (err, idx, float(analytic[idx]), num)
    return CheckResult(name, max(worst[0], 0.0), worst[1], worst[2], worst[3], len(indices), tol)


def check_direction(f, x, analytic, name="x", h=DEFAULT_H, tol=DEFAULT_TOL, floor=DEFAULT_FLOOR, rng=None,
                    order=DEFAULT_ORDER):
    """Check the whole gradient at once along a random unit direction v:

        (f(x + h v) - f(x - h v)) / (2h)  ==  sum(analytic * v)

    Two evaluations of f however large x is, so every element takes part.
    """
    _require_float64(name, x)
    _check_settings(h, order, tol, floor)
    xp = get_array_module(x)
    rng = rng if rng is not None else np.random.default_rng(0)
    v = rng.standard_normal(x.shape)
    v /= np.linalg.norm(v)
    v = xp.asarray(v)
    x0 = x.copy()

    def f_at(t):
        x[...] = x0 + t * v
        return f()

    try:
        num = _centred(f_at, _step(h, order), order)
    finally:
        x[...] = x0
    ana = float(xp.sum(analytic * v))
    err = float(rel_error(ana, num, floor))
    return CheckResult(name, err, (), ana, num, x.size, tol, method="direction")


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def check_op(forward, backward, inputs, grad_names, wrt=None, seed=0, h=DEFAULT_H, tol=DEFAULT_TOL,
             floor=DEFAULT_FLOOR, max_checks=None, order=DEFAULT_ORDER):
    """Gradient-check any ``(forward, backward)`` pair written in minilstm's style.

    forward(**inputs) returns ``(out, cache)`` or ``(out1, out2, ..., cache)``;
    backward(dout1, ..., cache) returns one gradient per name in ``grad_names``
    (``None`` for a returned value that is not an input gradient).
    The scalar checked is f = sum_k sum(out_k * dout_k) with fixed random dout_k.
    ``wrt`` limits the check to some inputs (default: every name in grad_names).

    Returns a GradCheckReport.
    """
    _check_settings(h, order, tol, floor)  # before any forward pass
    rng = np.random.default_rng(seed)
    first = _as_tuple(forward(**inputs))
    outs = first[:-1]
    xp = get_array_module(*[o for o in outs if hasattr(o, "shape")])
    douts = []
    for o in outs:
        if np.isscalar(o) or getattr(o, "ndim", 1) == 0:
            douts.append(1.0)
        else:
            _require_float64("the output", o)
            douts.append(xp.asarray(rng.standard_normal(o.shape)))
    grads = _as_tuple(backward(*douts, first[-1]))
    if len(grads) < len([g for g in grad_names if g]):
        raise ValueError(f"backward returned {len(grads)} values, expected at least {len(grad_names)}")

    def f():
        res = _as_tuple(forward(**inputs))[:-1]
        return float(sum(float(xp.sum(o * d)) for o, d in zip(res, douts)))

    report = GradCheckReport()
    for name, grad in zip(grad_names, grads):
        if not name or (wrt is not None and name not in wrt):
            continue
        report.append(check_array_gradient(f, inputs[name], grad, name, h, tol, floor, max_checks, rng, order))
    return report


def check_model(model, tokens, targets, state=None, masks=None, names=None, seed=0, h=DEFAULT_H,
                tol=DEFAULT_TOL, floor=DEFAULT_FLOOR, max_checks=None, direction=False, order=DEFAULT_ORDER,
                progress=None):
    """Gradient-check every parameter of a float64 model by name.

    Dropout masks are drawn once (from ``seed``) unless given, then replayed
    at every evaluation so the loss is a fixed function of the weights.
    ``max_checks`` samples that many elements per parameter; ``direction``
    adds a random-direction check of every whole tensor.
    ``progress(result)``, if given, is called with each CheckResult as soon as it is known (the
    command line prints it, so a large check is never silent for minutes).
    Returns a GradCheckReport (print it, or call .raise_if_failed()).
    """
    if model.dtype != np.float64:
        raise TypeError("check_model needs a float64 model: LSTMLanguageModel(..., dtype='float64')")
    _check_settings(h, order, tol, floor)  # before any forward pass
    rng = default_rng(seed, model.xp)
    _, cache, _ = model.forward(tokens, targets, state, train=True, rng=rng, masks=masks)
    masks = cache.masks  # the masks actually drawn: replay them
    grads = {name: g.to_dense() if is_row_sparse(g) else g for name, g in model.backward(cache).items()}

    def f():
        return model.forward(tokens, targets, state, train=True, masks=masks)[0]

    pick = np.random.default_rng(seed)
    report = GradCheckReport()
    for name in names or list(model.params):
        x = model.params[name]
        report.append(check_array_gradient(f, x, grads[name], name, h, tol, floor, max_checks, pick, order))
        if progress is not None:
            progress(report[-1])
        if direction:
            report.append(check_direction(f, x, grads[name], name, h, tol, floor, pick, order))
            if progress is not None:
                progress(report[-1])
    return report
