"""Adam (minilstm.optim): against the formula, against torch.optim.Adam, sparse = dense, checkpoint state."""

import sys

import numpy as np
import pytest
from fake_cupy import make_cupy

from minilstm.ops.embedding import RowSparseGrad
from minilstm.optim import AdamState, adam_init, adam_step_, clip_global_norm_

SHAPES = {"W": (7, 5), "b": (5,), "emb": (11, 3), "scalar": ()}


def _params(rng, dtype=np.float64, shapes=SHAPES):
    return {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}


def _grads(rng, params):
    return {k: rng.standard_normal(p.shape).astype(p.dtype) for k, p in params.items()}


def _copy(d):
    return {k: v.copy() for k, v in d.items()}


def _reference(params, grad_steps, lr, b1=0.9, b2=0.999, eps=1e-8):
    """The update written out literally, in float64, one fresh array per term."""
    p = {k: v.astype(np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(x) for k, x in p.items()}
    for t, grads in enumerate(grad_steps, start=1):
        for k in p:
            g = grads[k].astype(np.float64)
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g ** 2
            m_hat = m[k] / (1 - b1 ** t)
            v_hat = v[k] / (1 - b2 ** t)
            p[k] = p[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p, m, v


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-13), (np.float32, 2e-6)])
def test_matches_the_formula(seed, dtype, tol):
    rng = np.random.default_rng(seed)
    shapes = {f"p{i}": tuple(rng.integers(1, 6, size=rng.integers(0, 4))) for i in range(4)}  # random shapes
    params = _params(rng, dtype, shapes)
    hyper = dict(lr=float(rng.uniform(1e-3, 1e-1)), b1=float(rng.uniform(0.5, 0.95)),
                 b2=float(rng.uniform(0.9, 0.9999)), eps=float(10.0 ** rng.uniform(-8, -3)))
    # Gradients of varying size, so steps differ; and one exact 0, a row Adam must still move.
    steps = [{k: g * 10.0 ** rng.uniform(-2, 1) for k, g in _grads(rng, params).items()} for _ in range(6)]
    steps[-1]["p0"][...] = 0.0
    want_p, want_m, want_v = _reference(params, steps, hyper["lr"], hyper["b1"], hyper["b2"], hyper["eps"])

    state = adam_init(params)
    for grads in steps:
        adam_step_(params, _copy(grads), state, hyper["lr"], beta1=hyper["b1"], beta2=hyper["b2"],
                   eps=hyper["eps"])
    assert state.t == len(steps)
    for k in params:
        assert params[k].dtype == dtype and state.m[k].dtype == dtype and state.v[k].dtype == dtype
        np.testing.assert_allclose(params[k], want_p[k], rtol=tol, atol=tol, err_msg=k)
        np.testing.assert_allclose(state.m[k], want_m[k], rtol=tol, atol=tol, err_msg=k)
        np.testing.assert_allclose(state.v[k], want_v[k], rtol=tol, atol=tol * 1e-2, err_msg=k)


def test_matches_torch_adam():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    params = _params(rng)
    tparams = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    opt = torch.optim.Adam(list(tparams.values()), lr=2e-3)  # defaults: betas (0.9, 0.999), eps 1e-8
    state = adam_init(params)
    for _ in range(5):
        grads = _grads(rng, params)
        for k, tp in tparams.items():
            tp.grad = torch.tensor(grads[k], dtype=torch.float64)
        opt.step()
        adam_step_(params, grads, state, lr=2e-3)
    for k, tp in tparams.items():
        diff = np.abs(params[k] - tp.detach().numpy()).max()
        assert diff < 1e-12, (k, diff)
        tstate = opt.state[tp]
        assert np.abs(state.m[k] - tstate["exp_avg"].numpy()).max() < 1e-12
        assert np.abs(state.v[k] - tstate["exp_avg_sq"].numpy()).max() < 1e-12


def _sparse_steps(rng, V, H, dtype):
    """Row-sparse gradients over 5 steps: row 0 only in step 1, row V-1 never, others now and then."""
    out = []
    for step in range(5):
        rows = np.array([0]) if step == 0 else np.sort(rng.choice(np.arange(1, V - 1), size=3, replace=False))
        out.append(RowSparseGrad(rows, rng.standard_normal((rows.size, H)).astype(dtype), (V, H)))
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_sparse_gradient_gives_exactly_the_dense_result(dtype):
    rng = np.random.default_rng(4)
    V, H = 9, 4
    dense_p = {"emb": rng.standard_normal((V, H)).astype(dtype), "b": rng.standard_normal(H).astype(dtype)}
    sparse_p = _copy(dense_p)
    dense_s, sparse_s = adam_init(dense_p), adam_init(sparse_p)
    for g in _sparse_steps(rng, V, H, dtype):
        b = rng.standard_normal(H).astype(dtype)
        adam_step_(dense_p, {"emb": g.to_dense(), "b": b.copy()}, dense_s, lr=0.01)
        adam_step_(sparse_p, {"emb": g, "b": b}, sparse_s, lr=0.01)
    for k in dense_p:  # bit for bit, not merely close
        np.testing.assert_array_equal(sparse_p[k], dense_p[k], err_msg=k)
        np.testing.assert_array_equal(sparse_s.m[k], dense_s.m[k], err_msg=k)
        np.testing.assert_array_equal(sparse_s.v[k], dense_s.v[k], err_msg=k)
    assert np.all(sparse_s.m["emb"][0] != 0)  # row 0 (seen in step 1 only) still has momentum and kept moving


def test_gradients_are_only_read():
    rng = np.random.default_rng(5)
    params = _params(rng)
    grads = _grads(rng, params)
    sparse = RowSparseGrad(np.array([1, 4]), rng.standard_normal((2, 3)), (11, 3))
    grads["emb"] = sparse
    before = _copy({k: g for k, g in grads.items() if k != "emb"})
    values = sparse.values.copy()
    adam_step_(params, grads, adam_init(params), lr=0.1)
    for k, g in before.items():
        np.testing.assert_array_equal(grads[k], g)
    np.testing.assert_array_equal(sparse.values, values)


def test_bad_hyperparameters_are_refused():
    params = {"w": np.zeros(2)}
    for kw in (dict(beta1=1.0), dict(beta2=-0.1), dict(eps=0.0)):
        with pytest.raises(ValueError, match="Adam needs"):
            adam_step_(params, {"w": np.ones(2)}, adam_init(params), lr=0.1, **kw)


def _trained_state(rng):
    params = _params(rng)
    state = adam_init(params)
    for _ in range(3):
        adam_step_(params, _grads(rng, params), state, lr=0.01)
    return params, state


def test_state_round_trips_and_resumes_exactly():
    rng = np.random.default_rng(6)
    params, state = _trained_state(rng)
    arrays = state.to_arrays()
    assert set(arrays) == {f"adam.{kind}.{k}" for kind in "mv" for k in params}
    arrays = {k: a.copy() for k, a in arrays.items()} | {"W": params["W"]}  # a whole checkpoint's arrays
    loaded = AdamState.from_arrays(state.t, arrays, params)
    assert loaded.t == state.t == 3
    for k in params:
        np.testing.assert_array_equal(loaded.m[k], state.m[k])
        np.testing.assert_array_equal(loaded.v[k], state.v[k])
        assert not np.shares_memory(loaded.m[k], arrays[f"adam.m.{k}"])
    # The next step from the loaded state is the next step of the original.
    grads = _grads(rng, params)
    p1, p2 = _copy(params), _copy(params)
    adam_step_(p1, _copy(grads), state, lr=0.01)
    adam_step_(p2, _copy(grads), loaded, lr=0.01)
    for k in params:
        np.testing.assert_array_equal(p1[k], p2[k])


def _broken(arrays, key, value):
    out = dict(arrays)
    if value is None:
        del out[key]
    else:
        out[key] = value
    return out


@pytest.mark.parametrize("what, change, match", [
    ("wrong shape", lambda a: _broken(a, "adam.m.W", np.zeros((5, 7))), r"adam\.m\.W has shape \(5, 7\)"),
    ("missing name", lambda a: _broken(a, "adam.v.b", None), r"missing \['adam\.v\.b'\]"),
    ("unknown name", lambda a: _broken(a, "adam.m.extra", np.zeros(2)), r"unexpected \['adam\.m\.extra'\]"),
    ("NaN", lambda a: _broken(a, "adam.m.b", np.full(5, np.nan)), r"adam\.m\.b contains NaN"),
    ("inf", lambda a: _broken(a, "adam.v.W", np.full((7, 5), np.inf)), r"adam\.v\.W contains NaN or inf"),
    ("wrong dtype", lambda a: _broken(a, "adam.v.emb", a["adam.v.emb"].astype(np.float32)), r"dtype float32"),
    ("negative v", lambda a: _broken(a, "adam.v.b", -np.ones(5)), r"adam\.v\.b has negative entries"),
    ("not an array", lambda a: _broken(a, "adam.m.b", [0.0] * 5), r"adam\.m\.b must be an array"),
])
def test_from_arrays_refuses_a_bad_state(what, change, match):
    rng = np.random.default_rng(7)
    params, state = _trained_state(rng)
    AdamState.from_arrays(state.t, state.to_arrays(), params)  # the unbroken one loads
    with pytest.raises(ValueError, match=match) as info:
        AdamState.from_arrays(state.t, change(state.to_arrays()), params)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("t", [-1, 1.5, True, "3", None])
def test_from_arrays_refuses_a_bad_step_count(t):
    params, state = _trained_state(np.random.default_rng(8))
    with pytest.raises(ValueError, match="step count t"):
        AdamState.from_arrays(t, state.to_arrays(), params)


def test_clipping_then_adam_with_a_row_sparse_gradient():
    """The training step: clip_global_norm_ then adam_step_, on a dict holding a RowSparseGrad,
    gives the dense pair's result (and the clip really is active)."""
    rng = np.random.default_rng(9)
    V, H = 10, 4
    dense_p = {"emb": rng.standard_normal((V, H)), "W": rng.standard_normal((H, H))}
    sparse_p = _copy(dense_p)
    dense_s, sparse_s = adam_init(dense_p), adam_init(sparse_p)
    for g in _sparse_steps(rng, V, H, np.float64):
        g.values *= 10.0
        W = rng.standard_normal((H, H)) * 10.0
        dense_g = {"emb": g.to_dense(), "W": W.copy()}
        sparse_g = {"emb": g, "W": W}
        n_dense = clip_global_norm_(dense_g, max_norm=1.0)
        n_sparse = clip_global_norm_(sparse_g, max_norm=1.0)
        assert n_sparse == pytest.approx(n_dense, rel=1e-14) and n_dense > 1.0
        adam_step_(dense_p, dense_g, dense_s, lr=0.01)
        adam_step_(sparse_p, sparse_g, sparse_s, lr=0.01)
    for k in dense_p:
        np.testing.assert_allclose(sparse_p[k], dense_p[k], rtol=1e-14, atol=1e-15, err_msg=k)
        np.testing.assert_allclose(sparse_s.v[k], dense_s.v[k], rtol=1e-13, atol=0, err_msg=k)
    assert sparse_s.t == dense_s.t == 5


def test_device_arrays_stay_on_the_device(monkeypatch):
    """On CuPy arrays (the strict stand-in of tests/fake_cupy.py) Adam gives the NumPy result, makes no
    implicit host transfer, and from_arrays puts a host checkpoint's moments on the device."""
    cp = make_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cp)
    rng = np.random.default_rng(10)
    host_p = {"emb": rng.standard_normal((6, 3)), "b": rng.standard_normal(3)}
    dev_p = {k: cp.asarray(v) for k, v in host_p.items()}
    host_s, dev_s = adam_init(host_p), adam_init(dev_p)
    assert isinstance(dev_s.m["emb"], cp.ndarray)
    for _ in range(3):
        rows, values, b = np.array([0, 4]), rng.standard_normal((2, 3)), rng.standard_normal(3)
        adam_step_(host_p, {"emb": RowSparseGrad(rows, values, (6, 3)), "b": b}, host_s, lr=0.05)
        adam_step_(dev_p, {"emb": RowSparseGrad(cp.asarray(rows), cp.asarray(values), (6, 3)),
                           "b": cp.asarray(b)}, dev_s, lr=0.05)
    for k in host_p:
        np.testing.assert_array_equal(dev_p[k].get(), host_p[k])
    saved = {k: a.get() for k, a in dev_s.to_arrays().items()}  # as a checkpoint stores them: on the host
    loaded = AdamState.from_arrays(dev_s.t, saved, dev_p)
    assert all(isinstance(a, cp.ndarray) for a in loaded.to_arrays().values())
    np.testing.assert_array_equal(loaded.v["emb"].get(), host_s.v["emb"])
