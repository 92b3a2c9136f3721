"""The backend, and the GPU path checked against NumPy.

Tests marked ``gpu`` skip themselves, with the reason, where CuPy or a CUDA
device is missing; everything else here runs on any machine.
"""

import os
import subprocess
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


def test_cupy_not_imported_for_cpu_use():
    """In a fresh interpreter (this module itself imports CuPy to find out whether a GPU is there)."""
    code = ("import sys, numpy as np, minilstm as m; r = np.random.default_rng(0); "
            "m.LSTMLanguageModel(5, 3, 1).forward(r.integers(0, 5, (2, 2)), r.integers(0, 5, (2, 2))); "
            "print('cupy' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "MINILSTM_DEVICE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"


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


@gpu
@needs_gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fused_kernels_match_the_numpy_functions(rng, dtype):
    """Each CuPy kernel of ops/cuda_kernels.py against the NumPy function it replaces."""
    import cupy

    from minilstm.ops import cuda_kernels, lstm, softmax

    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=2e-5, atol=1e-6)
    N, T, H, V = 3, 4, 5, 17
    pre = (rng.standard_normal((N, T, 4 * H)) * 3).astype(dtype)  # a strided (N, 4H) view per step, as in BPTT
    a_np, a_gpu = pre.copy(), cupy.asarray(pre)
    lstm.activate_gates_(a_np[:, 1], H, np)
    cuda_kernels.activate_gates_(a_gpu[:, 1])
    np.testing.assert_allclose(a_gpu.get(), a_np, **tol)

    gates = a_np[:, 1]
    prev_c = rng.standard_normal((N, H)).astype(dtype)
    outs_np = [np.empty((N, H), dtype) for _ in range(3)]
    outs_gpu = [cupy.empty((N, H), dtype) for _ in range(3)]
    lstm.cell_forward(gates, prev_c, *outs_np, np)
    cuda_kernels.cell_forward(cupy.asarray(gates), cupy.asarray(prev_c), *outs_gpu)
    for got, want in zip(outs_gpu, outs_np):
        np.testing.assert_allclose(got.get(), want, **tol)

    dh, dc = (rng.standard_normal((N, H)).astype(dtype) for _ in range(2))
    tanh_c = outs_np[1]
    dg_np, dg_gpu = np.empty((N, 4 * H), dtype), cupy.empty((N, 4 * H), dtype)
    dprev_np = lstm.cell_backward(dh, dc, gates, prev_c, tanh_c, dg_np, np)
    dprev_gpu = cuda_kernels.cell_backward(*(cupy.asarray(v) for v in (dh, dc, gates, prev_c, tanh_c)), dg_gpu)
    np.testing.assert_allclose(dg_gpu.get(), dg_np, **tol)
    np.testing.assert_allclose(dprev_gpu.get(), dprev_np, **tol)

    scores = (rng.standard_normal((N * T, V)) * 4).astype(dtype)
    y = rng.integers(0, V, N * T)
    loss_np, c_np = softmax.softmax_cross_entropy_forward(scores, y)
    loss_gpu, c_gpu = softmax.softmax_cross_entropy_forward(cupy.asarray(scores), cupy.asarray(y))
    assert loss_gpu == pytest.approx(loss_np, rel=tol["rtol"])
    np.testing.assert_allclose(c_gpu.probs.get(), c_np.probs, **tol)
    d_np = softmax.softmax_cross_entropy_backward(0.7, c_np)
    d_gpu = softmax.softmax_cross_entropy_backward(0.7, c_gpu, overwrite_cache=True)
    np.testing.assert_allclose(d_gpu.get(), d_np, **tol)


@gpu
@needs_gpu
def test_gpu_training_fast_path_matches_numpy(rng):
    """reuse_buffers (the training loop's setting) on CuPy: same loss, same update as NumPy."""
    import cupy

    from minilstm.optim import clip_global_norm_, sgd_step_

    V, H, L, N, T = 29, 6, 2, 4, 5
    kw = dict(dropout=0.3, dtype="float64", seed=2, reuse_buffers=True)
    cpu = m.LSTMLanguageModel(V, H, L, **kw)
    dev = m.LSTMLanguageModel(V, H, L, device="gpu", **kw)
    dev.params = backend.params_to(cpu.params, "gpu")
    tokens, targets = rng.integers(0, 6, (N, T)), rng.integers(0, V, (N, T))  # repeated tokens on purpose
    masks = cpu.forward(tokens, targets)[1].masks
    for _ in range(2):
        loss_c, cache_c, _ = cpu.forward(tokens, targets, masks=masks)
        loss_g, cache_g, _ = dev.forward(cupy.asarray(tokens), cupy.asarray(targets),
                                         masks=backend.params_to(masks, "gpu"))
        assert loss_g == pytest.approx(loss_c, rel=1e-10)
        gcpu, ggpu = cpu.backward(cache_c), dev.backward(cache_g)
        assert clip_global_norm_(ggpu, 0.5) == pytest.approx(clip_global_norm_(gcpu, 0.5), rel=1e-10)
        sgd_step_(cpu.params, gcpu, 0.5)
        sgd_step_(dev.params, ggpu, 0.5)
        for name in cpu.params:
            np.testing.assert_allclose(dev.params[name].get(), cpu.params[name], rtol=1e-10, atol=1e-12)



def _nvrtc():
    """CuPy's NVRTC binding when CuPy and the NVRTC library are installed (no GPU needed), else None."""
    try:
        from cupy.cuda import nvrtc

        nvrtc.getVersion()
        return nvrtc
    except Exception:  # no CuPy, or no NVRTC library
        return None


@pytest.mark.skipif(_nvrtc() is None, reason="needs CuPy and the NVRTC library (no GPU needed)")
@pytest.mark.parametrize("dtype", ["float", "double"])
def test_fused_kernel_code_compiles_without_a_gpu(dtype):
    """Compile each kernel's operation with NVRTC, wrapped the way ElementwiseKernel wraps it (a loop
    over the element index `i`, inputs as `const T x`, outputs as `T &y`), so a typo in a kernel is
    caught on a machine with CuPy but no GPU, before any GPU session."""
    from kernel_source import kernel_function, kernel_specs

    nvrtc, specs = _nvrtc(), kernel_specs()
    assert len(specs) == 5
    for name, (ins, outs, op) in specs.items():
        src = f"typedef {dtype} T; typedef long long I;\n" + kernel_function(name, ins, outs, op, device=True)
        prog = nvrtc.createProgram(src, name + ".cu", [], [])
        try:
            nvrtc.compileProgram(prog, ["-arch=compute_80"])
        except Exception as exc:
            pytest.fail(f"{name} ({dtype}) does not compile: {exc}\n{nvrtc.getProgramLog(prog)}\n{src}")
