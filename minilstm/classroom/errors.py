"""The classroom's two errors: what the command line prints as one line, never a traceback."""


class AssignError(ValueError):
    """The source or the command line of ``minilstm assign`` is wrong; the message says how to fix it."""


class GradeError(RuntimeError):
    """A submission, or the whole run, could not be graded (no plan, not a package, unreadable, ...)."""
