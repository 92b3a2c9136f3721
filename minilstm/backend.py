"""The one place that knows about NumPy versus CuPy.

Every op in minilstm is written once, against an array module ``xp`` that it
takes from its own arguments (``xp = get_array_module(x)``), so the same line
``c = f * prev_c + i * g`` runs on the CPU (NumPy) or the GPU (CuPy).

One idiom, two places it is asked:

* code handed arrays (every op in minilstm/ops, the checks, the optimizers,
  decoding) asks those arrays: ``xp = get_array_module(*arrays)``, never a
  device name, a global, or an ``xp=`` argument of its own (the LSTM cell's
  helpers take ``xp`` from their caller, which got it this way);
* code that makes arrays from nothing (a model's weights, a zero state, token
  batches for it) asks the model: ``model.xp``, set once from its device by
  :func:`get_xp` when the model is built.

CuPy is imported lazily, only when something asks for the GPU, so a CPU-only
install never touches it. Asking for the GPU where CuPy is missing or no CUDA
device is usable raises one :class:`GPUUnavailableError` that says how to fix it.

Device choice, in order: an explicit ``device=`` argument, else the
``MINILSTM_DEVICE`` environment variable (``cpu`` or ``gpu``), else ``cpu``.
"""

from __future__ import annotations

import os
from typing import Any, TypeAlias

import numpy as np

from .choices import DEVICES

# A NumPy or CuPy ndarray (CuPy has no type stubs, so the checker sees Any).
Array: TypeAlias = Any

_CUPY_FIX = (
    'install CuPy for your CUDA version: pip install "minilstm[cuda12]" '
    '(CUDA 12) or pip install "minilstm[cuda13]" (CUDA 13), or use --device cpu'
)


class GPUUnavailableError(RuntimeError):
    """The GPU was asked for but cannot be used (no CuPy, or no CUDA device)."""


def _import_cupy():
    """Import CuPy and check a CUDA device is usable; raise one clear error otherwise."""
    try:
        import cupy  # noqa: WPS433 (lazy on purpose: CPU users never import it)
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise GPUUnavailableError(f"the GPU was requested but CuPy is not installed: {_CUPY_FIX}") from exc
    try:
        available = bool(cupy.cuda.is_available())
    except Exception:  # pragma: no cover - broken driver installs raise all sorts
        available = False
    if not available:  # pragma: no cover - depends on the machine
        raise GPUUnavailableError(f"the GPU was requested but CuPy finds no usable CUDA device: {_CUPY_FIX}")
    return cupy


def gpu_available() -> bool:
    """True when CuPy imports and sees a CUDA device. Never raises."""
    try:
        _import_cupy()
    except GPUUnavailableError:
        return False
    return True


def resolve_device(device: str | None = None) -> str:
    """Return ``"cpu"`` or ``"gpu"`` from the argument, else ``$MINILSTM_DEVICE``, else cpu."""
    if device is None:
        device = os.environ.get("MINILSTM_DEVICE", "cpu") or "cpu"
    device = str(device).lower()
    if device in ("cuda", "gpu"):
        device = "gpu"
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    return device


def get_xp(device: str | None = None):
    """The array module for a device name: ``numpy`` for cpu, ``cupy`` for gpu."""
    if resolve_device(device) == "gpu":
        return _import_cupy()
    return np


def get_array_module(*arrays):
    """The array module (numpy or cupy) that owns ``arrays``; numpy for plain Python values.

    This is how every op picks its ``xp`` without a device argument: a CuPy
    array can only come from a process that already imported CuPy, so we only
    look at ``type(a).__module__`` and never import CuPy here.
    """
    for a in arrays:
        if type(a).__module__.split(".")[0] == "cupy":
            import cupy

            return cupy
    return np


def is_gpu_array(a) -> bool:
    return get_array_module(a) is not np


def device_of(a) -> str:
    return "gpu" if is_gpu_array(a) else "cpu"


def to_device(a, device: str | None = None):
    """Copy one array to ``device`` (no copy when it is already there)."""
    xp = get_xp(device)
    if xp is np:
        return to_host(a)
    return xp.asarray(a)


def to_host(a):
    """A NumPy array with the contents of ``a`` (a CuPy array is copied from the GPU)."""
    if is_gpu_array(a):
        return a.get()
    return np.asarray(a)


def params_to(params: dict, device: str | None = None) -> dict:
    """Move a whole named parameter set (``{name: array}``) to ``device``."""
    return {name: to_device(value, device) for name, value in params.items()}


def params_to_host(params: dict) -> dict:
    return {name: to_host(value) for name, value in params.items()}


def default_rng(seed, xp=np):
    """A seeded random generator for the backend ``xp``.

    Both NumPy and CuPy generators offer ``random(shape, dtype=...)`` and
    ``uniform(low, high, size)``, which is all minilstm draws with. On CuPy the numbers are
    drawn on the host and copied over (HostRNG), so that their state can be saved. Every random
    draw in the package comes from a generator made here and passed in or owned
    by a model: there is no hidden global random state.
    """
    if xp is np:
        return np.random.default_rng(seed)
    return HostRNG(np.random.default_rng(seed), xp)  # see HostRNG: an exact resume needs its state


def rng_module(rng):
    """The array module whose arrays ``rng`` produces."""
    return np if isinstance(rng, np.random.Generator) else get_array_module(rng.random((1,)))


def scatter_add(target, indices, values):
    """``target[indices] += values`` with repeated indices accumulated (in place).

    The backward pass of an embedding lookup: a word that appears k times in a
    batch receives the sum of its k gradients. Plain ``target[idx] += v`` would
    keep only one of them. NumPy spells it ``np.add.at``; CuPy ``cupyx.scatter_add``.
    """
    xp = get_array_module(target)
    if xp is np:
        np.add.at(target, indices, values)
    else:  # pragma: no cover - GPU only
        import cupyx

        cupyx.scatter_add(target, indices, values)
    return target


class HostRNG:
    """A NumPy generator whose draws land on the GPU: the model's dropout generator on CuPy.

    CuPy's generators cannot save or restore their state, so a run resumed on a GPU would
    draw different dropout masks than the uninterrupted one. Drawing on the host with a
    NumPy generator (and copying each mask over) makes the GPU path resume bit-exactly and
    draw the very masks the CPU path draws for the same seed, at the cost of one host draw
    and one copy per mask.
    """

    def __init__(self, generator: np.random.Generator, xp):
        self.generator, self.xp = generator, xp

    @property
    def bit_generator(self):
        return self.generator.bit_generator

    def random(self, size=None, dtype=np.float64):
        return self.xp.asarray(self.generator.random(size, dtype=dtype))

    def uniform(self, low=0.0, high=1.0, size=None):
        return self.xp.asarray(self.generator.uniform(low, high, size))


def host_generator(rng) -> np.random.Generator:
    """The NumPy generator behind ``rng`` (a NumPy Generator or a HostRNG)."""
    return rng.generator if isinstance(rng, HostRNG) else rng


def set_host_generator(model, generator: np.random.Generator) -> None:
    """Give ``model`` a dropout generator in the exact state of ``generator`` (on its own device)."""
    model.rng = generator if model.xp is np else HostRNG(generator, model.xp)
