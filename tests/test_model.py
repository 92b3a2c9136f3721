"""The whole language model: gradients, dropout placement, determinism."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minilstm as m
from minilstm import gradcheck as gc


def small_model(mode="zaremba", p=0.5, L=2, V=11, H=5, scale=0.3, seed=1, dtype="float64"):
    return m.LSTMLanguageModel(V, H, L, dropout=p, dropout_mode=mode, init_scale=scale, dtype=dtype, seed=seed)


def data(rng, N=3, T=4, V=11):
    return rng.integers(0, V, (N, T)), rng.integers(0, V, (N, T))


@pytest.mark.parametrize("mode", ["zaremba", "recurrent", "none"])
def test_whole_model_gradients_every_parameter(rng, mode):
    """2 layers, dropout on with fixed masks, every element of every parameter."""
    model = small_model(mode)
    tokens, targets = data(rng)
    state = tuple(rng.standard_normal((2, 3, 5)) * 0.5 for _ in range(2))  # a carried-in state
    report = gc.check_model(model, tokens, targets, state=state)
    assert [r.name for r in report] == list(model.params)
    assert report.passed, str(report)
    assert report.worst.max_rel_error < 1e-7


def test_model_direction_check(rng):
    model = small_model(H=7, V=13)
    tokens, targets = data(rng, V=13)
    report = gc.check_model(model, tokens, targets, max_checks=20, direction=True)
    assert len(report) == 2 * len(model.params)
    assert report.passed, str(report)


@given(N=st.integers(1, 3), T=st.integers(1, 4), V=st.integers(2, 9), H=st.integers(1, 4),
       L=st.integers(1, 3), p=st.floats(0.0, 0.8), mode=st.sampled_from(m.DROPOUT_MODES),
       seed=st.integers(0, 1000))
def test_model_gradients_property(N, T, V, H, L, p, mode, seed):
    rng = np.random.default_rng(seed)
    model = small_model(mode, p, L, V, H, seed=seed)
    tokens, targets = data(rng, N, T, V)
    report = gc.check_model(model, tokens, targets, seed=seed)
    assert report.passed, str(report)


def test_gradient_check_fails_on_a_broken_model_backward(rng, monkeypatch):
    """Break one line (the '+=' of the embedding scatter-add becomes '=') and watch it fail."""
    from minilstm.ops import embedding as emb

    def broken_scatter(target, idx, vals):
        target[idx] = vals  # repeated words now keep only their last gradient
        return target

    monkeypatch.setattr(emb, "scatter_add", broken_scatter)
    model = small_model(V=4)
    tokens = np.array([[1, 1, 1, 2]] * 3)
    report = gc.check_model(model, tokens, tokens[:, ::-1].copy())
    failed = [r.name for r in report if not r.passed]
    assert failed == ["embed.W"], str(report)


# ---------------------------------------------------------------------------
# Forward properties
# ---------------------------------------------------------------------------

@given(N=st.integers(1, 4), T=st.integers(1, 6), D=st.integers(1, 5), H=st.integers(1, 5),
       seed=st.integers(0, 1000))
def test_lstm_forward_equals_steps(N, T, D, H, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D))
    h0, c0 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    Wx, Wh, b = rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)), rng.standard_normal(4 * H)
    h, cache = m.lstm_forward(x, h0, Wx, Wh, b, c0=c0)
    prev_h, prev_c = h0, c0
    for t in range(T):
        prev_h, prev_c, _ = m.lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        np.testing.assert_allclose(h[:, t], prev_h, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(cache.final_h, prev_h, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(cache.final_c, prev_c, rtol=1e-12, atol=1e-13)


def test_lstm_c0_defaults_to_zero(rng):
    x, h0 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5))
    W = [rng.standard_normal(s) for s in [(4, 20), (5, 20), (20,)]]
    h1, _ = m.lstm_forward(x, h0, *W)
    h2, _ = m.lstm_forward(x, h0, *W, c0=np.zeros((2, 5)))
    np.testing.assert_array_equal(h1, h2)


@given(seed=st.integers(0, 1000), N=st.integers(2, 5), L=st.integers(1, 3))
def test_forward_does_not_depend_on_batch_order(seed, N, L):
    rng = np.random.default_rng(seed)
    model = small_model("none", 0.0, L=L)
    tokens, targets = data(rng, N=N)
    perm = rng.permutation(N)
    lp, (h, c) = model.log_probs(tokens)
    lp2, (h2, c2) = model.log_probs(tokens[perm])
    np.testing.assert_allclose(lp[perm], lp2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h[:, perm], h2, rtol=1e-12, atol=1e-12)
    loss1 = model.forward(tokens, targets, train=False)[0]
    loss2 = model.forward(tokens[perm], targets[perm], train=False)[0]
    assert loss1 == pytest.approx(loss2, rel=1e-12)


def test_state_carrying_equals_one_long_sequence(rng):
    """Two chunks with the state carried equal one forward over the concatenation."""
    model = small_model("none", 0.0)
    tokens, targets = data(rng, T=8)
    full, _ = model.log_probs(tokens)
    a, state = model.log_probs(tokens[:, :5])
    b, _ = model.log_probs(tokens[:, 5:], state)
    np.testing.assert_allclose(np.concatenate([a, b], axis=1), full, rtol=1e-12, atol=1e-12)


def test_loss_is_summed_over_time_and_averaged_over_batch(rng):
    model = small_model("none", 0.0)
    tokens, targets = data(rng, N=3, T=4)
    lp, _ = model.log_probs(tokens)
    nll = -np.take_along_axis(lp, targets[..., None], axis=-1)[..., 0]  # (N, T)
    loss = model.forward(tokens, targets, train=False)[0]
    assert loss == pytest.approx(nll.sum() / 3, rel=1e-12)


def test_same_seed_same_run(rng):
    tokens, targets = data(rng)
    a, b = small_model(seed=5, dtype="float32"), small_model(seed=5, dtype="float32")
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    la, ca, _ = a.forward(tokens, targets)
    lb, cb, _ = b.forward(tokens, targets)
    assert la == lb
    for k in ca.masks:
        np.testing.assert_array_equal(ca.masks[k], cb.masks[k])
    ga, gb = a.backward(ca), b.backward(cb)
    for k in ga:
        np.testing.assert_array_equal(ga[k], gb[k])
    c = small_model(seed=6, dtype="float32")
    assert not np.array_equal(c.params["out.W"], a.params["out.W"])


def test_init_is_uniform_in_scale():
    model = m.LSTMLanguageModel(50, 20, 2, init_scale=0.05, seed=0)
    for name, p in model.params.items():
        assert p.dtype == np.float32
        assert np.abs(p).max() <= 0.05, name
        if p.size > 100:
            assert np.abs(p).max() > 0.045, name  # spans the range


def test_float32_training_dtype_end_to_end(rng):
    model = small_model(dtype="float32")
    tokens, targets = data(rng)
    _, cache, state = model.forward(tokens, targets)
    assert state[0].dtype == np.float32
    for g in model.backward(cache).values():
        assert g.dtype == np.float32
