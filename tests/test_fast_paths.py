"""The training fast path (reused buffers, in-place softmax, row-sparse embedding gradient) computes
exactly what the plain path computes, and refuses to be misused instead of returning wrong numbers."""

import numpy as np
import pytest

import minilstm as m
from minilstm import gradcheck as gc
from minilstm.ops.embedding import RowSparseGrad, is_row_sparse
from minilstm.optim import clip_global_norm_, global_norm, sgd_step_


def twin_models(mode="zaremba", dtype="float64", V=13, H=6, L=2):
    kw = dict(dropout=0.4, dropout_mode=mode, init_scale=0.3, dtype=dtype, seed=3)
    return m.LSTMLanguageModel(V, H, L, **kw), m.LSTMLanguageModel(V, H, L, reuse_buffers=True, **kw)


def batch(rng, N=4, T=5, V=13):
    # Repeated tokens on purpose: the sparse embedding gradient must add their contributions.
    return rng.integers(0, 5, (N, T)), rng.integers(0, V, (N, T))


# Each fast path on its own, and all of them together (reuse_buffers).
FAST = [dict(reuse_buffers=True), dict(reuse_workspace=True), dict(inplace_softmax=True),
        dict(sparse_embedding_grad=True)]


@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("mode", ["zaremba", "recurrent", "variational", "none"])
@pytest.mark.parametrize("fast_kw", FAST, ids=lambda kw: next(iter(kw)))
def test_a_fast_path_never_changes_what_a_plain_call_returns(rng, mode, tie, fast_kw):
    """The same losses, gradients, updates and carried state as the plain model, step after step."""
    kw = dict(dropout=0.4, dropout_mode=mode, init_scale=0.3, dtype="float64", seed=3, tie_weights=tie)
    plain, fast = m.LSTMLanguageModel(13, 6, 2, **kw), m.LSTMLanguageModel(13, 6, 2, **kw, **fast_kw)
    sparse = fast.sparse_embedding_grad and not tie  # a tied matrix also gets the decoder's dense gradient
    tokens, targets = batch(rng)
    state = None
    for _ in range(3):  # several steps: the reused buffers must not leak one step into the next
        loss_p, cache_p, state_p = plain.forward(tokens, targets, state, train=True)
        loss_f, cache_f, state_f = fast.forward(tokens, targets, state, train=True)
        assert loss_f == loss_p
        gp, gf = plain.backward(cache_p), fast.backward(cache_f)
        assert list(gf) == list(gp) == list(plain.params)
        assert is_row_sparse(gf["embed.W"]) == sparse and not is_row_sparse(gp["embed.W"])
        for name in plain.params:
            got = gf[name].to_dense() if is_row_sparse(gf[name]) else gf[name]
            np.testing.assert_allclose(got, gp[name], rtol=1e-12, atol=1e-15, err_msg=name)
        clip_global_norm_(gp, 0.5)
        clip_global_norm_(gf, 0.5)
        sgd_step_(plain.params, gp, 0.3)
        sgd_step_(fast.params, gf, 0.3)
        for name in plain.params:
            np.testing.assert_allclose(fast.params[name], plain.params[name], rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(state_f[0], state_p[0])
        np.testing.assert_array_equal(state_f[1], state_p[1])
        state = state_p


def test_fast_model_passes_the_gradient_check(rng):
    _, fast = twin_models()
    tokens, targets = batch(rng)
    report = gc.check_model(fast, tokens, targets)
    assert report.passed, str(report)
    assert report.worst.max_rel_error < 1e-7


def test_stale_or_reused_cache_is_refused(rng):
    _, fast = twin_models()
    tokens, targets = batch(rng)
    _, old, _ = fast.forward(tokens, targets, train=True)
    _, new, _ = fast.forward(tokens, targets, train=True)  # overwrites the buffers `old` points into
    with pytest.raises(RuntimeError, match="reused by a later forward"):
        fast.backward(old)
    fast.backward(new)
    with pytest.raises(RuntimeError, match="already used by a backward pass"):
        fast.backward(new)


def test_any_forward_in_between_makes_a_cache_stale(rng):
    """Evaluation forwards and log_probs reuse the score buffer too: backward must notice."""
    plain, fast = twin_models()
    tokens, targets = batch(rng)
    for between in (lambda: fast.forward(tokens, targets, train=False), lambda: fast.log_probs(tokens)):
        _, cache, _ = fast.forward(tokens, targets, train=True)
        between()
        with pytest.raises(RuntimeError, match="reused by a later forward"):
            fast.backward(cache)


def test_evaluation_with_reused_buffers_gives_the_same_numbers(rng):
    plain, fast = twin_models()
    tokens, targets = batch(rng)
    for _ in range(2):
        assert fast.forward(tokens, targets, train=False)[0] == plain.forward(tokens, targets, train=False)[0]
        np.testing.assert_array_equal(fast.log_probs(tokens)[0], plain.log_probs(tokens)[0])
    ids = rng.integers(0, 13, 200)
    assert m.evaluate(fast, ids, batch_size=2, num_steps=7).nll == m.evaluate(plain, ids, 2, 7).nll


def test_row_sparse_embedding_gradient_equals_the_dense_scatter_add(rng):
    V, H = 9, 3
    W = rng.standard_normal((V, H))
    tokens = np.array([[1, 4, 1], [4, 4, 8]])
    _, cache = m.embedding_forward(tokens, W)
    dout = rng.standard_normal((2, 3, H))
    dense = m.embedding_backward(dout, cache)
    sparse = m.embedding_backward(dout, cache, sparse=True)
    assert sorted(sparse.rows.tolist()) == [1, 4, 8]  # each word once, however often it occurs
    np.testing.assert_allclose(sparse.to_dense(), dense, rtol=1e-14)
    np.testing.assert_allclose(dense[4], dout[0, 1] + dout[1, 0] + dout[1, 1], rtol=1e-14)


def test_optimizer_treats_sparse_and_dense_gradients_alike(rng):
    g_dense = rng.standard_normal((6, 2))
    g_dense[[0, 2, 5]] = 0.0
    rows = np.array([1, 3, 4])
    sparse = RowSparseGrad(rows, g_dense[rows].copy(), (6, 2))
    other = rng.standard_normal(4)
    assert global_norm({"e": sparse, "o": other}) == pytest.approx(global_norm({"e": g_dense, "o": other}),
                                                                   rel=1e-14)
    p_dense, p_sparse = rng.standard_normal((6, 2)), None
    p_sparse = p_dense.copy()
    dense_grads, sparse_grads = {"e": g_dense.copy(), "o": other.copy()}, {"e": sparse, "o": other.copy()}
    n1 = clip_global_norm_(dense_grads, 0.1)
    n2 = clip_global_norm_(sparse_grads, 0.1)
    assert n1 == pytest.approx(n2, rel=1e-14)
    o1, o2 = np.zeros(4), np.zeros(4)
    sgd_step_({"e": p_dense, "o": o1}, dense_grads, 0.7)
    sgd_step_({"e": p_sparse, "o": o2}, sparse_grads, 0.7)
    np.testing.assert_allclose(p_sparse, p_dense, rtol=1e-14)
    np.testing.assert_allclose(o2, o1, rtol=1e-14)


def test_affine_and_softmax_write_into_given_buffers(rng):
    x, W, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5)), rng.standard_normal(5)
    buf = np.empty((2, 3, 5))
    out, cache = m.affine_forward(x, W, b, out=buf)
    assert out is buf
    np.testing.assert_allclose(out, m.affine_forward(x, W, b)[0], rtol=1e-14)
    with pytest.raises(ValueError, match="out must have shape"):
        m.affine_forward(x, W, b, out=np.empty((6, 5)))
    y = rng.integers(0, 5, (2, 3))
    loss_copy, c_copy = m.softmax_cross_entropy_forward(out, y)
    expected = m.softmax_cross_entropy_backward(1.0, c_copy)
    np.testing.assert_allclose(m.softmax_cross_entropy_backward(1.0, c_copy), expected)  # re-usable
    loss_inplace, c_inplace = m.softmax_cross_entropy_forward(out, y, overwrite_scores=True)
    assert loss_inplace == pytest.approx(loss_copy, rel=1e-14)
    d = m.softmax_cross_entropy_backward(1.0, c_inplace, overwrite_cache=True)
    np.testing.assert_allclose(d, expected, rtol=1e-13)
    assert np.shares_memory(d, buf)  # no new (N, T, V) array was made
    dW = np.empty((4, 5))
    _, got_dW, _ = m.affine_backward(d, cache, dW_out=dW)
    assert got_dW is dW
    np.testing.assert_allclose(dW, m.affine_backward(d, cache)[1], rtol=1e-14)
