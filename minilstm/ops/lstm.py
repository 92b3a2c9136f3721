"""The LSTM, one step and a whole sequence, forward and backward (BPTT).

The equations, in the paper's notation (Zaremba et al. 2014, section 3.1),
for one layer with input x_t and previous state (h_{t-1}, c_{t-1}):

    a = x_t Wx + h_{t-1} Wh + b            pre-activations, one (N, 4H) block
    i = sigm(a_i)    input gate            how much of g to write
    f = sigm(a_f)    forget gate           how much of c_{t-1} to keep
    o = sigm(a_o)    output gate           how much of the memory to show
    g = tanh(a_g)    candidate             what to write
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

The four gates sit side by side along the last axis in the order i, f, o, g,
so ``a[:, :H]`` is i, ``a[:, H:2H]`` f, ``a[:, 2H:3H]`` o and ``a[:, 3H:]`` g.
That layout is written once, in :func:`split_gates` (and mirrored by the CUDA
kernels in ops/cuda_kernels.py, which index the same (N, 4H) block).
The function names, argument order and gate order follow CS231n's
``rnn_layers.py``, and three of the four functions return what CS231n's do.
The fourth, :func:`lstm_backward`, returns one value more, dc0 (the gradient
on the initial cell state, which a model whose state is computed needs): six
values, (dx, dh0, dWx, dWh, db, dc0), where CS231n's returns five, so code
written for CS231n takes ``lstm_backward(dh, cache)[:5]``.

Shapes: N batch, T time, D input size, H hidden size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import Array, get_array_module
from ..checks import check_lstm_grads, check_lstm_inputs, check_lstm_step_grads, check_lstm_step_inputs
from . import cuda_kernels
from .dropout import broadcast_over_time

GATES = ("i", "f", "o", "g")  # their order along the last axis of the (N, 4H) pre-activation block


def split_gates(a):
    """Views (i, f, o, g), each (..., H), of a gate block a (..., 4H): the gate layout, written once.

    The first three are sigmoids, the last (g) a tanh, so ``a[..., :3H]`` is
    the sigmoid block (activate_gates_ squashes it in one call).
    """
    H = a.shape[-1] // 4
    return a[..., :H], a[..., H:2 * H], a[..., 2 * H:3 * H], a[..., 3 * H:]


# ----------------------------------------------------------------------------
# The cell equations, written once and shared by the step and sequence versions.
# ----------------------------------------------------------------------------

def _sigmoid_(a, xp):
    """In-place logistic sigmoid, as 0.5 * tanh(a / 2) + 0.5.

    Same function as 1 / (1 + exp(-a)), but it never overflows: exp(-a) is inf
    for a < -88 in float32, tanh just saturates at -1.
    """
    a *= 0.5
    xp.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


def activate_gates_(a, H, xp):
    """Turn pre-activations a (N, 4H) into gates [i, f, o, g] in place."""
    if xp is not np:  # CuPy: the same arithmetic as one fused kernel launch (ops/cuda_kernels.py)
        return cuda_kernels.activate_gates_(a)
    g = split_gates(a)[3]
    _sigmoid_(a[:, : 3 * H], xp)  # i, f, o (side by side: one call) squashed to (0, 1)
    xp.tanh(g, out=g)  # g squashed to (-1, 1)
    return a


def cell_forward(gates, prev_c, next_c, tanh_c, next_h, xp):
    """c = f * c_prev + i * g;  h = o * tanh(c).  Writes into next_c, tanh_c, next_h (N, H)."""
    if xp is not np:  # CuPy: the same lines as one fused kernel launch (ops/cuda_kernels.py)
        return cuda_kernels.cell_forward(gates, prev_c, next_c, tanh_c, next_h)
    i, f, o, g = split_gates(gates)
    ### BEGIN SOLUTION [lstm:cell_forward] (hint: c = f * prev_c + i * g; h = o * tanh(c). Write into next_c,
    ###     tanh_c and next_h (e.g. xp.multiply(f, prev_c, out=next_c)): the caller owns those arrays)
    xp.multiply(f, prev_c, out=next_c)
    next_c += i * g
    xp.tanh(next_c, out=tanh_c)
    xp.multiply(o, tanh_c, out=next_h)
    ### END SOLUTION


def cell_backward(dh, dc, gates, prev_c, tanh_c, dgates, xp):
    """Backward through the cell equations for one step.

    Inputs: dh, dc (N, H) = gradients reaching h_t and c_t; the forward's gates
    (N, 4H), prev_c and tanh_c (N, H). Writes the pre-activation gradient
    da (N, 4H) into ``dgates`` and returns dprev_c (N, H).
    """
    if xp is not np:  # CuPy: the same lines as one fused kernel launch (ops/cuda_kernels.py)
        return cuda_kernels.cell_backward(dh, dc, gates, prev_c, tanh_c, dgates)
    H = prev_c.shape[1]
    i, f, o, g = split_gates(gates)
    ### BEGIN SOLUTION [lstm:cell_backward] (hint: c_t reaches the loss directly (dc) and through h = o *
    ###     tanh(c): add both. Then each gate: da = (what it multiplies) * (its slope: s * (1 - s) for a
    ###     sigmoid, 1 - t * t for tanh). Write da_i, da_f, da_o, da_g into dgates[:, :H], [:, H:2H], [:,
    ###     2H:3H], [:, 3H:] and return dprev_c)
    # h = o * tanh(c): the gradient reaches c through tanh, whose slope is 1 - tanh^2.
    dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
    # c = f * c_prev + i * g, then through each gate's squashing function:
    # sigm' = s (1 - s), tanh' = 1 - t^2, both from values forward already has.
    xp.multiply(dc * g, i * (1.0 - i), out=dgates[:, :H])                   # da_i
    xp.multiply(dc * prev_c, f * (1.0 - f), out=dgates[:, H:2 * H])         # da_f
    xp.multiply(dh * tanh_c, o * (1.0 - o), out=dgates[:, 2 * H:3 * H])     # da_o
    xp.multiply(dc * i, 1.0 - g * g, out=dgates[:, 3 * H:])                 # da_g
    return dc * f                                                           # dprev_c
    ### END SOLUTION


# ----------------------------------------------------------------------------
# One step
# ----------------------------------------------------------------------------

@dataclass
class LSTMStepCache:
    """What one step's backward needs; nothing in it is recomputed later.

    x (N, D), prev_h (N, H), prev_c (N, H), gates (N, 4H) = [i, f, o, g]
    after their nonlinearities, tanh_c (N, H) = tanh(next_c), Wx (D, 4H), Wh (H, 4H).
    """

    x: Array
    prev_h: Array
    prev_c: Array
    gates: Array
    tanh_c: Array
    Wx: Array
    Wh: Array


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM time step.

    Inputs:
      x (N, D), prev_h (N, H), prev_c (N, H),
      Wx (D, 4H), Wh (H, 4H), b (4H,), gate order i, f, o, g.
    Returns (next_h (N, H), next_c (N, H), cache).
    """
    xp = get_array_module(x, Wx)
    N, D, H = check_lstm_step_inputs(x, prev_h, prev_c, Wx, Wh, b)  # shapes, dtypes, NaN (minilstm/checks.py)

    ### BEGIN SOLUTION [lstm:step] (hint: a = x Wx + prev_h Wh + b is one (N, 4H) block; activate_gates_(a,
    ###     H, xp) squashes it in place; allocate next_c, tanh_c, next_h and let cell_forward fill them;
    ###     return next_h, next_c, LSTMStepCache(...))
    gates = x @ Wx + prev_h @ Wh + b  # (N, 4H): all four gates in one block
    activate_gates_(gates, H, xp)
    next_c = xp.empty_like(prev_c)
    tanh_c = xp.empty_like(prev_c)
    next_h = xp.empty_like(prev_h)
    cell_forward(gates, prev_c, next_c, tanh_c, next_h, xp)
    return next_h, next_c, LSTMStepCache(x, prev_h, prev_c, gates, tanh_c, Wx, Wh)
    ### END SOLUTION


def lstm_step_backward(dnext_h, dnext_c, cache: LSTMStepCache):
    """Backward pass of one LSTM step.

    Inputs: dnext_h, dnext_c (N, H) and the cache from lstm_step_forward.
    Returns (dx (N, D), dprev_h (N, H), dprev_c (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,)).
    """
    xp = get_array_module(dnext_h)
    check_lstm_step_grads(dnext_h, dnext_c, cache.prev_h, cache.prev_c)
    ### BEGIN SOLUTION [lstm:step] (hint: cell_backward fills da (N, 4H), the gradient on the
    ###     pre-activations, and returns dprev_c; then a = x Wx + prev_h Wh + b is affine: dx = da Wx^T, dWx =
    ###     x^T da, the same for prev_h and Wh, db = da summed over the batch)
    da = xp.empty_like(cache.gates)  # (N, 4H)
    dprev_c = cell_backward(dnext_h, dnext_c, cache.gates, cache.prev_c, cache.tanh_c, da, xp)
    # a = x Wx + h_prev Wh + b: an affine map, so the usual three products.
    dx = da @ cache.Wx.T
    dprev_h = da @ cache.Wh.T
    dWx = cache.x.T @ da
    dWh = cache.prev_h.T @ da
    db = da.sum(axis=0)
    return dx, dprev_h, dprev_c, dWx, dWh, db
    ### END SOLUTION


# ----------------------------------------------------------------------------
# A whole sequence, with backpropagation through time
# ----------------------------------------------------------------------------

@dataclass
class LSTMCache:
    """Everything lstm_backward needs, stored once by lstm_forward.

    x (N, T, D); h0, c0 (N, H); h, c, tanh_c (N, T, H) for every step;
    gates (N, T, 4H) after their nonlinearities; Wx, Wh;
    h_masks (N, T, H) or None: dropout masks applied to h_{t-1} (``recurrent``
    and ``variational`` placements; a per-sequence (N, 1, H) mask is kept as
    its broadcast (N, T, H) view); h_in (N, T, H) or None: the masked h_{t-1}
    that entered Wh.

    The final state, to carry into the next chunk of truncated BPTT, is
    ``cache.final_h`` and ``cache.final_c`` (both (N, H)); final_h is also
    ``h[:, -1]`` of the output.
    """

    x: Array
    h0: Array
    c0: Array
    h: Array
    c: Array
    tanh_c: Array
    gates: Array
    Wx: Array
    Wh: Array
    h_masks: Array = None
    h_in: Array = None

    @property
    def final_h(self):
        return self.h[:, -1]

    @property
    def final_c(self):
        return self.c[:, -1]


def lstm_forward(x, h0, Wx, Wh, b, c0=None, h_masks=None):
    """Run an LSTM over a whole sequence.

    Inputs:
      x (N, T, D): the input at every step; h0 (N, H): initial hidden state;
      Wx (D, 4H), Wh (H, 4H), b (4H,): weights, gate order i, f, o, g;
      c0 (N, H): initial cell state (zeros when None, as in CS231n);
      h_masks (N, T, H) or (N, 1, H), optional: a dropout mask multiplied into
        h_{t-1} before it enters the recurrence: a fresh one every step (the
        ``recurrent`` placement, which the paper argues against) or, as
        (N, 1, H), the same one at every step (``variational``, Gal &
        Ghahramani 2016; broadcast over time, never copied).
    Returns (h (N, T, H), cache). The final state is (cache.final_h, cache.final_c).

    Speed: the input projection x_t Wx + b of all T steps does not depend on
    the recurrence, so it is one (N*T, D) x (D, 4H) matrix product before the
    loop; only the small h_{t-1} Wh product stays inside it.
    """
    xp = get_array_module(x, Wx)
    N, T, D, H = check_lstm_inputs(x, h0, Wx, Wh, b, c0, h_masks)  # shapes, dtypes, NaN (minilstm/checks.py)
    if c0 is None:
        c0 = xp.zeros_like(h0)  # an empty memory to start from
    if h_masks is not None:
        h_masks = broadcast_over_time(h_masks, (N, T, H))  # (N, 1, H): the same mask at every step

    ### BEGIN SOLUTION [lstm:sequence_forward] (hint: fill gates (N, T, 4H), h, c, tanh_c (N, T, H) and h_in
    ###     (the masked h_{t-1}, or None) for the cache below. x_t Wx + b for all T steps is one product; then
    ###     for t = 0..T-1: multiply h_{t-1} by h_masks[:, t] if given, add h_{t-1} Wh, activate_gates_,
    ###     cell_forward into h[:, t], c[:, t], tanh_c[:, t])
    # One GEMM for the input projections of all T steps: (N*T, D) @ (D, 4H).
    gates = (x.reshape(N * T, D) @ Wx).reshape(N, T, 4 * H)  # (N, T, 4H)
    gates += b
    h = xp.empty((N, T, H), dtype=x.dtype)
    c = xp.empty_like(h)
    tanh_c = xp.empty_like(h)
    h_in = xp.empty_like(h) if h_masks is not None else None
    rec = xp.empty((N, 4 * H), dtype=x.dtype)  # reused buffer for h_{t-1} Wh

    prev_h, prev_c = h0, c0
    for t in range(T):
        if h_masks is not None:
            prev_h = xp.multiply(prev_h, h_masks[:, t], out=h_in[:, t])
        a = gates[:, t]  # (N, 4H) view: x_t Wx + b, completed in place
        xp.matmul(prev_h, Wh, out=rec)
        a += rec
        activate_gates_(a, H, xp)
        cell_forward(a, prev_c, c[:, t], tanh_c[:, t], h[:, t], xp)
        prev_h, prev_c = h[:, t], c[:, t]
    ### END SOLUTION

    cache = LSTMCache(x, h0, c0, h, c, tanh_c, gates, Wx, Wh, h_masks, h_in)
    return h, cache


def lstm_backward(dh, cache: LSTMCache, dh_final=None, dc_final=None):
    """Backpropagation through time over the whole sequence.

    Inputs: dh (N, T, H), the upstream gradient on every h_t; the cache;
      optionally dh_final / dc_final (N, H), gradients on the final state
      (zero in truncated BPTT, where the graph stops at the chunk boundary).
    Returns (dx (N, T, D), dh0 (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,), dc0 (N, H)):
    CS231n's five values in CS231n's order, then dc0 (module docstring).
    """
    xp = get_array_module(dh)
    N, T, H = cache.h.shape
    D = cache.x.shape[2]
    check_lstm_grads(dh, cache.h, dh_final, dc_final)  # shapes, dtypes, NaN (minilstm/checks.py)
    ### BEGIN SOLUTION [lstm:sequence_backward] (hint: walk t from T-1 down to 0: h_t gets dh[:, t] plus the
    ###     gradient sent back by step t+1 (start from dh_final, dc_final or zeros); cell_backward gives da
    ###     for step t and the gradient on c_{t-1}; the gradient on h_{t-1} is da Wh^T (times h_masks[:, t] if
    ###     used). Weight gradients sum over all steps: stack da as (N*T, 4H) and use h_{t-1} = h0, h_1 ..
    ###     h_{T-1} (or cache.h_in))
    dgates = xp.empty_like(cache.gates)  # (N, T, 4H): da for every step
    dh_next = xp.zeros((N, H), dtype=dh.dtype) if dh_final is None else dh_final
    dc_next = xp.zeros((N, H), dtype=dh.dtype) if dc_final is None else dc_final
    for t in reversed(range(T)):
        prev_c = cache.c[:, t - 1] if t > 0 else cache.c0
        # h_t feeds the layer above (dh[:, t]) and the next step (dh_next).
        dh_t = dh[:, t] + dh_next
        dc_next = cell_backward(dh_t, dc_next, cache.gates[:, t], prev_c, cache.tanh_c[:, t],
                                 dgates[:, t], xp)
        dh_next = dgates[:, t] @ cache.Wh.T
        if cache.h_masks is not None:
            dh_next *= cache.h_masks[:, t]  # back through the recurrent dropout

    # The parameter gradients sum over steps, so they too are single GEMMs.
    dG = dgates.reshape(N * T, 4 * H)
    if cache.h_in is not None:
        h_prev = cache.h_in
    else:  # h_{t-1} for every t: h0, then h_1 .. h_{T-1} (a copy, not a recomputation)
        h_prev = xp.concatenate([cache.h0[:, None], cache.h[:, :-1]], axis=1)
    dx = (dG @ cache.Wx.T).reshape(N, T, D)
    dWx = cache.x.reshape(N * T, D).T @ dG
    dWh = h_prev.reshape(N * T, H).T @ dG
    db = dG.sum(axis=0)
    return dx, dh_next, dWx, dWh, db, dc_next
    ### END SOLUTION
