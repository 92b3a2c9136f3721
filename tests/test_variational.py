"""Variational dropout (Gal & Ghahramani 2016): one (N, 1, H) mask per sequence, shared by every time step,
on the inputs, the outputs and h_{t-1}; masks that broadcast over time; the split fast paths (their
equality with the plain model is in test_fast_paths.py); one source for the named choices."""

import numpy as np
import pytest

import minilstm as m
from minilstm import choices
from minilstm import gradcheck as gc
from minilstm.ops.embedding import is_row_sparse
from minilstm.ops.lstm import split_gates

V, H, L, N, T = 11, 5, 2, 3, 4


def model(mode="variational", **kw):
    kw = {"dropout": 0.5, "init_scale": 0.3, "dtype": "float64", "seed": 1, **kw}
    return m.LSTMLanguageModel(V, H, L, dropout_mode=mode, **kw)


def data(rng):
    # Repeated tokens on purpose (the sparse embedding gradient must add their contributions).
    return rng.integers(0, 5, (N, T)), rng.integers(0, V, (N, T))


def dense(g):
    return g.to_dense() if is_row_sparse(g) else g


@pytest.mark.parametrize("tie", [False, True])
def test_variational_model_passes_the_gradient_check(rng, tie):
    """Every element of every parameter, float64, fixed masks, a carried-in state."""
    mod = model(tie_weights=tie)
    tokens, targets = data(rng)
    state = tuple(rng.standard_normal((L, N, H)) * 0.5 for _ in range(2))
    report = gc.check_model(mod, tokens, targets, state=state)
    assert [r.name for r in report] == list(mod.params)
    assert report.passed, str(report)
    assert report.worst.max_rel_error < 1e-7


def test_one_mask_per_sequence_on_inputs_outputs_and_h(rng):
    mod = model()
    tokens, targets = data(rng)
    assert mod.mask_names() == ["drop0", "drop1", "drop2", "rec1", "rec2"]
    assert mod.mask_shape(N, T) == (N, 1, H)
    _, cache, _ = mod.forward(tokens, targets)
    assert sorted(cache.masks) == sorted(mod.mask_names())
    for name, mask in cache.masks.items():
        assert mask.shape == (N, 1, H), name
        assert set(np.unique(mask)) <= {0.0, 2.0}, name
    for layer, lc in enumerate(cache.lstms, 1):  # the LSTM got h_{t-1} masks: the same one at every step
        for t in range(T):
            np.testing.assert_array_equal(lc.h_masks[:, t], cache.masks[f"rec{layer}"][:, 0])
    # Redrawn at every forward: a "sequence" is one chunk of truncated BPTT.
    _, cache2, _ = mod.forward(tokens, targets)
    assert any(not np.array_equal(cache.masks[k], cache2.masks[k]) for k in cache.masks)


def test_variational_equals_the_same_masks_tiled_over_time(rng):
    """Passing the (N, 1, H) masks or their explicit (N, T, H) copies gives the same loss and gradients,
    and that equals recurrent mode (a fresh-mask-per-step model) fed those tiled masks."""
    var, rec = model(), model("recurrent")
    tokens, targets = data(rng)
    _, c0, _ = var.forward(tokens, targets)
    masks = c0.masks
    tiled = {k: np.repeat(v, T, axis=1) for k, v in masks.items()}
    loss_a, ca, _ = var.forward(tokens, targets, masks=masks)
    loss_b, cb, _ = var.forward(tokens, targets, masks=tiled)
    loss_c, cc, _ = rec.forward(tokens, targets, masks=tiled)
    assert loss_a == loss_b == loss_c
    ga, gb, gc_ = var.backward(ca), var.backward(cb), rec.backward(cc)
    for name in var.params:
        np.testing.assert_array_equal(ga[name], gb[name])
        np.testing.assert_array_equal(ga[name], gc_[name])


def test_dropout_forward_broadcasts_a_per_sequence_mask(rng):
    x = rng.standard_normal((N, T, H))
    mask = m.dropout_mask((N, 1, H), 0.5, rng, np.float64)
    out, cache = m.dropout_forward(x, 0.5, mask=mask)
    np.testing.assert_array_equal(out, x * np.repeat(mask, T, axis=1))
    assert cache.mask.shape == (N, T, H) and np.shares_memory(cache.mask, mask)  # a view, not a copy
    dout = rng.standard_normal((N, T, H))
    np.testing.assert_array_equal(m.dropout_backward(dout, cache), dout * mask)
    for bad in [(N, 2, H), (1, 1, H), (N, 1, H + 1), (N, H)]:
        with pytest.raises(ValueError, match="mask must have the shape of x"):
            m.dropout_forward(x, 0.5, mask=np.ones(bad))


def test_lstm_h_masks_broadcast_over_time(rng):
    D = 4
    x, h0, c0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    Wx, Wh, b = rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)), rng.standard_normal(4 * H)
    mask = m.dropout_mask((N, 1, H), 0.4, rng, np.float64)
    h1, c1 = m.lstm_forward(x, h0, Wx, Wh, b, c0=c0, h_masks=mask)
    h2, c2 = m.lstm_forward(x, h0, Wx, Wh, b, c0=c0, h_masks=np.repeat(mask, T, axis=1))
    np.testing.assert_array_equal(h1, h2)
    dh = rng.standard_normal((N, T, H))
    for a, b_ in zip(m.lstm_backward(dh, c1), m.lstm_backward(dh, c2)):
        np.testing.assert_array_equal(a, b_)
    with pytest.raises(ValueError, match="h_masks"):
        m.lstm_forward(x, h0, Wx, Wh, b, h_masks=np.ones((N, 2, H)))
    # And the op itself, by finite differences, with the per-sequence mask fixed.
    inputs = dict(x=x, h0=h0, Wx=Wx * 0.5, Wh=Wh * 0.5, b=b * 0.5, c0=c0)
    report = gc.check_op(lambda **kw: m.lstm_forward(**kw, h_masks=mask), m.lstm_backward, inputs,
                         ["x", "h0", "Wx", "Wh", "b", "c0"])
    assert report.passed and report.worst.max_rel_error < 1e-7, str(report)


def test_evaluation_drops_nothing(rng):
    """Dropout is a training device: in evaluation the variational model is the model without D."""
    var, none = model(), model("none")
    tokens, targets = data(rng)
    assert var.forward(tokens, targets, train=False)[0] == none.forward(tokens, targets, train=False)[0]


def test_reuse_buffers_still_means_all_of_them():
    fast, plain = model(reuse_buffers=True), model()
    assert fast.reuse_buffers and fast.reuse_workspace and fast.inplace_softmax and fast.sparse_embedding_grad
    assert not (plain.reuse_buffers or plain.reuse_workspace or plain.inplace_softmax
                or plain.sparse_embedding_grad)
    one = model(reuse_buffers=True, sparse_embedding_grad=False)  # all but one
    assert one.reuse_workspace and one.inplace_softmax and not one.sparse_embedding_grad and not one.reuse_buffers


def test_inplace_softmax_alone_refuses_a_second_backward(rng):
    mod = model(inplace_softmax=True)
    tokens, targets = data(rng)
    _, cache, _ = mod.forward(tokens, targets)
    mod.backward(cache)
    with pytest.raises(RuntimeError, match="already used by a backward pass"):
        mod.backward(cache)


def test_gate_layout_is_written_once():
    a = np.arange(2 * 4 * 3).reshape(2, 12)
    i, f, o, g = split_gates(a)
    for k, gate in enumerate((i, f, o, g)):
        np.testing.assert_array_equal(gate, a[:, 3 * k:3 * (k + 1)])
        assert np.shares_memory(gate, a)
    assert m.ops.lstm.GATES == ("i", "f", "o", "g")


def test_one_source_for_the_named_choices():
    from minilstm import bench, cli, config, data, model as model_mod

    assert model_mod.DROPOUT_MODES is choices.DROPOUT_MODES is m.DROPOUT_MODES
    assert "variational" in choices.DROPOUT_MODES
    assert data.DATASETS is choices.DATASETS
    parser = cli.build_parser()
    sub = {name: p for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)
           for name, p in a.choices.items()}

    def opt(p, flag):
        return next(a for a in p._actions if flag in a.option_strings)

    assert tuple(opt(sub["train"], "--dropout-mode").choices) == choices.DROPOUT_MODES
    assert tuple(opt(sub["gradcheck"], "--dropout-mode").choices) == choices.DROPOUT_MODES
    for cmd in ("train", "eval", "sample", "lab"):
        assert tuple(opt(sub[cmd], "--dataset").choices) == choices.DATASETS, cmd
        assert tuple(opt(sub[cmd], "--device").choices) == choices.DEVICES, cmd
    assert tuple(opt(sub["train"], "--dtype").choices) == choices.DTYPES
    with pytest.raises(SystemExit):  # bench takes every recipe, and only those
        bench.main(["--configs", "no-such-config", "--out", ""])
    assert set(config.CONFIGS) >= {"medium-variational-tied", "large-variational-tied"}
    with pytest.raises(ValueError, match="dropout_mode must be one of"):
        config.get_config("tiny", dropout_mode="bayesian")


def test_variational_tied_recipes_are_the_papers_recipes_otherwise():
    from minilstm.config import CONFIGS

    for size in ("medium", "large"):
        new, old = CONFIGS[f"{size}-variational-tied"], CONFIGS[size]
        assert new.dropout_mode == "variational" and new.tie_weights
        diff = {k for k, v in new.to_dict().items() if old.to_dict()[k] != v}
        assert diff == {"name", "dropout_mode", "tie_weights"}
