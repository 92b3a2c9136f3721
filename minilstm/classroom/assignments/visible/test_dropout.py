"""Visible tests of the ``dropout`` assignment: the operator D, and where the model applies it.

The paper's point (Zaremba et al. 2014, section 3.2): D goes on the
non-recurrent connections only, ``dropout_mode="zaremba"``; the naive
``"recurrent"`` placement also drops h_{t-1} at every step. What came after
(Gal & Ghahramani 2016): ``"variational"``, one mask per sequence, shared by
every time step, on the inputs, the output and h_{t-1}.
"""

import numpy as np
import pytest
from assignment_helpers import (expect_close, expect_gradients, expect_inverted_mask, expect_shape, keep_mask,
                                randn, rng)

import minilstm
from minilstm import gradcheck
from minilstm.ops import dropout

# ---------------------------------------------------------------------------- operator


@pytest.mark.part("dropout:operator")
def test_mask_values_and_keep_rate():
    p = 0.3
    mask = dropout.dropout_mask((200, 50), p, rng(0), np.float64)
    expect_inverted_mask("dropout_mask", "the mask", mask, p, tol=0.02)  # 10,000 draws: standard error 0.005
    if mask.dtype != np.float64 or mask.shape != (200, 50):
        raise AssertionError(f"dropout_mask: got dtype {mask.dtype} and shape {mask.shape}, "
                             "expected the dtype and shape asked for")


@pytest.mark.part("dropout:operator")
def test_forward_applies_the_given_mask():
    x = randn(rng(1), 3, 4, 5)
    mask = keep_mask(1, x.shape)
    out, cache = dropout.dropout_forward(x, 0.5, train=True, mask=mask)
    expect_close("dropout_forward", "the output with a given mask (x * mask)", out, x * mask)
    if cache.mask is not mask:
        raise AssertionError("dropout_forward: cache.mask must be the mask that was used")


@pytest.mark.part("dropout:operator")
def test_forward_draws_a_mask_that_keeps_the_expectation():
    x = np.ones((100, 20, 10))
    out, cache = dropout.dropout_forward(x, 0.4, train=True, rng=rng(2))
    if cache.mask is None or cache.mask.shape != x.shape:
        raise AssertionError("dropout_forward: in training with p > 0 it must draw a mask of x's shape "
                             "(with dropout_mask) and return it in the cache")
    if abs(out.mean() - 1.0) > 0.02:  # 20,000 draws
        raise AssertionError(f"dropout_forward: the mean of D(1) is {out.mean():.3f}, expected 1 (inverted "
                             "dropout scales the kept units by 1/(1-p) so E[D(x)] = x)")


@pytest.mark.part("dropout:operator")
def test_evaluation_is_the_identity():
    x = randn(rng(3), 4, 6)
    out, cache = dropout.dropout_forward(x, 0.5, train=False, rng=rng(3))
    expect_close("dropout_forward", "the output with train=False (D is the identity at test time)", out, x)
    if cache.mask is not None:
        raise AssertionError("dropout_forward: with train=False the cache's mask must be None")


@pytest.mark.part("dropout:operator")
def test_backward_against_finite_differences():
    x = randn(rng(4), 3, 5)
    mask = keep_mask(4, x.shape, p=0.3) * 1.0  # a float mask of 0 and 1/0.7

    def fwd(x):
        return dropout.dropout_forward(x, 0.3, train=True, mask=mask)

    report = gradcheck.check_op(fwd, dropout.dropout_backward, {"x": x}, ["x"])
    expect_gradients("dropout_backward", report)
    dout = randn(rng(5), 3, 5)
    expect_close("dropout_backward", "the gradient when no mask was used (identity)",
                 dropout.dropout_backward(dout, dropout.DropoutCache(None)), dout)


# ---------------------------------------------------------------------------- placement

def small_model(mode, layers=2, seed=0):
    return minilstm.LSTMLanguageModel(vocab_size=11, hidden_size=4, num_layers=layers, dropout=0.5,
                                      dropout_mode=mode, init_scale=0.4, dtype="float64", seed=seed)


def tokens_targets(seed=0, N=2, T=3, V=11):
    r = rng(seed)
    return r.integers(0, V, (N, T)), r.integers(0, V, (N, T))


def check_masks(model, cache, N, T):
    expected = model.mask_names()
    if sorted(cache.masks) != sorted(expected):
        raise AssertionError(
            f"LSTMStack.forward: in {model.dropout_mode!r} mode a training forward must use the masks "
            f"{expected}, it used {sorted(cache.masks)} (see mask_names(): drop0 on the embedding, drop{{l}} on h "
            f"of layer l{', rec{l} on h_{t-1} inside layer l' if model.dropout_mode == 'recurrent' else ''})")
    for name, mask in cache.masks.items():
        if tuple(mask.shape) != (N, T, model.H):
            raise AssertionError(f"LSTMStack.forward: mask {name} has shape {tuple(mask.shape)}, expected "
                                 f"(N, T, H) = {(N, T, model.H)}: a fresh mask for every time step")


@pytest.mark.part("dropout:placement")
@pytest.mark.parametrize("mode", ["zaremba", "recurrent"])
def test_forward_places_dropout(mode):
    model = small_model(mode)
    tokens, targets = tokens_targets(1)
    N, T = tokens.shape
    loss, cache, _ = model.forward(tokens, targets, train=True, rng=minilstm.default_rng(7))
    check_masks(model, cache, N, T)
    for layer, lc in enumerate(cache.lstms, start=1):
        if mode == "zaremba" and lc.h_masks is not None:
            raise AssertionError(f"LSTMStack.forward: layer {layer} dropped h_{{t-1}} in 'zaremba' mode; "
                                 "the recurrent connection must never see D there (the paper's point)")
        if mode == "recurrent" and lc.h_masks is None:
            raise AssertionError(f"LSTMStack.forward: layer {layer} got no h_masks in 'recurrent' mode; "
                                 f"pass the rec{layer} mask to lstm_forward(..., h_masks=...)")
    # Masks of ones keep every unit: training then computes exactly what evaluation computes.
    ones = {name: np.ones((N, T, model.H)) for name in model.mask_names()}
    expect_close("LSTMStack.forward", f"the training loss with masks of ones in {mode!r} mode (must equal "
                 "the evaluation loss)", model.forward(tokens, targets, train=True, masks=ones)[0],
                 model.forward(tokens, targets, train=False)[0])
    # Every mask is applied somewhere: changing any one of them changes the loss.
    masks = {name: keep_mask(10 + k, (N, T, model.H)) for k, name in enumerate(model.mask_names())}
    base, cache, _ = model.forward(tokens, targets, train=True, masks=masks)
    for name, mask in masks.items():
        if cache.masks.get(name) is None or not np.array_equal(cache.masks[name], mask):
            raise AssertionError(f"LSTMStack.forward: the given mask {name} was not the one used; pass masks "
                                 "to self._mask (and use masks['rec{l}'] when given)")
        if model.forward(tokens, targets, train=True, masks={**masks, name: ones[name]})[0] == base:
            raise AssertionError(f"LSTMStack.forward: the mask {name} has no effect on the loss; apply it "
                                 "where mask_names() says it goes")


@pytest.mark.part("dropout:placement")
@pytest.mark.parametrize("mode", ["zaremba", "recurrent"])
def test_backward_through_dropout(mode):
    model = small_model(mode, seed=1)
    tokens, targets = tokens_targets(2)
    report = gradcheck.check_model(model, tokens, targets, max_checks=12, seed=3)
    expect_gradients("LSTMStack.backward", report,
                     f"'{mode}' mode: every D of the forward pass needs its dropout_backward, in reverse order")


@pytest.mark.part("dropout:placement")
def test_no_dropout_in_evaluation():
    model = small_model("zaremba")
    tokens, targets = tokens_targets(3)
    loss, cache, _ = model.forward(tokens, targets, train=False)
    if cache.masks:
        raise AssertionError(f"LSTMStack.forward: train=False used masks {sorted(cache.masks)}; "
                             "D is the identity at evaluation")
    plain = minilstm.LSTMLanguageModel(vocab_size=11, hidden_size=4, num_layers=2, dropout=0.0, dtype="float64")
    plain.params = model.params  # the same weights without dropout: its training loss is the evaluation loss
    expect_close("LSTMStack.forward", "the evaluation loss (no dropout)", loss,
                 plain.forward(tokens, targets, train=True)[0])


# ---------------------------------------------------------------------------- variational


@pytest.mark.part("dropout:variational")
def test_broadcast_over_time_shares_one_mask_per_sequence():
    mask = keep_mask(20, (3, 1, 4))
    view = dropout.broadcast_over_time(mask, (3, 5, 4))
    expect_shape("broadcast_over_time", "the view of an (N, 1, H) mask for shape (N, T, H)", np.asarray(view),
                 (3, 5, 4))
    for t in range(5):
        expect_close("broadcast_over_time", f"the mask at step t = {t} (every step reads the same mask)",
                     view[:, t], mask[:, 0])
    full = keep_mask(21, (3, 5, 4))
    if dropout.broadcast_over_time(full, (3, 5, 4)) is not full:
        raise AssertionError("broadcast_over_time: a mask already of shape (N, T, H) must be returned unchanged")


@pytest.mark.part("dropout:variational")
def test_variational_masks_are_drawn_once_per_sequence():
    p, N, T = 0.4, 50, 6
    model = minilstm.LSTMLanguageModel(vocab_size=11, hidden_size=40, num_layers=2, dropout=p,
                                       dropout_mode="variational", dtype="float64", seed=0)
    tokens, targets = tokens_targets(4, N=N, T=T)
    _, cache, _ = model.forward(tokens, targets, train=True, rng=minilstm.default_rng(8))
    if sorted(cache.masks) != sorted(model.mask_names()):
        raise AssertionError(f"LSTMStack._get_mask: in 'variational' mode a training forward must record the "
                             f"masks {model.mask_names()} in used, it recorded {sorted(cache.masks)}")
    for name, mask in sorted(cache.masks.items(), key=lambda item: not item[0].startswith("rec")):
        # rec{l} come straight from _sequence_mask; drop{l} through _mask
        function = "LSTMLanguageModel." + ("_sequence_mask" if name.startswith("rec") else "_mask")
        if tuple(mask.shape) != (N, 1, model.H):
            raise AssertionError(f"{function}: mask {name} has shape {tuple(mask.shape)}, "
                                 f"expected (N, 1, H) = {(N, 1, model.H)}: one mask per sequence, shared by every "
                                 "time step (a fresh one per step is zaremba's D)")
        expect_inverted_mask("LSTMStack._get_mask", f"mask {name}", mask, p,
                             tol=0.05, hint=" (draw it with dropout_mask)")  # 2,000 draws: standard error 0.011
    # As applied: dropout's cache and the LSTM's h_masks see the same mask at every step.
    applied = [(f"drop{k}", d.mask) for k, d in enumerate(cache.drops)]
    applied += [(f"rec{k + 1}", lc.h_masks) for k, lc in enumerate(cache.lstms)]
    for name, mask in applied:
        if mask is None or tuple(mask.shape) != (N, T, model.H):
            raise AssertionError(f"LSTMStack._get_mask: the mask {name} as applied has shape "
                                 f"{getattr(mask, 'shape', None)}, expected (N, T, H) = {(N, T, model.H)}")
        for t in range(T):
            expect_close("broadcast_over_time", f"mask {name} as applied at step t = {t} (the sequence's mask)",
                         mask[:, t], cache.masks[name][:, 0])


@pytest.mark.part("dropout:variational")
def test_backward_through_variational_dropout():
    model = small_model("variational", seed=2)
    tokens, targets = tokens_targets(5, N=3, T=4)
    masks = {name: keep_mask(30 + k, model.mask_shape(3, 4)) for k, name in enumerate(model.mask_names())}
    loss, cache, _ = model.forward(tokens, targets, train=True, masks=masks)
    for name, mask in masks.items():
        if cache.masks.get(name) is None or not np.array_equal(cache.masks[name], mask):
            raise AssertionError(f"LSTMStack._get_mask: the given mask {name} was not the one used; "
                                 f"use masks[{name!r}] when given")
    report = gradcheck.check_model(model, tokens, targets, masks=masks, max_checks=12, seed=3)
    expect_gradients("LSTMStack._get_mask", report,
                     "'variational' mode: apply the sequence's mask with dropout_forward, so that the backward "
                     "goes back through the same (N, 1, H) mask at every step")
