"""Every lesson in lessons/ runs top to bottom, headless, in quick mode.

Each ``lessons/NN_name.py`` is run as a subprocess with ``MINILSTM_LESSON_QUICK=1``
(small sizes, few steps) and the Agg backend, from a temporary directory, with
its figures redirected there too. A lesson fails the test if it exits non-zero
(its own asserts are the student's checks), takes over 120 s, or saves no figure.
``test_lesson_structure`` checks, without running it, that each lesson has the
parts every lesson must have and balanced solution markers.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted((REPO / "lessons").glob("[0-9]*.py"))
TIMEOUT_S = 120


def test_lessons_exist():
    assert len(LESSONS) >= 8, f"expected the 8 lessons in {REPO / 'lessons'}, found {[p.name for p in LESSONS]}"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_structure(lesson):
    """Percent format, the required parts, and balanced solution markers (the handouts are built from them)."""
    text = lesson.read_text()
    assert "format_name: percent" in text.split("# %%", 1)[0], f"{lesson.name}: no jupytext percent header"
    for part in ("**What you will learn**", "## Try this", "save(fig"):
        assert part in text, f"{lesson.name} lacks {part!r}"
    assert re.search(r"^(import|from) minilstm\b", text, re.M), f"{lesson.name} does not use minilstm"
    begins = [line for line in text.splitlines() if line.lstrip().startswith("### BEGIN SOLUTION")]
    ends = [line for line in text.splitlines() if line.lstrip().startswith("### END SOLUTION")]
    assert len(begins) == len(ends), f"{lesson.name}: {len(begins)} BEGIN SOLUTION but {len(ends)} END SOLUTION"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_in_quick_mode(lesson, tmp_path):
    env = dict(os.environ)
    env.update(
        MINILSTM_LESSON_QUICK="1",
        MINILSTM_LESSON_OUT=str(tmp_path / "out"),
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])),
        # The lessons use small matrices: one BLAS thread is as fast, and far faster on busy shared cores.
        OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
    )
    env.pop("DISPLAY", None)
    env.pop("MINILSTM_DEVICE", None)  # lessons choose their device themselves
    try:
        proc = subprocess.run([sys.executable, str(lesson)], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{lesson.name} took more than {TIMEOUT_S} s in quick mode\n--- stdout ---\n"
                    f"{exc.stdout or ''}\n--- stderr ---\n{exc.stderr or ''}")
    if proc.returncode != 0:
        pytest.fail(f"{lesson.name} exited with status {proc.returncode}\n--- stderr ---\n{proc.stderr}\n"
                    f"--- stdout (last 3000 characters) ---\n{proc.stdout[-3000:]}")
    figures = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert figures, f"{lesson.name} saved no figure\n{proc.stdout[-2000:]}"
    assert all(name.startswith(lesson.stem[:2]) for name in figures), f"figure names should start with the " \
        f"lesson number: {figures}"
