"""Plain SGD with clipping of the global gradient norm, as in the paper; and Adam.

Clipping rescales *all* gradients together when their joint L2 norm exceeds
``max_norm``: the direction of the step is kept, only its length is capped.
This is what stops an occasional exploding gradient (lesson 4) from throwing
the weights far away. It lives here, in the training step, and never inside a
function under gradient check.

A gradient is a dense array, or a :class:`~minilstm.ops.embedding.RowSparseGrad`
(the embedding's, in training: only the rows of words in the batch); every
function below handles either.

Adam (Kingma & Ba 2015; the translation miniature trains with it, lr about 2e-3,
where plain SGD was slow) is at the end: :func:`adam_init`, :func:`adam_step_`,
and :class:`AdamState` to save its memory in a checkpoint and load it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .backend import get_array_module, to_host
from .ops.embedding import is_row_sparse


def _stored(g):
    """The array that holds a gradient's non-zero entries (all of it, unless row-sparse)."""
    return g.values if is_row_sparse(g) else g


# A diverging run's float32 gradients can square past 3.4e38: the norm is then inf, which training reports
# as divergence (runstate.check_diverged), so NumPy's overflow warning would only say it twice.
@np.errstate(over="ignore")
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


# ---------------------------------------------------------------------------------------------
# Adam (Kingma & Ba 2015), as torch.optim.Adam with its defaults: no weight decay, no amsgrad.
#
# Each weight gets its own step size from running averages of its gradient (m, "momentum") and
# of its squared gradient (v): p -= lr * m_hat / (sqrt(v_hat) + eps). A weight whose gradient is
# large or noisy takes smaller steps, one whose gradient is small but steady takes larger ones.
# m and v start at zero, so in the first steps they are biased towards zero, by the factors
# (1 - beta1^t) and (1 - beta2^t); dividing by those removes the bias. Without it, step 1 would
# be (1 - beta1) / sqrt(1 - beta2) = 0.1 / 0.032, about 3 times too long in every weight.
# ---------------------------------------------------------------------------------------------


@dataclass
class AdamState:
    """The optimizer's memory: step count t and the moments m, v per parameter.

    m[name], v[name] have the shape, dtype and device of params[name]; t counts the steps taken.
    """

    t: int
    m: dict
    v: dict

    def to_arrays(self) -> dict:
        """``{"adam.m.<name>": m, "adam.v.<name>": v}`` for a checkpoint (arrays as they are, host or device).

        t is not in it: it is one integer, for the checkpoint's meta.
        """
        out = {f"adam.m.{name}": a for name, a in self.m.items()}
        out.update({f"adam.v.{name}": a for name, a in self.v.items()})
        return out

    @classmethod
    def from_arrays(cls, t, arrays: dict, params: dict) -> AdamState:
        """The reverse of :meth:`to_arrays`, for ``params``: copies on each param's device.

        A checkpoint is untrusted input: every name must be there (and no other ``adam.*``
        name), each array must have its param's shape and dtype and be finite, and v must be
        >= 0 (a negative v puts a NaN in sqrt(v) on the next step). Anything else raises one
        ValueError that says what is wrong. Keys not starting with ``adam.`` are ignored, so
        the checkpoint's whole array dict may be passed.
        """
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
            raise ValueError(f"Adam state: step count t must be an integer >= 0, got {t!r}")
        expected = {f"adam.{kind}.{name}" for kind in ("m", "v") for name in params}
        given = {k for k in arrays if str(k).startswith("adam.")}
        if given != expected:
            missing, extra = sorted(expected - given), sorted(given - expected)
            raise ValueError(f"Adam state does not match the parameters: missing {missing}, unexpected {extra}")
        moments: dict[str, dict] = {"m": {}, "v": {}}
        for key in sorted(expected):
            _, kind, name = key.split(".", 2)
            a, p = arrays[key], params[name]
            if not hasattr(a, "shape") or not hasattr(a, "dtype"):
                raise ValueError(f"Adam state {key} must be an array, got {type(a).__name__}")
            if tuple(a.shape) != tuple(p.shape) or a.dtype != p.dtype:
                raise ValueError(f"Adam state {key} has shape {tuple(a.shape)} and dtype {a.dtype}, "
                                 f"but the parameter has shape {tuple(p.shape)} and dtype {p.dtype}")
            xa = get_array_module(a)
            if not bool(xa.isfinite(a).all()):
                raise ValueError(f"Adam state {key} contains NaN or inf")
            if kind == "v" and bool((a < 0).any()):
                raise ValueError(f"Adam state {key} has negative entries (a mean of squares is >= 0)")
            xp = get_array_module(p)  # copy onto the param's device: the state owns its memory
            moments[kind][name] = xp.array(to_host(a)) if xp is np else xp.array(a)
        return cls(int(t), moments["m"], moments["v"])


def adam_init(params: dict) -> AdamState:
    """Zero moments like each param (same shape, dtype, device), t = 0."""
    m = {name: get_array_module(p).zeros_like(p) for name, p in params.items()}
    v = {name: get_array_module(p).zeros_like(p) for name, p in params.items()}
    return AdamState(0, m, v)


def adam_step_(params: dict, grads: dict, state: AdamState, lr: float,
               beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
    """One Adam step, in place on params and state. grads (dense or RowSparseGrad) are only read.

    t += 1;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
    p -= lr * m_hat / (sqrt(v_hat) + eps),  with m_hat = m / (1-b1^t), v_hat = v / (1-b2^t)

    A RowSparseGrad gives exactly the dense result. Dense Adam decays m and v of *every* row,
    and moves every row whose m is not zero, even where this batch's gradient is 0 (a word seen
    earlier keeps drifting). So the sparse path decays all rows and adds the batch's rows only
    ("lazy" Adam, which touches the batch's rows alone, is cheaper but a different optimizer).
    """
    if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0 and eps > 0.0):
        raise ValueError(f"Adam needs 0 <= beta1, beta2 < 1 and eps > 0, got {beta1}, {beta2}, {eps}")
    state.t += 1
    # Fold both bias corrections into two scalars: lr * m_hat / (sqrt(v_hat) + eps)
    # = step * m / (sqrt(v) / root2 + eps), the form torch uses, so no m_hat or v_hat arrays.
    step = lr / (1.0 - beta1 ** state.t)
    root2 = math.sqrt(1.0 - beta2 ** state.t)
    for name, p in params.items():
        g, m, v = grads[name], state.m[name], state.v[name]
        xp = get_array_module(p)
        tmp = xp.empty_like(p)  # the one temporary, reused for every term below
        m *= beta1  # decay every row (for a sparse gradient too: see the docstring)
        v *= beta2
        if is_row_sparse(g):  # rows are distinct, so plain indexing adds into each row once
            m[g.rows] += g.values * (1.0 - beta1)  # the same roundings, in the same order, as the dense path
            v[g.rows] += (g.values * g.values) * (1.0 - beta2)
        else:
            xp.multiply(g, 1.0 - beta1, out=tmp)
            m += tmp
            xp.multiply(g, g, out=tmp)
            tmp *= 1.0 - beta2
            v += tmp
        # The update is dense either way: rows outside the batch move too while their m is not 0.
        xp.sqrt(v, out=tmp)
        tmp /= root2
        tmp += eps
        xp.divide(m, tmp, out=tmp)
        tmp *= step
        p -= tmp
