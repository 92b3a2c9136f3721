"""Reusable scratch arrays for the training hot path.

Why this exists: the largest arrays of a training step, the (N*T, V) scores
of the decoder (400 x 10,000 floats = 16 MB for ``small``) and the (H, V)
decoder gradient, are the same shape at every step. Allocating them afresh
makes the operating system hand over new, zeroed memory pages each time, and
those page faults cost as much as a matrix product (about a quarter of a
``small`` step on a 2-core CPU). Allocating once and reusing is free.

A :class:`Workspace` belongs to one model (no global state). It hands out one
array per name, reallocated only when the requested shape or dtype changes.
The price: an array from the workspace is overwritten by the next step that
asks for it, so whoever uses one must be done with it by then. The model
checks that for you (see ``LSTMLanguageModel(reuse_buffers=True)``).
"""

from __future__ import annotations


class Workspace:
    """Named scratch arrays, reused across calls: ``ws.get("scores", (M, V), "float32", xp)``."""

    def __init__(self):
        self._arrays = {}

    def get(self, name, shape, dtype, xp):
        """An uninitialised array of ``shape`` and ``dtype``, the same memory as last time when it fits."""
        a = self._arrays.get(name)
        if a is None or tuple(a.shape) != tuple(shape) or a.dtype != dtype or type(a).__module__ != xp.__name__:
            a = xp.empty(shape, dtype=dtype)
            self._arrays[name] = a
        return a

    def clear(self):
        self._arrays.clear()

    def nbytes(self):
        return sum(int(a.nbytes) for a in self._arrays.values())
