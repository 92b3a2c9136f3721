"""The fused CuPy kernels' arithmetic, checked against the NumPy code on a CPU.

The kernels in ``minilstm/ops/cuda_kernels.py`` only run on a GPU, and their
``gpu``-marked tests skip everywhere else, so a wrong sign or a swapped argument
would first show on a GPU. This module closes that gap without one: it compiles
each kernel's operation with the C++ compiler, as a plain loop over the element
index ``i`` (the way CuPy's ``ElementwiseKernel`` wraps it), and runs the wrapper
functions of ``cuda_kernels`` (argument order, slicing of the gate blocks and
all) through a stand-in ``cupy`` module whose arrays are NumPy arrays. Every
result is compared with the NumPy reference in float64 and float32.

What this does not check: CuPy itself (launch, memory, CUDA's own ``tanh``);
the ``gpu`` tests in ``test_backend_gpu.py`` do, on a machine with a GPU.
Skipped where no C++ compiler is found.
"""

import ctypes
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
from kernel_source import kernel_function, kernel_specs, parse_params

from minilstm.ops import cuda_kernels
from minilstm.ops.lstm import activate_gates_, cell_backward, cell_forward
from minilstm.ops.softmax import _softmax_nll_

CXX = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler (g++, c++ or clang++) on PATH")

C_TYPES = {"float32": "float", "float64": "double"}
INT_DTYPES = {"int64": np.int64, "int32": np.int32, "I": np.int64}


def _source(specs, ctype):
    """C++ for every kernel, named ``<kernel>_<ctype>``: one loop over the element index i each."""
    head = f"#include <cmath>\nusing std::exp; using std::tanh; using std::log;\ntypedef {ctype} T; typedef long long I;\n"
    return head + "".join(kernel_function(f"{name}_{ctype}", ins, outs, op, device=False)
                          for name, (ins, outs, op) in specs.items())


class _CPUKernel:
    """Called like a CuPy ElementwiseKernel: kernel(*inputs, *outputs), outputs written in place."""

    def __init__(self, libs, name, ins, outs):
        self.libs, self.name = libs, name
        self.params = [(False, *p) for p in parse_params(ins)] + [(True, *p) for p in parse_params(outs)]

    def __call__(self, *arrays):
        assert len(arrays) == len(self.params), f"{self.name}: {len(arrays)} arguments for {len(self.params)}"
        dtype = next(np.asarray(a).dtype for a, (_, _, t, _) in zip(arrays, self.params) if t == "T")
        shape = np.broadcast_shapes(*(np.shape(a) for a, (_, raw, _, _) in zip(arrays, self.params) if not raw))
        bufs = []
        for a, (_, raw, t, _) in zip(arrays, self.params):
            dt = dtype if t == "T" else INT_DTYPES[t]
            a = np.asarray(a, dtype=dt)
            bufs.append(np.ascontiguousarray(a if raw else np.broadcast_to(a, shape)).copy())
        fn = getattr(self.libs[dtype.name], f"{self.name}_{C_TYPES[dtype.name]}")
        fn(*[ctypes.c_void_p(b.ctypes.data) for b in bufs], ctypes.c_longlong(int(np.prod(shape))))
        for a, b, (is_out, _, _, _) in zip(arrays, bufs, self.params):
            if is_out:
                a[...] = b.reshape(shape)  # back into the caller's array (possibly a strided view)


@pytest.fixture(scope="module")
def cpu_cupy(tmp_path_factory):
    """A stand-in ``cupy`` module: NumPy functions, and ElementwiseKernel compiled for the CPU."""
    specs = kernel_specs()
    assert len(specs) == 5, sorted(specs)

    libs = {}
    build = tmp_path_factory.mktemp("cuda_kernels_on_cpu")
    for dtype, ctype in C_TYPES.items():
        src, lib = build / f"kernels_{ctype}.cpp", build / f"kernels_{ctype}.so"
        src.write_text(_source(specs, ctype))
        proc = subprocess.run([CXX, "-O1", "-shared", "-fPIC", "-o", str(lib), str(src)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"the kernels do not compile as C++ ({ctype}):\n{proc.stderr}\n{src.read_text()}"
        libs[dtype] = ctypes.CDLL(str(lib))

    fake = types.ModuleType("cupy")
    for fn in ("empty", "arange", "log", "subtract"):  # what the wrappers call
        setattr(fake, fn, getattr(np, fn))
    fake.ElementwiseKernel = lambda ins, outs, op, name, **kw: _CPUKernel(libs, name, ins, outs)
    return fake


@pytest.fixture
def kernels(cpu_cupy, monkeypatch):
    """cuda_kernels with its kernels built from the stand-in cupy (the real ones are restored after)."""
    monkeypatch.setitem(sys.modules, "cupy", cpu_cupy)
    cuda_kernels._kernels.cache_clear()
    yield cuda_kernels
    cuda_kernels._kernels.cache_clear()


TOL = {"float64": dict(rtol=1e-13, atol=1e-14), "float32": dict(rtol=2e-6, atol=2e-7)}
DTYPES = ["float64", "float32"]


def _gates(rng, N, H, dtype):
    a = rng.standard_normal((N, 4 * H)) * 2
    return a.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activate_gates_kernel_matches_numpy(kernels, dtype):
    a = _gates(np.random.default_rng(0), 5, 7, dtype)
    a[0, :3] = [-200, 200, 0]  # saturated and centred sigmoids
    ref = activate_gates_(a.copy(), 7, np)
    got = kernels.activate_gates_(a.copy())
    np.testing.assert_allclose(got, ref, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_cell_forward_kernel_matches_numpy(kernels, dtype):
    rng = np.random.default_rng(1)
    N, H = 4, 6
    gates = activate_gates_(_gates(rng, N, H, dtype), H, np)
    prev_c = rng.standard_normal((N, H)).astype(dtype)
    # the outputs are strided views of (N, T, H) arrays, as in lstm_forward
    ref = [np.zeros((N, 3, H), dtype) for _ in range(3)]
    got = [np.zeros((N, 3, H), dtype) for _ in range(3)]
    cell_forward(gates, prev_c, *(r[:, 1] for r in ref), np)
    kernels.cell_forward(gates, prev_c, *(g[:, 1] for g in got))
    for name, r, g in zip(("c", "tanh_c", "h"), ref, got):
        np.testing.assert_allclose(g, r, **TOL[dtype], err_msg=name)
        assert not g[:, [0, 2]].any(), f"{name}: the kernel wrote outside its time step"


@pytest.mark.parametrize("dtype", DTYPES)
def test_cell_backward_kernel_matches_numpy(kernels, dtype):
    rng = np.random.default_rng(2)
    N, H = 3, 5
    gates = activate_gates_(_gates(rng, N, H, dtype), H, np)
    prev_c, dh, dc = (rng.standard_normal((N, H)).astype(dtype) for _ in range(3))
    tanh_c = np.tanh(gates[:, H:2 * H] * prev_c + gates[:, :H] * gates[:, 3 * H:])
    ref_d, got_d = np.zeros((N, 2, 4 * H), dtype), np.zeros((N, 2, 4 * H), dtype)
    ref_c = cell_backward(dh, dc, gates, prev_c, tanh_c, ref_d[:, 1], np)
    got_c = kernels.cell_backward(dh, dc, gates, prev_c, tanh_c, got_d[:, 1])
    for k, gate in enumerate("ifog"):
        np.testing.assert_allclose(got_d[:, 1, k * H:(k + 1) * H], ref_d[:, 1, k * H:(k + 1) * H], **TOL[dtype],
                                   err_msg=f"da_{gate}")
    np.testing.assert_allclose(got_c, ref_c, **TOL[dtype], err_msg="dprev_c")
    assert not got_d[:, 0].any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_kernels_match_numpy(kernels, dtype):
    rng = np.random.default_rng(3)
    M, V = 6, 11
    scores = (rng.standard_normal((M, V)) * 5).astype(dtype)
    scores[0, 3] = 90  # exp(90) overflows float32 without the shift by the row maximum
    y = rng.integers(0, V, M)
    ref_p, got_p = scores.copy(), scores.copy()
    ref_nll, got_nll = np.empty(M, dtype), np.empty(M, dtype)
    _softmax_nll_(ref_p, y, ref_nll)
    kernels.softmax_nll_(got_p, y, got_nll)
    np.testing.assert_allclose(got_p, ref_p, **TOL[dtype], err_msg="probabilities")
    np.testing.assert_allclose(got_nll, ref_nll, **TOL[dtype], err_msg="nll")
    scale = 0.25
    ref_g = ref_p * scale
    ref_g[np.arange(M), y] -= scale
    np.testing.assert_allclose(kernels.softmax_grad_(got_p, y, scale), ref_g, **TOL[dtype], err_msg="gradient")


def test_a_wrong_kernel_is_caught(kernels, monkeypatch):
    """The harness can fail: a kernel with the forget and input gates swapped differs from NumPy."""
    real = kernels._kernels()["cell_forward"]
    swapped = lambda i, f, o, g, *rest: real(f, i, o, g, *rest)  # noqa: E731
    monkeypatch.setitem(kernels._kernels(), "cell_forward", swapped)
    rng = np.random.default_rng(4)
    gates = activate_gates_(_gates(rng, 2, 3, "float64"), 3, np)
    prev_c = rng.standard_normal((2, 3))
    ref, got = [np.empty((2, 3)) for _ in range(3)], [np.empty((2, 3)) for _ in range(3)]
    cell_forward(gates, prev_c, *ref, np)
    kernels.cell_forward(gates, prev_c, *got)
    assert not np.allclose(got[0], ref[0])
