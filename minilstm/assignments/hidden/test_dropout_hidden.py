"""Hidden tests of the ``dropout`` assignment (run by ``minilstm grade``, never shipped).

Edge cases of the operator (p = 0, errors, float32, reproducibility, a fresh
mask per time step) and of the placement (one and three layers, mode "none",
replaying masks).
"""

import numpy as np
import pytest
from assignment_helpers import expect_close, expect_gradients, keep_mask, randn, rng
from test_dropout import check_masks, loss_by_hand, small_model, tokens_targets

import minilstm
from minilstm import gradcheck
from minilstm.ops import dropout


@pytest.mark.part("dropout:operator")
def test_p_zero_is_the_identity_in_training():
    x = randn(rng(10), 3, 4)
    out, cache = dropout.dropout_forward(x, 0.0, train=True, rng=rng(10))
    expect_close("dropout_forward", "the output with p = 0", out, x)
    if cache.mask is not None:
        raise AssertionError("dropout_forward: with p = 0 (and no mask given) D is the identity: cache.mask None")


@pytest.mark.part("dropout:operator")
def test_errors_for_missing_rng_and_wrong_mask_shape():
    x = np.ones((2, 3))
    with pytest.raises(ValueError):
        dropout.dropout_forward(x, 0.5, train=True)  # neither rng nor mask: say so, do not guess
    with pytest.raises(ValueError):
        dropout.dropout_forward(x, 0.5, train=True, mask=np.ones((3, 2)))


@pytest.mark.part("dropout:operator")
def test_same_seed_same_mask_fresh_mask_per_step_and_call():
    a = dropout.dropout_mask((4, 6, 8), 0.5, rng(11), np.float64)
    b = dropout.dropout_mask((4, 6, 8), 0.5, rng(11), np.float64)
    if not np.array_equal(a, b):
        raise AssertionError("dropout_mask: the same seed gave two different masks; draw only from rng")
    for t in range(1, 6):
        if np.array_equal(a[:, t], a[:, 0]):
            raise AssertionError("dropout_mask: time steps 0 and t share one mask; draw an independent value "
                                 "for every element of shape (the paper uses a fresh mask per step)")
    r = rng(12)
    _, c1 = dropout.dropout_forward(np.ones((5, 7)), 0.5, rng=r)
    _, c2 = dropout.dropout_forward(np.ones((5, 7)), 0.5, rng=r)
    if np.array_equal(c1.mask, c2.mask):
        raise AssertionError("dropout_forward: two calls with one generator gave the same mask")


@pytest.mark.part("dropout:operator")
@pytest.mark.parametrize("p", [0.1, 0.65])
def test_keep_rate_for_other_p_and_float32(p):
    mask = dropout.dropout_mask((300, 100), p, rng(13), np.float32)
    if mask.dtype != np.float32:
        raise AssertionError(f"dropout_mask: asked for float32, got {mask.dtype}")
    kept = float((mask > 0).mean())
    if abs(kept - (1 - p)) > 0.015:
        raise AssertionError(f"dropout_mask: kept {kept:.3f} of the units with p = {p}, expected about {1 - p}")
    expect_close("dropout_mask", "the kept value", mask[mask > 0].max(), np.float32(1 / (1 - p)), tol=1e-6)
    x = np.ones((10, 10), np.float32)
    out, _ = dropout.dropout_forward(x, p, rng=rng(14))
    if out.dtype != np.float32:
        raise AssertionError(f"dropout_forward: float32 input gave {out.dtype} output; keep the dtype")


@pytest.mark.part("dropout:operator")
def test_forward_does_not_modify_x():
    x = randn(rng(15), 4, 5)
    copy = x.copy()
    dropout.dropout_forward(x, 0.5, rng=rng(15))
    if not np.array_equal(x, copy):
        raise AssertionError("dropout_forward: it modified x in place; return a new array x * mask")


@pytest.mark.part("dropout:placement")
@pytest.mark.parametrize("mode,layers", [("zaremba", 1), ("zaremba", 3), ("recurrent", 1), ("recurrent", 3)])
def test_other_depths(mode, layers):
    model = small_model(mode, layers=layers, seed=layers)
    tokens, targets = tokens_targets(20 + layers, N=3, T=2)
    loss, cache, _ = model.forward(tokens, targets, train=True, rng=minilstm.default_rng(20))
    check_masks(model, cache, 3, 2)
    expect_close("LSTMLanguageModel._body", f"the training loss ({mode!r}, {layers} layers)", loss,
                 loss_by_hand(model, tokens, targets, cache.masks))
    report = gradcheck.check_model(model, tokens, targets, max_checks=6, seed=21)
    expect_gradients("LSTMLanguageModel.backward", report, f"{mode!r} mode, {layers} layers")


@pytest.mark.part("dropout:placement")
def test_mode_none_draws_no_mask():
    model = minilstm.LSTMLanguageModel(11, 4, 2, dropout=0.5, dropout_mode="none", dtype="float64", seed=3)
    tokens, targets = tokens_targets(30)
    loss, cache, _ = model.forward(tokens, targets, train=True)
    if cache.masks:
        raise AssertionError(f"LSTMLanguageModel._body: dropout_mode='none' used masks {sorted(cache.masks)}")
    ones = {f"drop{l}": np.ones((2, 3, 4)) for l in range(3)}
    expect_close("LSTMLanguageModel._body", "the loss with dropout_mode='none'", loss,
                 loss_by_hand(model, tokens, targets, ones))


@pytest.mark.part("dropout:placement")
@pytest.mark.parametrize("mode", ["zaremba", "recurrent"])
def test_given_masks_are_replayed(mode):
    model = small_model(mode, seed=4)
    tokens, targets = tokens_targets(31)
    masks = {name: keep_mask(k, (2, 3, 4)) for k, name in enumerate(model.mask_names())}
    loss, cache, _ = model.forward(tokens, targets, train=True, masks=masks)
    for name, m in masks.items():
        if cache.masks.get(name) is None or not np.array_equal(cache.masks[name], m):
            raise AssertionError(f"LSTMLanguageModel._body: the given mask {name} was not the one used; pass "
                                 "masks to self._mask (and use masks['rec{l}'] when given)")
    expect_close("LSTMLanguageModel._body", "the loss with given masks", loss,
                 loss_by_hand(model, tokens, targets, masks))
