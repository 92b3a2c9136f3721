"""Per-token weights in the softmax cross-entropy, and the LSTM stack on its own.

The weights let a translation model count only its target words; the stack is
the part every experiment shares. Both by hand, both gradient-checked in float64.
"""

import numpy as np
import pytest

import minilstm as m
from minilstm import gradcheck as gc
from minilstm.stack import LSTMStack


def assert_ok(report):
    assert len(report) > 0 and all(r.checked > 0 for r in report)
    assert report.passed, str(report)
    assert report.worst.max_rel_error < 1e-7


def test_weighted_loss_gradient_check():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((3, 4, 6)) * 2
    y = rng.integers(0, 6, size=(3, 4))
    w = (rng.random((3, 4)) < 0.6).astype(np.float64) * rng.uniform(0.5, 2.0, (3, 4))
    report = gc.check_op(lambda scores: m.softmax_cross_entropy_forward(scores, y, weights=w),
                         lambda d, c: (m.softmax_cross_entropy_backward(d, c),),
                         dict(scores=scores), ["scores"])
    assert_ok(report)


def test_weighted_loss_counts_only_weighted_tokens():
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((2, 5, 7))
    y = rng.integers(0, 7, size=(2, 5))
    w = np.zeros((2, 5))
    w[0, 2:] = 1.0
    w[1, :1] = 1.0
    loss, cache = m.softmax_cross_entropy_forward(scores, y, normalizer=1.0, weights=w)
    lp = scores - scores.max(-1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    picked = -np.take_along_axis(lp, y[..., None], -1)[..., 0]
    assert loss == pytest.approx(picked[w > 0].sum(), rel=1e-12)
    d = m.softmax_cross_entropy_backward(1.0, cache)
    assert np.all(d[w == 0] == 0.0)  # an uncounted token gets no gradient at all
    assert np.abs(d[w > 0]).sum() > 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weights_of_ones_are_bit_identical(dtype):
    rng = np.random.default_rng(2)
    scores = rng.standard_normal((4, 6, 9)).astype(dtype)
    y = rng.integers(0, 9, size=(4, 6))
    plain, pc = m.softmax_cross_entropy_forward(scores, y)
    ones, oc = m.softmax_cross_entropy_forward(scores, y, weights=np.ones((4, 6), dtype))
    assert plain == ones
    assert np.array_equal(m.softmax_cross_entropy_backward(1.0, pc), m.softmax_cross_entropy_backward(1.0, oc))


def test_bad_weights_are_refused():
    scores = np.zeros((2, 3, 4))
    y = np.zeros((2, 3), dtype=np.int64)
    with pytest.raises(m.checks.ShapeError, match="weights"):
        m.softmax_cross_entropy_forward(scores, y, weights=np.ones((3, 2)))
    with pytest.raises(ValueError, match="0 or positive"):
        m.softmax_cross_entropy_forward(scores, y, weights=-np.ones((2, 3)))
    with pytest.raises(ValueError, match="weights"):
        m.softmax_cross_entropy_forward(scores, y, weights=np.full((2, 3), np.nan))
    with pytest.raises(TypeError, match="weights"):
        m.softmax_cross_entropy_forward(scores, y, weights=np.ones((2, 3), np.float32))


def _stack_params(stack, rng):
    return {k: rng.uniform(-0.5, 0.5, s) for k, s in stack.param_shapes().items()}


@pytest.mark.parametrize("mode", ["none", "zaremba", "recurrent", "variational"])
def test_stack_with_dense_inputs_gradient_check(mode):
    """D (input size) differs from H: the first layer's Wx is (D, 4H); input, weights and initial state checked."""
    rng = np.random.default_rng(3)
    N, T, D, H, L = 3, 4, 5, 6, 2
    stack = LSTMStack(D, H, L, dropout=0.4, dropout_mode=mode, dtype=np.float64)
    assert stack.param_shapes()["lstm1.Wx"] == (D, 4 * H) and stack.param_shapes()["lstm2.Wx"] == (H, 4 * H)
    params = _stack_params(stack, rng)
    _, cache, _ = stack.forward(rng.standard_normal((N, T, D)), (np.zeros((L, N, H)),) * 2, params, True,
                                np.random.default_rng(7))
    masks = cache.masks  # fixed masks: the forward is a fixed function
    assert sorted(masks) == sorted(stack.mask_names())
    names = list(params)

    def forward(x, h0, c0, **ws):  # the output (N, T, H); the initial state is an input here
        out, cache, _ = stack.forward(x, (h0, c0), ws, True, None, masks)
        return out, cache

    def backward(dout, cache):
        grads = {}
        dx, (dh0, dc0) = stack.backward(dout, cache, grads)
        return (dx, dh0, dc0, *[grads[k] for k in names])

    inputs = dict(x=rng.standard_normal((N, T, D)), h0=rng.standard_normal((L, N, H)) * 0.5,
                  c0=rng.standard_normal((L, N, H)) * 0.5, **params)
    report = gc.check_op(forward, backward, inputs, ["x", "h0", "c0", *names])
    assert_ok(report)


def test_language_model_is_embedding_stack_decoder():
    """The model's layers are the stack's: same parameter names and shapes, masks named by the stack."""
    model = m.LSTMLanguageModel(11, 8, 3, dropout=0.5, dropout_mode="recurrent", seed=0)
    assert isinstance(model.stack, LSTMStack)
    for name, shape in model.stack.param_shapes().items():
        assert model.params[name].shape == shape
    assert model.mask_names() == model.stack.mask_names()
    tokens = np.zeros((2, 3), dtype=np.int64)
    _, cache, _ = model.forward(tokens, tokens)
    assert cache.masks is cache.stack.masks and len(cache.drops) == 4 and len(cache.lstms) == 3
