"""Hidden tests of the ``lstm`` assignment (run by ``minilstm grade``, never shipped).

Other shapes (N = 1, D != H, longer T), float32, gradients on the final state
(truncated BPTT passes none, but lstm_backward accepts them), and code that
must not overwrite its inputs.
"""

import numpy as np
import pytest
from assignment_helpers import (activated, cell_equations, expect_close, expect_gradients, keep_mask, lstm_inputs,
                                randn, rng)
from test_lstm import check_cell_backward, step_inputs, unrolled

from minilstm import gradcheck
from minilstm.ops import lstm


def unchanged(function, arrays, copies):
    for name, arr in arrays.items():
        if not np.array_equal(arr, copies[name]):
            raise AssertionError(f"{function}: it overwrote its input {name}; compute into new arrays (or the "
                                 "output buffers) instead of updating an argument in place")


@pytest.mark.part("lstm:cell_forward")
@pytest.mark.parametrize("N,H", [(1, 1), (4, 2)])
def test_cell_forward_other_shapes_and_saturation(N, H):
    r = rng(10 + N)
    a = randn(r, N, 4 * H, scale=8.0)  # large pre-activations: saturated gates
    prev_c = randn(r, N, H)
    gates = activated(a)
    inputs = {"gates": gates, "prev_c": prev_c}
    copies = {k: v.copy() for k, v in inputs.items()}
    next_c, tanh_c, next_h = (np.full((N, H), np.nan) for _ in range(3))
    lstm.cell_forward(gates, prev_c, next_c, tanh_c, next_h, np)
    unchanged("cell_forward", inputs, copies)
    h, c = cell_equations(a, prev_c)
    expect_close("cell_forward", "next_c", next_c, c)
    expect_close("cell_forward", "next_h", next_h, h)


@pytest.mark.part("lstm:cell_forward")
def test_cell_forward_float32():
    a, prev_c = randn(rng(11), 2, 12).astype(np.float32), randn(rng(12), 2, 3).astype(np.float32)
    out = [np.zeros((2, 3), np.float32) for _ in range(3)]
    lstm.cell_forward(activated(a).astype(np.float32), prev_c, *out, np)
    expect_close("cell_forward", "next_h in float32", out[2], cell_equations(a.astype(np.float64),
                                                                             prev_c.astype(np.float64))[0], tol=1e-5)


@pytest.mark.part("lstm:cell_backward")
@pytest.mark.parametrize("seed,N,H", [(20, 1, 1), (21, 5, 2), (22, 2, 6)])
def test_cell_backward_other_shapes(seed, N, H):
    check_cell_backward(seed, N, H)


@pytest.mark.part("lstm:cell_backward")
def test_cell_backward_leaves_its_inputs_alone():
    r = rng(23)
    N, H = 3, 2
    a, prev_c, dh, dc = randn(r, N, 4 * H), randn(r, N, H), randn(r, N, H), randn(r, N, H)
    h, c = cell_equations(a, prev_c)
    inputs = {"dh": dh, "dc": dc, "gates": activated(a), "prev_c": prev_c, "tanh_c": np.tanh(c)}
    copies = {k: v.copy() for k, v in inputs.items()}
    lstm.cell_backward(inputs["dh"], inputs["dc"], inputs["gates"], inputs["prev_c"], inputs["tanh_c"],
                        np.zeros((N, 4 * H)), np)
    unchanged("cell_backward", inputs, copies)


@pytest.mark.part("lstm:step")
@pytest.mark.parametrize("N,D,H", [(1, 2, 5), (4, 6, 2)])
def test_step_other_shapes(N, D, H):
    p = step_inputs(30 + N, N=N, D=D, H=H)
    next_h, next_c, _ = lstm.lstm_step_forward(**p)
    h, c = cell_equations(p["x"] @ p["Wx"] + p["prev_h"] @ p["Wh"] + p["b"], p["prev_c"])
    expect_close("lstm_step_forward", "next_h", next_h, h)
    report = gradcheck.check_op(lstm.lstm_step_forward, lstm.lstm_step_backward, p,
                                ["x", "prev_h", "prev_c", "Wx", "Wh", "b"])
    expect_gradients("lstm_step_backward", report)


@pytest.mark.part("lstm:step")
def test_step_float32_and_inputs_untouched():
    p = {k: v.astype(np.float32) for k, v in step_inputs(33).items()}
    copies = {k: v.copy() for k, v in p.items()}
    next_h, next_c, cache = lstm.lstm_step_forward(**p)
    dh, dc = np.ones_like(next_h), np.ones_like(next_c)
    grads = lstm.lstm_step_backward(dh, dc, cache)
    unchanged("lstm_step_forward / lstm_step_backward", p, copies)
    unchanged("lstm_step_backward", {"dnext_h": dh, "dnext_c": dc}, {"dnext_h": np.ones_like(dh),
                                                                      "dnext_c": np.ones_like(dc)})
    for name, arr in zip(["next_h", "next_c"], [next_h, next_c]):
        if arr.dtype != np.float32:
            raise AssertionError(f"lstm_step_forward: {name} is {arr.dtype} for float32 inputs; keep the dtype")
    for name, g in zip(["dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"], grads):
        if g.dtype != np.float32:
            raise AssertionError(f"lstm_step_backward: {name} is {g.dtype} for float32 inputs; keep the dtype")


@pytest.mark.part("lstm:sequence_forward")
@pytest.mark.parametrize("N,T,D,H", [(1, 1, 2, 3), (3, 7, 4, 2)])
def test_sequence_forward_other_shapes(N, T, D, H):
    p = lstm_inputs(40 + T, N=N, T=T, D=D, H=H)
    h, cache = lstm.lstm_forward(**p)
    h_ref, c_ref = unrolled(p)
    expect_close("lstm_forward", "h", h, h_ref)
    expect_close("lstm_forward", "cache.final_h", cache.final_h, h_ref[:, -1])


@pytest.mark.part("lstm:sequence_forward")
def test_sequence_forward_c0_defaults_to_zeros_and_inputs_untouched():
    p = lstm_inputs(43, N=2, T=3, D=2, H=3)
    del p["c0"]
    copies = {k: v.copy() for k, v in p.items()}
    h, _ = lstm.lstm_forward(**p)
    unchanged("lstm_forward", p, copies)
    expect_close("lstm_forward", "h with c0=None (c0 must default to zeros)", h,
                 unrolled({**p, "c0": np.zeros_like(p["h0"])})[0])


@pytest.mark.part("lstm:sequence_forward")
def test_sequence_forward_cache_serves_backward():
    """Whatever lstm_forward stores must let lstm_backward compute the right gradients."""
    p = lstm_inputs(44, N=2, T=3, D=2, H=3)
    p["h_masks"] = keep_mask(44, (2, 3, 3))
    report = gradcheck.check_op(lstm.lstm_forward, lstm.lstm_backward, p, ["x", "h0", "Wx", "Wh", "b", "c0"])
    expect_gradients("lstm_forward", report,
                     "the cache is wrong: it must hold what LSTMCache's docstring lists (gates after their "
                     "nonlinearities, h, c, tanh_c for every step, and h_in, the masked h_{t-1})")


@pytest.mark.part("lstm:sequence_backward")
@pytest.mark.parametrize("N,T,D,H", [(1, 1, 2, 2), (3, 6, 2, 3)])
def test_bptt_other_shapes(N, T, D, H):
    report = gradcheck.check_op(lstm.lstm_forward, lstm.lstm_backward, lstm_inputs(50 + T, N=N, T=T, D=D, H=H),
                                ["x", "h0", "Wx", "Wh", "b", "c0"])
    expect_gradients("lstm_backward", report)


@pytest.mark.part("lstm:sequence_backward")
def test_bptt_with_gradients_on_the_final_state():
    p = lstm_inputs(55, N=2, T=3, D=2, H=3)
    r = rng(56)
    dh, dh_final, dc_final = randn(r, 2, 3, 3), randn(r, 2, 3), randn(r, 2, 3)
    _, cache = lstm.lstm_forward(**p)
    grads = lstm.lstm_backward(dh, cache, dh_final=dh_final, dc_final=dc_final)

    def loss():
        h, c = lstm.lstm_forward(**p)
        return float(np.sum(h * dh) + np.sum(c.final_h * dh_final) + np.sum(c.final_c * dc_final))

    report = gradcheck.GradCheckReport()
    for name, g in zip(["x", "h0", "Wx", "Wh", "b", "c0"], grads):
        report.append(gradcheck.check_array_gradient(loss, p[name], g, name))
    expect_gradients("lstm_backward", report,
                     "dh_final and dc_final are gradients reaching the last step's h and c from outside the chunk")


@pytest.mark.part("lstm:sequence_backward")
def test_bptt_float32_and_upstream_gradient_untouched():
    p = {k: v.astype(np.float32) for k, v in lstm_inputs(57, N=2, T=3, D=2, H=3).items()}
    h, cache = lstm.lstm_forward(**p)
    dh = np.ones_like(h)
    grads = lstm.lstm_backward(dh, cache)
    unchanged("lstm_backward", {"dh": dh}, {"dh": np.ones_like(h)})
    for name, g in zip(["dx", "dh0", "dWx", "dWh", "db", "dc0"], grads):
        if g.dtype != np.float32:
            raise AssertionError(f"lstm_backward: {name} is {g.dtype} for float32 inputs; keep the dtype")
