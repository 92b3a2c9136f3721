"""Progress bars for training and evaluation, shared by every experiment.

Bars are drawn only where somebody watches them: on a terminal, or in Jupyter.
Redirected to a file, a bar would be thousands of carriage-return redraws,
while a log wants one line per epoch (which each experiment writes anyway).
"""

from __future__ import annotations

import sys


def _in_jupyter() -> bool:
    """True inside a Jupyter kernel (IPython's shell there is configured by an IPKernelApp)."""
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None
    except Exception:  # a half-imported or unusual IPython: treat as a plain interpreter
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def bar_class(enabled):
    """The tqdm class to draw progress bars with, or None where nobody watches them.

    Bars only on a terminal or in Jupyter: redirected to a file, a bar is thousands
    of carriage-return redraws, while the log wants one line per epoch (which
    ``train`` writes anyway). In Jupyter, the widget bar needs ipywidgets; without
    it tqdm.auto would warn "IProgress not found", so we draw the text bar instead.
    """
    if not enabled:
        return None
    if _in_jupyter():
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            from tqdm import tqdm
        else:
            from tqdm.notebook import tqdm
        return tqdm
    stream = sys.stderr
    if stream is not None and hasattr(stream, "isatty") and stream.isatty():
        from tqdm import tqdm

        return tqdm
    return None


def progress_iter(iterable, total, enabled, desc):
    bar = bar_class(enabled)
    if bar is None:
        return iterable
    return bar(iterable, total=total, desc=desc, leave=False, unit="chunk")


def epoch_bar(progress, total, prog, epochs):
    bar = bar_class(progress)
    if bar is None:
        return None
    return bar(total=total, initial=prog.chunk, desc=f"epoch {prog.epoch}/{epochs}", unit="chunk",
               leave=False, dynamic_ncols=True)
