"""Small helpers shared by the lessons (not a lesson itself).

* makes ``import minilstm`` work from a fresh checkout (adds the repository
  root to ``sys.path`` when the package is not installed);
* picks a matplotlib backend: the Agg (file-only) backend when there is no
  display and we are not inside Jupyter, so every lesson runs headless;
* ``QUICK``: True when ``MINILSTM_LESSON_QUICK=1``, which shrinks every lesson
  to a few seconds (the test suite runs them that way);
* a cell (or script) that calls a part a student has not written yet stops
  with one line naming the part, not a traceback into the stub;
* ``save(fig, name)``: writes ``lessons/out/<name>.png`` (or into
  ``$MINILSTM_LESSON_OUT``) and shows the figure only where it can be shown.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# Figures go to lessons/out/ (git-ignored); MINILSTM_LESSON_OUT redirects them (the tests use a tmp dir).
OUT = Path(os.environ.get("MINILSTM_LESSON_OUT") or HERE / "out")

try:  # the package installed (pip install -e .) or on PYTHONPATH
    import minilstm  # noqa: F401
except ImportError:  # a plain checkout: use the copy next to the lessons
    sys.path.insert(0, str(REPO))



def _one_line_for_unfinished_parts(kind, exc, tb, _default=sys.excepthook):
    """Run as a script on a student version, a lesson that needs an unfinished part stops with one line
    naming the part (Jupyter does the same through Unfinished._render_traceback_)."""
    if hasattr(exc, "_render_traceback_") and isinstance(exc, NotImplementedError):
        print("\n".join(exc._render_traceback_()), file=sys.stderr)
        return
    _default(kind, exc, tb)


sys.excepthook = _one_line_for_unfinished_parts

QUICK = os.environ.get("MINILSTM_LESSON_QUICK", "").strip().lower() not in ("", "0", "false", "no")


def in_notebook() -> bool:
    return "ipykernel" in sys.modules


def has_display() -> bool:
    if in_notebook():
        return True
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


import matplotlib  # noqa: E402

if not has_display() and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402


def pick(quick, full):
    """``quick`` in quick mode, ``full`` otherwise."""
    return quick if QUICK else full


def save(fig, name: str) -> Path:
    """Save ``fig`` as lessons/out/<name>.png; show it where a display exists, else close it."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"[figure saved: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}]", flush=True)
    interactive = matplotlib.get_backend().lower() not in ("agg", "pdf", "ps", "svg", "cairo", "template")
    if interactive and has_display():
        plt.show()
    else:
        plt.close(fig)
    return path


def banner(title: str) -> None:
    mode = "QUICK mode (MINILSTM_LESSON_QUICK=1): small sizes, few steps" if QUICK else "full mode"
    print(f"{title}\n{'=' * len(title)}\n[{mode}]")
