"""The backend, and the GPU path checked against NumPy.

Tests marked ``gpu`` skip themselves, with the reason, where CuPy or a CUDA
device is missing; everything else here runs on any machine.
"""

import sys

import numpy as np
import pytest

import minilstm as m
from minilstm import backend
from minilstm import gradcheck as gc

gpu = pytest.mark.gpu


def _gpu_reason():
    try:
        backend._import_cupy()
    except backend.GPUUnavailableError as exc:
        return str(exc)
    return ""


GPU_REASON = _gpu_reason()
needs_gpu = pytest.mark.skipif(bool(GPU_REASON), reason=f"no usable GPU: {GPU_REASON}")


def test_numpy_is_default(monkeypatch):
    monkeypatch.delenv("MINILSTM_DEVICE", raising=False)
    assert backend.get_xp() is np
    assert backend.resolve_device() == "cpu"
    assert backend.get_array_module(np.zeros(2), 3.0) is np


def test_env_variable_selects_device(monkeypatch):
    monkeypatch.setenv("MINILSTM_DEVICE", "cpu")
    assert backend.resolve_device() == "cpu"
    monkeypatch.setenv("MINILSTM_DEVICE", "quantum")
    with pytest.raises(ValueError, match="device must be one of"):
        backend.resolve_device()


def test_cupy_not_imported_for_cpu_use(rng):
    m.LSTMLanguageModel(5, 3, 1).forward(rng.integers(0, 5, (2, 2)), rng.integers(0, 5, (2, 2)))
    assert "cupy" not in sys.modules or not GPU_REASON


def test_clear_error_when_gpu_missing(monkeypatch):
    """Simulate a machine without CuPy: one clear error naming the fix."""
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    with pytest.raises(backend.GPUUnavailableError, match=r'pip install "minilstm\[cuda12\]"'):
        backend.get_xp("gpu")
    with pytest.raises(backend.GPUUnavailableError, match="cuda13"):
        m.LSTMLanguageModel(5, 3, 1, device="gpu")
    assert backend.gpu_available() is False


def test_host_helpers_and_rng():
    params = {"a": np.arange(3.0)}
    moved = backend.params_to(params, "cpu")
    np.testing.assert_array_equal(moved["a"], params["a"])
    assert backend.to_host(params["a"]) is not None
    r1, r2 = backend.default_rng(3), backend.default_rng(3)
    np.testing.assert_array_equal(r1.random(4), r2.random(4))


def test_scatter_add_accumulates_repeats():
    target = np.zeros((3, 2))
    backend.scatter_add(target, np.array([0, 2, 0]), np.ones((3, 2)))
    np.testing.assert_array_equal(target, [[2, 2], [0, 0], [1, 1]])


# ---------------------------------------------------------------------------
# GPU against NumPy, float64, to 1e-10
# ---------------------------------------------------------------------------

@gpu
@needs_gpu
@pytest.mark.parametrize("mode", ["zaremba", "recurrent", "none"])
def test_gpu_model_matches_numpy(rng, mode):
    import cupy

    V, H, L, N, T = 23, 8, 2, 3, 5
    cpu = m.LSTMLanguageModel(V, H, L, dropout=0.4, dropout_mode=mode, dtype="float64", seed=3)
    dev = m.LSTMLanguageModel(V, H, L, dropout=0.4, dropout_mode=mode, dtype="float64", seed=3, device="gpu")
    dev.params = backend.params_to(cpu.params, "gpu")
    tokens, targets = rng.integers(0, V, (N, T)), rng.integers(0, V, (N, T))
    _, cache, _ = cpu.forward(tokens, targets, rng=np.random.default_rng(0))
    masks = cache.masks
    loss_c, cache_c, state_c = cpu.forward(tokens, targets, masks=masks)
    loss_g, cache_g, state_g = dev.forward(cupy.asarray(tokens), cupy.asarray(targets),
                                           masks=backend.params_to(masks, "gpu"))
    assert abs(loss_c - loss_g) <= 1e-10 * abs(loss_c)
    for a, b in zip(state_c, state_g):
        np.testing.assert_allclose(backend.to_host(b), a, rtol=1e-10, atol=1e-12)
    gc_, gg = cpu.backward(cache_c), dev.backward(cache_g)
    for name in gc_:
        np.testing.assert_allclose(backend.to_host(gg[name]), gc_[name], rtol=1e-10, atol=1e-12, err_msg=name)


@gpu
@needs_gpu
def test_gpu_gradcheck_lstm(rng):
    import cupy

    N, T, D, H = 2, 3, 4, 5
    inputs = dict(x=rng.standard_normal((N, T, D)), h0=rng.standard_normal((N, H)),
                  Wx=rng.standard_normal((D, 4 * H)) * 0.5, Wh=rng.standard_normal((H, 4 * H)) * 0.5,
                  b=rng.standard_normal(4 * H) * 0.5, c0=rng.standard_normal((N, H)))
    inputs = {k: cupy.asarray(v) for k, v in inputs.items()}
    report = gc.check_op(m.lstm_forward, m.lstm_backward, inputs, ["x", "h0", "Wx", "Wh", "b", "c0"])
    assert report.passed, str(report)
