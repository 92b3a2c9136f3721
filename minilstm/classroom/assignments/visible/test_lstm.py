"""Visible tests of the ``lstm`` assignment: the cell, one step, a whole sequence (BPTT).

Run them with ``python -m pytest tests -q``. Backward passes are compared with
centred finite differences of the forward pass (minilstm.gradcheck), so a
failure names the gradient that is off and by how much.
"""

import numpy as np
import pytest
from assignment_helpers import (activated, cell_equations, expect_close, expect_finite, expect_gradients,
                                expect_shape, keep_mask, lstm_inputs, randn, rng)

from minilstm import gradcheck
from minilstm.ops import lstm

GATES = "ifog"


def cell_case(seed=0, N=3, H=4):
    """Pre-activations a (N, 4H), prev_c, and upstream gradients dh, dc."""
    r = rng(seed)
    return randn(r, N, 4 * H), randn(r, N, H), randn(r, N, H), randn(r, N, H)


# ---------------------------------------------------------------------------- cell_forward

@pytest.mark.part("lstm:cell_forward")
def test_cell_forward_matches_the_equations():
    a, prev_c, _, _ = cell_case()
    N, H = prev_c.shape
    next_c, tanh_c, next_h = (np.full((N, H), np.nan) for _ in range(3))
    lstm.cell_forward(activated(a), prev_c, next_c, tanh_c, next_h, np)
    h, c = cell_equations(a, prev_c)
    expect_close("cell_forward", "next_c (c = f * prev_c + i * g)", next_c, c)
    expect_close("cell_forward", "tanh_c (tanh of next_c)", tanh_c, np.tanh(c))
    expect_close("cell_forward", "next_h (h = o * tanh(c))", next_h, h)


# ---------------------------------------------------------------------------- cell_backward

def check_cell_backward(seed=0, N=3, H=4):
    """Gradient-check cell_backward on L = sum(dh * h + dc * c), gate by gate."""
    a, prev_c, dh, dc = cell_case(seed, N, H)
    h, c = cell_equations(a, prev_c)
    dgates = np.full((N, 4 * H), np.nan)
    dprev_c = lstm.cell_backward(dh.copy(), dc.copy(), activated(a), prev_c.copy(), np.tanh(c), dgates, np)
    for k, g in enumerate(GATES):
        expect_finite("cell_backward", f"dgates[:, {k}H:{k + 1}H] (da_{g})", dgates[:, k * H:(k + 1) * H],
                      "write every gate's gradient into dgates")
    expect_shape("cell_backward", "the returned dprev_c", dprev_c, (N, H))
    blocks = {g: a[:, k * H:(k + 1) * H].copy() for k, g in enumerate(GATES)}

    def loss():
        h_, c_ = cell_equations(np.concatenate([blocks[g] for g in GATES], axis=1), prev_c)
        return float(np.sum(dh * h_ + dc * c_))

    report = gradcheck.GradCheckReport()
    for k, g in enumerate(GATES):
        report.append(gradcheck.check_array_gradient(loss, blocks[g], dgates[:, k * H:(k + 1) * H], f"da_{g}"))
    report.append(gradcheck.check_array_gradient(loss, prev_c, dprev_c, "dprev_c"))
    expect_gradients("cell_backward", report,
                     "da_x is the gradient on gate x's pre-activation: i, f, o, g = dgates[:, :H], [:, H:2H], "
                     "[:, 2H:3H], [:, 3H:]")


@pytest.mark.part("lstm:cell_backward")
def test_cell_backward_against_finite_differences():
    check_cell_backward()


# ---------------------------------------------------------------------------- step

def step_inputs(seed=1, N=3, D=5, H=4):
    p = lstm_inputs(seed, N=N, T=1, D=D, H=H)
    return dict(x=p["x"][:, 0], prev_h=p["h0"], prev_c=p["c0"], Wx=p["Wx"], Wh=p["Wh"], b=p["b"])


@pytest.mark.part("lstm:step")
def test_step_forward_matches_the_equations():
    p = step_inputs()
    next_h, next_c, _ = lstm.lstm_step_forward(**p)
    h, c = cell_equations(p["x"] @ p["Wx"] + p["prev_h"] @ p["Wh"] + p["b"], p["prev_c"])
    expect_close("lstm_step_forward", "next_c", next_c, c)
    expect_close("lstm_step_forward", "next_h", next_h, h)


@pytest.mark.part("lstm:step")
def test_step_backward_against_finite_differences():
    report = gradcheck.check_op(lstm.lstm_step_forward, lstm.lstm_step_backward, step_inputs(),
                                ["x", "prev_h", "prev_c", "Wx", "Wh", "b"])
    expect_gradients("lstm_step_backward", report,
                     "the six gradients are returned in the order dx, dprev_h, dprev_c, dWx, dWh, db")


# ---------------------------------------------------------------------------- sequence_forward

def unrolled(p, h_masks=None):
    """lstm_forward written as T calls of lstm_step_forward: the definition of the sequence."""
    prev_h, prev_c, hs, cs = p["h0"], p["c0"], [], []
    for t in range(p["x"].shape[1]):
        h_in = prev_h if h_masks is None else prev_h * h_masks[:, t]
        prev_h, prev_c, _ = lstm.lstm_step_forward(p["x"][:, t], h_in, prev_c, p["Wx"], p["Wh"], p["b"])
        hs.append(prev_h)
        cs.append(prev_c)
    return np.stack(hs, axis=1), np.stack(cs, axis=1)


@pytest.mark.part("lstm:sequence_forward")
def test_sequence_forward_is_the_step_repeated():
    p = lstm_inputs(2, N=2, T=4, D=3, H=3)
    h, cache = lstm.lstm_forward(**p)
    h_ref, c_ref = unrolled(p)
    for t in range(h_ref.shape[1]):
        expect_close("lstm_forward", f"h[:, {t}]", h[:, t], h_ref[:, t])
    expect_close("lstm_forward", "cache.final_c (the cell state after the last step)", cache.final_c, c_ref[:, -1])


@pytest.mark.part("lstm:sequence_forward")
def test_sequence_forward_with_recurrent_dropout_masks():
    p = lstm_inputs(3, N=2, T=4, D=3, H=3)
    masks = keep_mask(3, (2, 4, 3))
    h, _ = lstm.lstm_forward(**p, h_masks=masks)
    expect_close("lstm_forward", "h with h_masks (each h_{t-1} times h_masks[:, t] before Wh)", h,
                 unrolled(p, masks)[0])


# ---------------------------------------------------------------------------- sequence_backward

@pytest.mark.part("lstm:sequence_backward")
def test_bptt_against_finite_differences():
    report = gradcheck.check_op(lstm.lstm_forward, lstm.lstm_backward, lstm_inputs(4, N=2, T=4, D=3, H=3),
                                ["x", "h0", "Wx", "Wh", "b", "c0"])
    expect_gradients("lstm_backward", report, "returned in the order dx, dh0, dWx, dWh, db, dc0")


@pytest.mark.part("lstm:sequence_backward")
def test_bptt_through_recurrent_dropout_masks():
    p = lstm_inputs(5, N=2, T=4, D=3, H=3)
    p["h_masks"] = keep_mask(5, (2, 4, 3))
    report = gradcheck.check_op(lstm.lstm_forward, lstm.lstm_backward, p, ["x", "h0", "Wx", "Wh", "b", "c0"])
    expect_gradients("lstm_backward", report,
                     "with h_masks, h_{t-1} * h_masks[:, t] is what enters Wh: the mask scales both dh_{t-1} and "
                     "the h_{t-1} used in dWh")
