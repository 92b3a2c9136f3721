"""Truncated-BPTT batching, exactly as in the paper's code and the TensorFlow PTB tutorial.

A corpus is one long stream of token ids. To train on N streams at once, we
cut it into N equal *columns* and lay them side by side (``batchify``)::

    ids  = [a b c d e f g h i j k]          (11 tokens), N = 2
    L    = 11 // 2 = 5 tokens per row; the leftover "k" is dropped

    data = [[a b c d e],                    row 0 holds ids[0:5]
            [f g h i j]]                    row 1 holds ids[5:10]

Each row is then read left to right in chunks of T time steps
(``iterate_chunks``). The input ``x`` of a chunk is T consecutive tokens, the
target ``y`` the same tokens shifted by one (predict the next word)::

    T = 2:  chunk 0: x = [[a b], [f g]]   y = [[b c], [g h]]
            chunk 1: x = [[c d], [h i]]   y = [[d e], [i j]]

The number of chunks is (L - 1) // T: the last token of a row has no
successor, so it can only be a target; a final partial chunk is dropped.

Why chunks follow each other: chunk i+1 starts exactly where chunk i stopped
in every row, so the final LSTM state (h, c) of one chunk is the right
initial state for the next one. The training loop carries the state across
chunks (but not the gradient: that is what makes the backpropagation through
time *truncated*), and resets it to zero at the start of every epoch and of
every evaluation pass, as the paper's code does.

Shapes: N batch (number of rows), L row length, T time steps per chunk.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .corpus import DataError


def batchify(ids, batch_size: int) -> np.ndarray:
    """Cut a 1-D id stream into ``batch_size`` rows: returns ``(N, L)`` int64, L = len(ids) // N.

    Row n holds ``ids[n*L:(n+1)*L]``; the last ``len(ids) % N`` tokens are
    dropped (as in the paper's code). Needs at least 2 tokens per row, since
    one token alone gives no (input, target) pair.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise DataError(f"batchify expects a 1-D stream of token ids, got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise DataError(f"batchify expects integer token ids, got dtype {ids.dtype}")
    n = _positive_int(batch_size, "batch_size")
    row_len = len(ids) // n
    if row_len < 2:
        raise DataError(f"{len(ids)} tokens are too few for batch size {n}: each of the {n} rows "
                        f"needs at least 2 tokens ({2 * n} in all); use a smaller batch size or more data")
    # A reshape of the leading N*L tokens is exactly "row n = ids[n*L:(n+1)*L]".
    return np.ascontiguousarray(ids[: n * row_len].reshape(n, row_len), dtype=np.int64)


def num_chunks(data, num_steps: int) -> int:
    """Number of (x, y) chunks of T = ``num_steps`` steps in ``data`` (N, L): (L - 1) // T."""
    t = _positive_int(num_steps, "num_steps")
    return (data.shape[1] - 1) // t


def iterate_chunks(data, num_steps: int, start: int = 0) -> Iterator[tuple]:
    """Yield the (x, y) chunks of ``data`` (N, L), in order, from chunk index ``start``.

    x = data[:, i*T : (i+1)*T] and y = data[:, i*T+1 : (i+1)*T+1], both (N, T),
    for i = start, ..., num_chunks - 1. They are views (no copy) and keep the
    array type of ``data``, so a CuPy array gives CuPy chunks.

    ``start`` lets an interrupted epoch resume at the chunk where it stopped
    (``start == num_chunks`` yields nothing: the epoch was complete).

    The arguments are checked now, not at the first ``next()``, so a mistake
    surfaces where the call is written.
    """
    if getattr(data, "ndim", None) != 2:
        raise DataError(f"iterate_chunks expects batchified data of shape (N, L), "
                        f"got shape {getattr(data, 'shape', None)}; call batchify first")
    t = _positive_int(num_steps, "num_steps")
    n_chunks = num_chunks(data, t)
    if n_chunks == 0:
        raise DataError(f"rows of {data.shape[1]} tokens hold no chunk of {t} steps "
                        f"(a chunk needs {t + 1} tokens: T inputs and one more target); "
                        "use a smaller num_steps or batch size, or more data")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start <= n_chunks:
        raise DataError(f"start must be a chunk index in [0, {n_chunks}], got {start!r}")
    return _chunks(data, t, int(start), n_chunks)


def _chunks(data, t, start, stop):
    for i in range(start, stop):
        a = i * t
        yield data[:, a:a + t], data[:, a + 1:a + t + 1]


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
