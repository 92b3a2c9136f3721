"""The dropout operator D and where the model puts it."""

import numpy as np
import pytest

import minilstm as m


def test_eval_mode_is_identity(rng):
    x = rng.standard_normal((4, 5, 6))
    out, cache = m.dropout_forward(x, 0.5, train=False, rng=rng)
    assert out is x and cache.mask is None
    np.testing.assert_array_equal(m.dropout_backward(x, cache), x)


def test_mask_values_and_expectation():
    rng = np.random.default_rng(0)
    x = np.ones((200, 50, 40))
    p = 0.3
    out, cache = m.dropout_forward(x, p, rng=rng)
    values = np.unique(cache.mask)
    np.testing.assert_allclose(values, [0.0, 1.0 / (1 - p)])
    # E[D(x)] = x: the mean of 400,000 draws is within a few standard errors of 1.
    se = np.sqrt(p / (1 - p) / x.size)
    assert abs(out.mean() - 1.0) < 5 * se
    assert abs((cache.mask == 0).mean() - p) < 0.005


def test_fresh_mask_per_time_step():
    _, cache = m.dropout_forward(np.ones((8, 10, 16)), 0.5, rng=np.random.default_rng(0))
    steps = [cache.mask[:, t] for t in range(10)]
    assert all(not np.array_equal(steps[0], s) for s in steps[1:])


def test_injected_mask_is_used_and_returned(rng):
    x = rng.standard_normal((2, 3))
    mask = np.array([[2.0, 0.0, 2.0], [0.0, 2.0, 0.0]])
    out, cache = m.dropout_forward(x, 0.5, mask=mask)
    assert cache.mask is mask
    np.testing.assert_array_equal(out, x * mask)
    with pytest.raises(ValueError, match="shape"):
        m.dropout_forward(x, 0.5, mask=mask[:, :2])


def test_same_seed_same_masks():
    a = m.dropout_mask((5, 6), 0.5, np.random.default_rng(7), np.dtype(np.float32))
    b = m.dropout_mask((5, 6), 0.5, np.random.default_rng(7), np.dtype(np.float32))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32


def test_bad_probability(rng):
    with pytest.raises(ValueError, match="dropout probability"):
        m.dropout_forward(np.ones(3), 1.0, rng=rng)
    with pytest.raises(ValueError, match="rng"):
        m.dropout_forward(np.ones(3), 0.5)


# ---------------------------------------------------------------------------
# Placement in the model
# ---------------------------------------------------------------------------

def model_and_masks(mode, rng, L=2, N=3, T=6, V=10, H=8):
    model = m.LSTMLanguageModel(V, H, L, dropout=0.5, dropout_mode=mode, init_scale=0.5, dtype="float64", seed=0)
    tokens = rng.integers(0, V, (N, T))
    _, cache, _ = model.forward(tokens, tokens, rng=np.random.default_rng(1))
    return model, tokens, cache


def test_mask_names_per_mode(rng):
    assert sorted(model_and_masks("zaremba", rng)[2].masks) == ["drop0", "drop1", "drop2"]
    assert sorted(model_and_masks("recurrent", rng)[2].masks) == ["drop0", "drop1", "drop2", "rec1", "rec2"]
    assert model_and_masks("none", rng)[2].masks == {}


def test_zaremba_recurrent_connections_carry_no_mask(rng):
    """Perturb the mask on the input of layer 2 at time t=2 only.

    With Zaremba's placement, D sits on the vertical (layer-to-layer) arrow.
    Layer 1's activations do not change at all, and neither do layer 2's before t=2.
    If D were on h(t-1) a mask in layer 1 would also affect layer 1 at later steps;
    here we check the converse too: changing the layer-1 input mask at t=2
    changes layer 1 at t >= 2 only through the recurrence, with no mask of its own.
    """
    model, tokens, cache = model_and_masks("zaremba", rng)
    masks = {k: v.copy() for k, v in cache.masks.items()}
    _, base, _ = model.forward(tokens, tokens, masks=masks)
    changed = {k: v.copy() for k, v in masks.items()}
    changed["drop1"][:, 2] = 2.0 - changed["drop1"][:, 2]  # flip kept/dropped at t=2 only
    _, pert, _ = model.forward(tokens, tokens, masks=changed)
    h1, h1p = base.lstms[0].h, pert.lstms[0].h
    h2, h2p = base.lstms[1].h, pert.lstms[1].h
    np.testing.assert_array_equal(h1, h1p)  # layer 1 untouched
    np.testing.assert_array_equal(h2[:, :2], h2p[:, :2])  # the past untouched
    assert not np.allclose(h2[:, 2:], h2p[:, 2:])  # present and future change, through memory
    # No mask is applied to h(t-1): the recurrent input is exactly the previous output.
    for lc in base.lstms:
        assert lc.h_masks is None and lc.h_in is None


def test_zaremba_memory_is_not_masked_between_steps(rng):
    """The state handed from step t to t+1 equals the cell's own output (no D in between)."""
    model, tokens, cache = model_and_masks("zaremba", rng)
    lc = cache.lstms[0]
    x = cache.lstms[0].x
    p = model.params
    prev_h, prev_c = lc.h0, lc.c0
    for t in range(tokens.shape[1]):
        prev_h, prev_c, _ = m.lstm_step_forward(x[:, t], prev_h, prev_c, p["lstm1.Wx"], p["lstm1.Wh"], p["lstm1.b"])
        np.testing.assert_allclose(lc.h[:, t], prev_h, rtol=1e-12)


def test_recurrent_mode_masks_previous_h(rng):
    model, tokens, cache = model_and_masks("recurrent", rng)
    lc = cache.lstms[0]
    mask = cache.masks["rec1"]
    assert lc.h_masks is mask
    np.testing.assert_array_equal(lc.h_in[:, 0], lc.h0 * mask[:, 0])
    np.testing.assert_array_equal(lc.h_in[:, 3], lc.h[:, 2] * mask[:, 3])
    # Changing a recurrent mask at t=3 changes layer 1 itself from t=3 on.
    masks = {k: v.copy() for k, v in cache.masks.items()}
    masks["rec1"][:, 3] = 2.0 - masks["rec1"][:, 3]
    _, pert, _ = model.forward(tokens, tokens, masks=masks)
    np.testing.assert_array_equal(pert.lstms[0].h[:, :3], lc.h[:, :3])
    assert not np.allclose(pert.lstms[0].h[:, 3:], lc.h[:, 3:])


def test_dropout_off_in_eval_and_for_p_zero(rng):
    model, tokens, _ = model_and_masks("zaremba", rng)
    a = model.forward(tokens, tokens, train=False)[0]
    b = model.forward(tokens, tokens, train=False)[0]
    assert a == b
    zero = m.LSTMLanguageModel(10, 8, 2, dropout=0.0, dtype="float64", seed=0)
    _, cache, _ = zero.forward(tokens, tokens)
    assert cache.masks == {}
    assert zero.forward(tokens, tokens)[0] == zero.forward(tokens, tokens, train=False)[0]


def test_model_masks_are_seeded(rng):
    model, tokens, _ = model_and_masks("zaremba", rng)
    _, c1, _ = model.forward(tokens, tokens, rng=np.random.default_rng(9))
    _, c2, _ = model.forward(tokens, tokens, rng=np.random.default_rng(9))
    for k in c1.masks:
        np.testing.assert_array_equal(c1.masks[k], c2.masks[k])
