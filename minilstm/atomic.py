"""Writing a file whole or not at all: the one helper every command uses.

A file is written to a temporary name in the same folder (``os.replace`` is atomic only within one
file system), flushed to disk, then renamed over the target. If anything fails on the way (disk full,
Ctrl-C) the temporary file is removed and the old file, if any, stays whole: a reader never sees half a
results table, and a crash never leaves a truncated gradebook.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path, suffix: str = ".tmp"):
    """Yield a temporary path beside ``path``; on a clean exit rename it over ``path``.

    For writers that need a file name (``np.savez``, ``fig.savefig``); the name starts with a dot and
    carries the process id, so two processes writing the same file never share a temporary file.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (fsync'd before the rename)."""
    path = Path(path)
    with replacing(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return path


def write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, obj) -> Path:
    """``obj`` as indented JSON with a final newline, atomically."""
    return write_text(path, json.dumps(obj, indent=2) + "\n")
