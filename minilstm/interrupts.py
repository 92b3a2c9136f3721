"""Ctrl-C at a step boundary: a training step is never cut in half.

While ``train()`` runs, SIGINT only raises a flag when it lands inside a step
(forward, backward, clipping, the SGD update and the counters); the step
finishes, and the run stops and saves at that boundary. A second Ctrl-C stops
at once and marks the state torn, so it is never saved. This is what makes an
interrupted and resumed run bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class StepGuard:
    """Makes Ctrl-C take effect only between steps, so a saved state is never half-updated.

    Inside ``with guard.step():`` a SIGINT only sets ``pending``; when the block ends, the
    KeyboardInterrupt is raised there, at a step boundary. Outside a step it is raised at
    once (nothing is half-done). A second SIGINT inside the same step raises at once and
    marks the state ``torn``: the caller must then not save it.

    Signal handlers can only be installed from the main thread (and not at all under some
    embedders). Without one, a KeyboardInterrupt may still arrive (e.g. from a callback);
    ``torn`` then tells whether it came in the middle of a step, and only a state reached at
    a boundary is saved. The previous handler is put back when the run ends.
    """

    def __init__(self):
        self.pending = False
        self.torn = False
        self._inside = False
        self._previous = None
        self.installed = False

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.getsignal(signal.SIGINT)
                if self._previous is signal.SIG_IGN:  # Ctrl-C is ignored here (nohup...): keep it so
                    return self
                signal.signal(signal.SIGINT, self._handler)
                self.installed = True
            except (ValueError, OSError, TypeError):  # not allowed here: fall back (see the docstring)
                self.installed = False
        return self

    def __exit__(self, *exc):
        if self.installed:
            signal.signal(signal.SIGINT, self._previous if self._previous is not None else signal.default_int_handler)
            self.installed = False
        return False

    def _handler(self, signum, frame):
        if self._inside and not self.pending:
            self.pending = True  # finish this step, then stop
            return
        raise KeyboardInterrupt

    @contextmanager
    def step(self):
        """A block that must run to its end or not be saved: one training step and its bookkeeping."""
        self._inside, self.torn = True, True
        try:
            yield
        except BaseException:
            self._inside = False  # torn stays True: this state is not saved
            raise
        # Reached only when the block completed: the state is consistent again.
        self._inside, self.torn = False, False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    @contextmanager
    def hold(self):
        """For the final save: a first Ctrl-C during it is ignored (the save is finishing), a second one stops."""
        self._inside, self.pending = True, False
        try:
            yield
        finally:
            self._inside, self.pending = False, False
