"""Every op's backward pass against centred finite differences, in float64.

The tolerance is the project's: relative error <= 1e-7 (gradcheck.DEFAULT_TOL).
A correct backward pass lands around 1e-10; any single wrong line lands >1e-3.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minilstm as m
from minilstm import gradcheck as gc

TOL = 1e-7


def lstm_inputs(rng, N=3, T=4, D=5, H=6, scale=0.5):
    return dict(
        x=rng.standard_normal((N, T, D)), h0=rng.standard_normal((N, H)),
        Wx=rng.standard_normal((D, 4 * H)) * scale, Wh=rng.standard_normal((H, 4 * H)) * scale,
        b=rng.standard_normal(4 * H) * scale, c0=rng.standard_normal((N, H)),
    )


def assert_ok(report):
    assert len(report) > 0
    for r in report:
        assert r.checked > 0
    assert report.passed, str(report)
    assert report.worst.max_rel_error < TOL


def test_affine(rng):
    inputs = dict(x=rng.standard_normal((3, 4, 5)), W=rng.standard_normal((5, 7)), b=rng.standard_normal(7))
    assert_ok(gc.check_op(m.affine_forward, m.affine_backward, inputs, ["x", "W", "b"]))


def test_embedding(rng):
    tokens = rng.integers(0, 6, size=(3, 5))
    tokens[0, :3] = 2  # repeated ids: the scatter-add must accumulate them
    inputs = dict(tokens=tokens, W=rng.standard_normal((6, 4)))
    report = gc.check_op(m.embedding_forward, lambda d, c: (m.embedding_backward(d, c),), inputs, ["W"])
    assert_ok(report)


def test_softmax_cross_entropy(rng):
    scores = rng.standard_normal((2, 3, 7)) * 3
    y = rng.integers(0, 7, size=(2, 3))
    report = gc.check_op(m.softmax_cross_entropy_forward,
                         lambda d, c: (m.softmax_cross_entropy_backward(d, c),),
                         dict(scores=scores, y=y), ["scores"])
    assert_ok(report)


def test_dropout_with_fixed_mask(rng):
    x = rng.standard_normal((3, 4, 5))
    _, cache = m.dropout_forward(x, 0.4, rng=np.random.default_rng(1))

    def fwd(x):
        return m.dropout_forward(x, 0.4, mask=cache.mask)

    report = gc.check_op(fwd, lambda d, c: (m.dropout_backward(d, c),), dict(x=x), ["x"])
    assert_ok(report)


def test_lstm_step(rng):
    p = lstm_inputs(rng)
    inputs = dict(x=p["x"][:, 0].copy(), prev_h=p["h0"], prev_c=p["c0"], Wx=p["Wx"], Wh=p["Wh"], b=p["b"])
    assert_ok(gc.check_op(m.lstm_step_forward, m.lstm_step_backward, inputs,
                          ["x", "prev_h", "prev_c", "Wx", "Wh", "b"]))


def test_lstm_sequence(rng):
    inputs = lstm_inputs(rng)
    assert_ok(gc.check_op(m.lstm_forward, m.lstm_backward, inputs, ["x", "h0", "Wx", "Wh", "b", "c0"]))


def test_lstm_sequence_with_recurrent_masks(rng):
    inputs = lstm_inputs(rng)
    _, mc = m.dropout_forward(np.empty((3, 4, 6)), 0.5, rng=np.random.default_rng(3))
    inputs["h_masks"] = mc.mask
    assert_ok(gc.check_op(m.lstm_forward, m.lstm_backward, inputs, ["x", "h0", "Wx", "Wh", "b", "c0"]))


def test_lstm_gradient_on_final_state(rng):
    """lstm_backward also accepts gradients on the final (h, c)."""
    inputs = lstm_inputs(rng, T=3)

    def fwd(**kw):
        h, cache = m.lstm_forward(**kw)
        return h, cache.final_c, cache

    def bwd(dh, dcT, cache):
        return m.lstm_backward(dh, cache, dc_final=dcT)

    assert_ok(gc.check_op(fwd, bwd, inputs, ["x", "h0", "Wx", "Wh", "b", "c0"]))


@given(N=st.integers(1, 4), T=st.integers(1, 5), D=st.integers(1, 5), H=st.integers(1, 5),
       seed=st.integers(0, 2**16))
def test_lstm_sequence_property(N, T, D, H, seed):
    rng = np.random.default_rng(seed)
    inputs = lstm_inputs(rng, N, T, D, H)
    assert_ok(gc.check_op(m.lstm_forward, m.lstm_backward, inputs, ["x", "h0", "Wx", "Wh", "b", "c0"],
                          seed=seed))


def test_direction_check_on_large_tensor(rng):
    """The random-direction check covers every element in two evaluations."""
    inputs = dict(x=rng.standard_normal((20, 30)), W=rng.standard_normal((30, 40)), b=rng.standard_normal(40))
    out, cache = m.affine_forward(**inputs)
    dout = rng.standard_normal(out.shape)
    _, dW, _ = m.affine_backward(dout, cache)

    def f():
        return float(np.sum(m.affine_forward(**inputs)[0] * dout))

    res = gc.check_direction(f, inputs["W"], dW, "W")
    assert res.checked == 1200 and res.passed, str(res)
    res = gc.check_array_gradient(f, inputs["W"], dW, "W", max_checks=50)
    assert res.checked == 50 and res.passed, str(res)


# ---------------------------------------------------------------------------
# The checker must be able to fail: break one backward line, watch it fail.
# ---------------------------------------------------------------------------

def test_checker_catches_a_wrong_gradient(rng):
    inputs = lstm_inputs(rng)

    def broken_backward(dh, cache):
        dx, dh0, dWx, dWh, db, dc0 = m.lstm_backward(dh, cache)
        dWh = dWh.copy()
        dWh[1, 2] *= 1.01  # a 1% error in one element
        return dx, dh0, dWx, dWh, db, dc0

    report = gc.check_op(m.lstm_forward, broken_backward, inputs, ["x", "h0", "Wx", "Wh", "b", "c0"])
    assert not report.passed
    failed = [r for r in report if not r.passed]
    assert [r.name for r in failed] == ["Wh"]
    assert failed[0].worst_index == (1, 2)
    assert "FAIL" in str(report) and "Wh" in str(report)
    with pytest.raises(AssertionError, match="Wh"):
        report.raise_if_failed()


def test_checker_catches_a_missing_gate_derivative(rng, monkeypatch):
    """Drop the sigmoid slope of the forget gate inside the real cell backward."""
    from minilstm.ops import lstm as lstm_mod

    real = lstm_mod.cell_backward

    def broken(dh, dc, gates, prev_c, tanh_c, dgates, xp):
        out = real(dh, dc, gates, prev_c, tanh_c, dgates, xp)
        H = prev_c.shape[1]
        f = gates[:, H:2 * H]
        dgates[:, H:2 * H] /= f * (1.0 - f)  # as if the derivative sigm' had been forgotten
        return out

    monkeypatch.setattr(lstm_mod, "cell_backward", broken)
    report = gc.check_op(m.lstm_forward, m.lstm_backward, lstm_inputs(rng), ["x", "h0", "Wx", "Wh", "b", "c0"])
    assert not report.passed


def test_checker_refuses_float32(rng):
    inputs = dict(x=rng.standard_normal((2, 3)).astype(np.float32),
                  W=rng.standard_normal((3, 4)).astype(np.float32), b=np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="float64"):
        gc.check_op(m.affine_forward, m.affine_backward, inputs, ["x", "W", "b"])


def test_second_order_stencil_is_available(rng):
    inputs = dict(x=rng.standard_normal((3, 5)), W=rng.standard_normal((5, 4)), b=rng.standard_normal(4))
    report = gc.check_op(m.affine_forward, m.affine_backward, inputs, ["x", "W", "b"], order=2)
    assert_ok(report)
