"""Progress for training and evaluation, shared by every experiment.

Bars are drawn only where somebody watches them: on a terminal, or in Jupyter.
Redirected to a file (``minilstm train > log.txt 2>&1``, nohup, a batch job), a
bar would be thousands of carriage-return redraws; instead the log gets a few
plain lines per epoch (``LineProgress``), so ``tail -f`` shows the run is alive
without drowning the one line per epoch that each experiment writes anyway.
"""

from __future__ import annotations

import sys
import time


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
    of carriage-return redraws (``progress_iter`` and ``epoch_bar`` then fall back to
    a few plain lines). In Jupyter, the widget bar needs ipywidgets; without
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


class LineProgress:
    """A progress "bar" for a log file: one plain line at 25, 50 and 75 % of the work, on stderr.

    A line is printed only if ``min_interval`` seconds have passed since the start or the last
    line, so a fast epoch prints nothing and a slow one at most three lines: bounded either way.
    It offers the few tqdm methods the loops use (update, set_postfix, close, iteration).
    """

    MIN_INTERVAL_S = 10.0  # tests set 0 to see every line

    def __init__(self, iterable=None, total=None, desc="", **_ignored):
        self.iterable, self.total, self.desc = iterable, total or 0, desc
        self.n = _ignored.get("initial", 0) or 0
        self.postfix = ""
        self._next = 1                      # the next quarter to report (1, 2, 3)
        while self._next < 4 and self.n * 4 >= self._next * self.total > 0:
            self._next += 1                 # a resumed epoch does not repeat the quarters it passed
        self._last = time.monotonic()

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)

    def set_postfix(self, refresh=True, **values):
        self.postfix = ", ".join(f"{k.replace('_', '/')} {v}" for k, v in values.items())

    def update(self, n=1):
        self.n += n
        if self._next >= 4 or self.total <= 0 or self.n * 4 < self._next * self.total:
            return
        while self._next < 4 and self.n * 4 >= self._next * self.total:
            self._next += 1
        now = time.monotonic()
        if now - self._last < self.MIN_INTERVAL_S:
            return
        self._last = now
        stream = sys.stderr
        if stream is None:
            return
        print(f"  {self.desc}: {100 * self.n // self.total}% ({self.n:,}/{self.total:,})"
              + (f", {self.postfix}" if self.postfix else ""), file=stream, flush=True)

    def close(self):
        pass


def progress_iter(iterable, total, enabled, desc):
    """``iterable`` with a progress bar (terminal), a few log lines (redirected), or as it is (disabled)."""
    if not enabled:
        return iterable
    bar = bar_class(enabled) or LineProgress
    return bar(iterable, total=total, desc=desc, leave=False, unit="chunk")


def epoch_bar(progress, total, prog, epochs):
    """The bar of one training epoch (see progress_iter), or None with progress off."""
    if not progress:
        return None
    bar = bar_class(progress) or LineProgress
    return bar(total=total, initial=prog.chunk, desc=f"epoch {prog.epoch}/{epochs}", unit="chunk",
               leave=False, dynamic_ncols=True)
