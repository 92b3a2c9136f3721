"""The CuPy kernels of minilstm/ops/cuda_kernels.py as source code, for the tests that check them.

``kernel_specs()`` reads each ElementwiseKernel's parameters and operation without CuPy.
``kernel_function()`` wraps one operation the way ElementwiseKernel does: a loop over the
element index ``i``, inputs bound as ``const T x = x[i]``, outputs as ``T &y = y[i]``,
``raw`` parameters left as pointers. ``device=True`` gives a CUDA ``__global__`` function
(compiled with NVRTC in test_backend_gpu.py); ``device=False`` a plain C++ function
(compiled with the host compiler in test_cuda_kernels_on_cpu.py).
"""

import sys
import types

from minilstm.ops import cuda_kernels

# C types of the non-T parameter types the kernels use; I is the index type of `raw I y`.
C_INT_TYPES = {"int64": "long long", "int32": "int", "I": "long long"}


def parse_params(params):
    """'raw I y, int64 V, T scale' -> [(raw, type, name), ...]"""
    out = []
    for p in params.split(","):
        *raw, t, name = p.split()
        out.append((bool(raw), t, name))
    return out


def kernel_specs():
    """{name: (in_params, out_params, operation)} of every kernel, read with a stand-in ``cupy``."""
    specs = {}
    recorder = types.ModuleType("cupy")
    recorder.ElementwiseKernel = lambda ins, outs, op, name, **kw: specs.update({name: (ins, outs, op)})
    saved = sys.modules.get("cupy")
    sys.modules["cupy"] = recorder
    try:
        cuda_kernels._kernels.cache_clear()
        cuda_kernels._kernels()
    finally:
        cuda_kernels._kernels.cache_clear()  # the real kernels next time
        if saved is None:
            del sys.modules["cupy"]
        else:
            sys.modules["cupy"] = saved
    return specs


def kernel_function(name, ins, outs, op, device):
    """Source of one kernel as a function ``name(params..., long long n)`` looping i over [0, n)."""
    args, binds = [], []
    for is_out, params in ((False, ins), (True, outs)):
        for raw, t, n in parse_params(params):
            ct = C_INT_TYPES.get(t, t)
            if raw:
                args.append(f"const {ct}* {n}")
            else:
                args.append(f"{ct}* _p_{n}")
                binds.append(f"{ct} &{n} = _p_{n}[i];" if is_out else f"const {ct} {n} = _p_{n}[i];")
    if device:
        head = f'extern "C" __global__ void {name}'
        loop = "for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)"
    else:
        head = f'extern "C" void {name}'
        loop = "for (long long i = 0; i < n; ++i)"
    return f"{head}({', '.join(args)}, long long n) {{\n  {loop} {{ {' '.join(binds)}\n{op};\n  }}\n}}\n"
