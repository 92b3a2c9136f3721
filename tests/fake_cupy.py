"""A strict NumPy-backed stand-in for CuPy, for tests only: the GPU code path, run on a CPU.

``make_cupy(kernel_factory)`` returns a module to put on ``sys.modules["cupy"]`` (and
``make_cupyx()`` one for ``"cupyx"``). Its arrays behave like CuPy's where it matters for
finding dispatch and host-transfer bugs:

* ``type(a).__module__`` is ``"cupy"``, so ``backend.get_array_module`` picks this module;
* implicit conversion to NumPy is refused, as CuPy refuses it: ``np.asarray(a)`` and any
  NumPy function or ufunc given one raise TypeError; only ``a.get()``, ``cupy.asnumpy(a)``,
  ``float(a)``/``int(a)``/``bool(a)`` (one element), ``a.item()`` and ``a.tolist()`` read
  the "device";
* a NumPy array passed to a cupy function or operator (``cupy_a + numpy_b``) raises
  TypeError, as in CuPy; ``cupy.asarray(numpy_array)`` is the explicit transfer;
* ``ElementwiseKernel`` runs the kernel's C++ body through the CPU harness of
  tests/test_cuda_kernels_on_cpu.py (``kernel_factory(in_params, out_params, operation, name)``).

What it does not model: CuPy's exact numerics (cuBLAS, CUDA's tanh), streams, memory.
"""

from __future__ import annotations

import operator
import types

import numpy as np

_NUMPY_OK_IN_INDEX = True  # CuPy accepts NumPy integer arrays as indices


class ndarray:  # noqa: N801 - the CuPy name
    """A "device" array: a NumPy array that refuses to be used as one implicitly."""

    __array_ufunc__ = None  # NumPy ufuncs and binary operators defer to us (and we refuse NumPy operands)
    __array_priority__ = 1000

    def __init__(self, a):
        assert isinstance(a, np.ndarray)
        self._a = a

    # -- what CuPy refuses
    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct "
                        "a NumPy array explicitly. (fake cupy)")

    def __array_function__(self, func, types_, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} was given a cupy array: no implicit transfer (fake cupy)")

    # -- explicit transfers
    def get(self, stream=None, order="C", out=None):
        return self._a.copy()

    def item(self):
        return self._a.item()

    def tolist(self):
        return self._a.tolist()

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __index__(self):
        return operator.index(self._a)

    def __bool__(self):
        return bool(self._a)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(x) for x in self._a)

    def __repr__(self):
        return f"array({self._a!r}) (fake cupy)"

    # -- attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))

    def __getattr__(self, name):  # methods: reshape, astype, sum, max, copy, dot, ...
        if name.startswith("__") or name in ("ctypes", "data", "base", "view"):
            # __array_interface__ & co. would hand NumPy the buffer: a CuPy array has none on the host.
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return attr
        return lambda *a, **kw: _wrap(attr(*_unwrap(a), **_unwrap(kw)))

    def __getitem__(self, idx):
        return _wrap(self._a[_unwrap_index(idx)])

    def __setitem__(self, idx, value):
        self._a[_unwrap_index(idx)] = _unwrap(value)


def _binary(name):
    def op(self, other):
        return _wrap(getattr(operator, name)(self._a, _unwrap(other)))
    return op


def _reflected(name):
    def op(self, other):
        return _wrap(getattr(operator, name)(_unwrap(other), self._a))
    return op


def _inplace(name):
    def op(self, other):
        getattr(operator, name)(self._a, _unwrap(other))
        return self
    return op


for _n in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
           "lt", "le", "gt", "ge", "eq", "ne"):
    setattr(ndarray, f"__{_n}__", _binary(_n))
for _n in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor"):
    setattr(ndarray, f"__r{_n}__", _reflected(_n))
    setattr(ndarray, f"__i{_n}__", _inplace(f"i{_n}"))
for _n in ("neg", "pos", "abs", "invert"):
    setattr(ndarray, f"__{_n}__", (lambda n: lambda self: _wrap(getattr(operator, n)(self._a)))(_n))
ndarray.__module__ = "cupy"
ndarray.__qualname__ = ndarray.__name__ = "ndarray"


def _wrap(x):
    if isinstance(x, np.ndarray):
        return ndarray(x)
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x  # Python and NumPy scalars, dtypes, None


def _unwrap(x):
    """Arguments of a cupy call: cupy arrays become their buffers; a NumPy array is refused, as in CuPy."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, np.ndarray):
        raise TypeError(f"Unsupported type {type(x)}: a NumPy array given to a cupy function (fake cupy); "
                        "copy it to the device with cupy.asarray first")
    if isinstance(x, tuple):
        return tuple(_unwrap(v) for v in x)
    if isinstance(x, list):
        return [_unwrap(v) for v in x]
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _unwrap_index(idx):
    if isinstance(idx, tuple):
        return tuple(_unwrap_index(i) for i in idx)
    if isinstance(idx, ndarray):
        return idx._a
    return idx  # ints, slices, None, Ellipsis, NumPy index arrays


# Functions that take NumPy input on purpose: the explicit host -> device copy.
def asarray(a, dtype=None, order=None):
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    return ndarray(np.array(a, dtype=dtype, order=order or "K", copy=True))


def array(a, dtype=None, copy=True, order="K", ndmin=0):
    if isinstance(a, ndarray):
        return ndarray(np.array(a._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
    return ndarray(np.array(a, dtype=dtype, copy=True, order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None):
    return a.get() if isinstance(a, ndarray) else np.asarray(a)


def get_array_module(*args):
    import sys

    return sys.modules["cupy"] if any(isinstance(a, ndarray) for a in args) else np


# Names that are the same objects in CuPy and NumPy (types, dtypes, constants).
_PASS_THROUGH = {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool_", "dtype",
                 "floating", "integer", "number", "inf", "nan", "pi", "e", "newaxis", "issubdtype", "result_type",
                 "can_cast", "finfo", "iinfo"}


class _XORWOW:
    """Like CuPy's bit generators: its state lives on the device and cannot be read or set."""


class _Generator:
    """cupy.random.Generator: draws device arrays; like CuPy's, its state cannot be saved."""

    def __init__(self, seed=None):
        # Another stream than NumPy's for the same seed, as CuPy's XORWOW is.
        self._g = np.random.Generator(np.random.Philox(seed))
        self.bit_generator = _XORWOW()

    def random(self, size=None, dtype=np.float64, out=None):
        return ndarray(np.asarray(self._g.random(size, dtype=dtype)))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        return ndarray(np.asarray(self._g.uniform(low, high, size), dtype=dtype))


def make_cupy(kernel_factory=None):
    """The stand-in ``cupy`` module. ``kernel_factory(ins, outs, operation, name)`` builds a CPU kernel
    called as ``kernel(*numpy_arrays)`` (outputs written in place); ElementwiseKernel wraps it."""
    mod = types.ModuleType("cupy")
    mod.__file__ = __file__
    mod.ndarray = ndarray
    mod.asarray, mod.array, mod.asnumpy, mod.get_array_module = asarray, array, asnumpy, get_array_module
    stream = types.SimpleNamespace(synchronize=lambda: None)
    mod.cuda = types.SimpleNamespace(is_available=lambda: True, get_current_stream=lambda: stream,
                                     Stream=types.SimpleNamespace(null=stream))
    mod.random = types.SimpleNamespace(default_rng=lambda seed=None: _Generator(seed))
    mod.kernel_calls = {}  # kernel name -> number of launches, so a test can see the fused kernels ran

    def elementwise_kernel(ins, outs, operation, name, **kw):
        if kernel_factory is None:
            raise AssertionError("no CPU kernel harness given to the fake cupy")
        kernel = kernel_factory(ins, outs, operation, name)

        def call(*args):
            mod.kernel_calls[name] = mod.kernel_calls.get(name, 0) + 1
            for a in args:
                if isinstance(a, np.ndarray):
                    raise TypeError(f"{name}: a NumPy array given to a cupy kernel (fake cupy)")
            kernel(*[a._a if isinstance(a, ndarray) else a for a in args])
        return call

    mod.ElementwiseKernel = elementwise_kernel
    mod.get_default_memory_pool = lambda: types.SimpleNamespace(total_bytes=lambda: 0, used_bytes=lambda: 0,
                                                                free_all_blocks=lambda: None)

    def module_getattr(name):
        if name in _PASS_THROUGH:
            return getattr(np, name)
        fn = getattr(np, name, None)
        if fn is None or not callable(fn):
            raise AttributeError(f"fake cupy has no attribute {name!r}")
        return lambda *a, **kw: _wrap(fn(*_unwrap(a), **_unwrap(kw)))

    mod.__getattr__ = module_getattr
    return mod


def make_cupyx():
    mod = types.ModuleType("cupyx")

    def scatter_add(target, indices, values):
        np.add.at(_unwrap(target), _unwrap_index(indices), _unwrap(values))

    mod.scatter_add = scatter_add
    return mod
