"""Fused CUDA kernels for the elementwise work of the LSTM cell and the softmax (CuPy only).

Why: on a GPU every NumPy-style line (``f * prev_c``, ``+ i * g``, ``tanh``...)
is a separate kernel launch that reads and writes whole arrays in GPU memory.
For a (20, 650) cell the arithmetic takes a few microseconds, and so does each
launch, so the cell's ~10 lines cost ~10 launches per step and per layer. The
kernels below do the same arithmetic, line for line, in one launch each.

They are used automatically when the arrays are CuPy arrays (see the first
lines of ``activate_gates_``, ``cell_forward``, ``cell_backward`` in
ops/lstm.py and of the softmax in ops/softmax.py); the NumPy functions there
stay the reference, and ``tests/test_backend_gpu.py`` checks every kernel
against them in float64 on a GPU; ``tests/test_cuda_kernels_on_cpu.py`` checks
the same arithmetic on any CPU, compiling each kernel body as C++. This module
imports CuPy only when a kernel is first asked for, which only happens with
CuPy arrays in hand.

``T`` is the array dtype (float32 or float64); ``T(0.5)`` keeps float32 math
in float32.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def _kernels():
    import cupy

    # a (N, 4H) pre-activations -> [sigm(a_i), sigm(a_f), sigm(a_o), tanh(a_g)] in place.
    # `i` is the element's index in the (N, 4H) iteration space, so i % H4 is its column.
    activate = cupy.ElementwiseKernel(
        "int64 H4", "T a",
        """
        if (i % H4 < 3 * (H4 / 4)) {
            a = T(0.5) * tanh(T(0.5) * a) + T(0.5);   // sigmoid, written with tanh: never overflows
        } else {
            a = tanh(a);
        }
        """,
        "minilstm_lstm_activate_gates")

    # c = f * c_prev + i * g;  h = o * tanh(c). The gates are named gi, gf, go, gg here
    # because `i` is the kernel's own element index.
    cell_forward = cupy.ElementwiseKernel(
        "T gi, T gf, T go, T gg, T prev_c", "T c, T tanh_c, T h",
        """
        c = gf * prev_c + gi * gg;
        tanh_c = tanh(c);
        h = go * tanh_c;
        """,
        "minilstm_lstm_cell_forward")

    # The backward of the two lines above and of the gates' squashing functions.
    cell_backward = cupy.ElementwiseKernel(
        "T dh, T dc_in, T gi, T gf, T go, T gg, T prev_c, T tanh_c",
        "T da_i, T da_f, T da_o, T da_g, T dprev_c",
        """
        T dc = dc_in + dh * go * (T(1) - tanh_c * tanh_c);
        da_i = dc * gg * gi * (T(1) - gi);
        da_f = dc * prev_c * gf * (T(1) - gf);
        da_o = dh * tanh_c * go * (T(1) - go);
        da_g = dc * gi * (T(1) - gg * gg);
        dprev_c = dc * gf;
        """,
        "minilstm_lstm_cell_backward")

    # probs = exp(s - rowmax), in place; top (M, 1) broadcasts along the row.
    exp_shifted = cupy.ElementwiseKernel(
        "T top", "T s", "s = exp(s - top)", "minilstm_softmax_exp_shifted")

    # dscores = probs * scale - scale * onehot(y), in place on a contiguous (M, V) array.
    softmax_grad = cupy.ElementwiseKernel(
        "raw I y, int64 V, T scale", "T d",
        "d = d * scale - (i % V == y[i / V] ? scale : T(0))",
        "minilstm_softmax_cross_entropy_grad")

    return {"activate": activate, "cell_forward": cell_forward, "cell_backward": cell_backward,
            "exp_shifted": exp_shifted, "softmax_grad": softmax_grad}


def activate_gates_(a):
    """a (N, 4H), in place: the same as ops/lstm.py's activate_gates_."""
    _kernels()["activate"](a.shape[1], a)
    return a


def cell_forward(gates, prev_c, next_c, tanh_c, next_h):
    """Writes next_c, tanh_c, next_h (N, H) from gates (N, 4H) = [i, f, o, g] and prev_c (N, H)."""
    H = prev_c.shape[1]
    i, f, o, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    _kernels()["cell_forward"](i, f, o, g, prev_c, next_c, tanh_c, next_h)


def cell_backward(dh, dc, gates, prev_c, tanh_c, dgates):
    """Writes da (N, 4H) into dgates; returns dprev_c (N, H). Same as ops/lstm.py's cell_backward."""
    H = prev_c.shape[1]
    i, f, o, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    import cupy

    dprev_c = cupy.empty(prev_c.shape, dtype=prev_c.dtype)
    _kernels()["cell_backward"](dh, dc, i, f, o, g, prev_c, tanh_c,
                                dgates[:, :H], dgates[:, H:2 * H], dgates[:, 2 * H:3 * H], dgates[:, 3 * H:], dprev_c)
    return dprev_c


def softmax_nll_(probs, y, nll):
    """The same as ops/softmax.py's _softmax_nll_, with the elementwise steps fused."""
    import cupy

    top = probs.max(axis=1, keepdims=True)  # (M, 1)
    picked = probs[cupy.arange(probs.shape[0]), y] - top[:, 0]  # s[y] - max
    _kernels()["exp_shifted"](top, probs)
    total = probs.sum(axis=1, keepdims=True)
    probs /= total
    cupy.subtract(cupy.log(total[:, 0]), picked, out=nll)


def softmax_grad_(probs, y, scale):
    """In place on a contiguous (M, V) probs: probs * scale - scale * onehot(y)."""
    _kernels()["softmax_grad"](y, probs.shape[1], probs.dtype.type(scale), probs)
    return probs
