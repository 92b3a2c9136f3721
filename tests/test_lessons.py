"""Every lesson runs top to bottom as a notebook, in a real Jupyter kernel, in quick mode.

What students open are the notebooks of a handout (``minilstm assign``), so that
is what we run: a handout with every part solved is generated once (its package
is the reference code with the marker lines gone, its lessons are the lesson
scripts converted by jupytext), and each ``lessons/NN_name.ipynb`` of it is
executed cell by cell with nbclient in an ipykernel ``python3`` kernel, with
``MINILSTM_LESSON_QUICK=1`` (small sizes, few steps), the handout's package
first on the kernel's path, and the figures redirected to a temporary folder.
``test_solved_handout_notebooks_are_the_lessons`` checks that those notebooks
hold every code line of the lesson scripts, so running them runs the lessons.

A lesson fails the test if a cell raises (its own asserts are the student's
checks; the failure names the lesson, the cell and its first line), a cell
takes over ``CELL_TIMEOUT_S``, or it saves no figure.
``test_lesson_structure`` checks, without running it, that each lesson has the
parts every lesson must have and balanced solution markers.
"""

import os
import re
import sys
from pathlib import Path

import pytest

from minilstm.classroom import assign
from minilstm.classroom.assignments import ASSIGNMENTS, part_key

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted((REPO / "lessons").glob("[0-9]*.py"))
CELL_TIMEOUT_S = 120
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # IPython colours its tracebacks


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


# ----------------------------------------------------------------------------- running the notebooks


def write_solved_handout(out: Path) -> Path:
    """The whole course handed out with every part solved (what `minilstm assign OUT` writes with
    `--solved` for each part). The one place that knows how a solved handout is made."""
    every_part = [part_key(a, p) for a in ASSIGNMENTS.values() for p in a.parts]
    assign.write_student_version(out, solved=every_part)
    return out


@pytest.fixture(scope="module")
def solved_handout(tmp_path_factory):
    return write_solved_handout(tmp_path_factory.mktemp("solved") / "handout")


def kernel_env(package_root: Path, figures: Path) -> dict:
    env = dict(os.environ)
    env.update(
        MINILSTM_LESSON_QUICK="1",
        MINILSTM_LESSON_OUT=str(figures),
        # The handout's package, not the one this test imports (the same code, marker lines removed).
        PYTHONPATH=os.pathsep.join([str(package_root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])),
        # The lessons use small matrices: one BLAS thread is as fast, and far faster on busy shared cores.
        OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
    )
    env.pop("MPLBACKEND", None)  # the kernel's own choice, matplotlib-inline, as in Jupyter
    env.pop("DISPLAY", None)
    env.pop("MINILSTM_DEVICE", None)  # lessons choose their device themselves
    return env


def run_notebook(path: Path, env: dict, name: str) -> list:
    """Execute the notebook at ``path`` cell by cell in a fresh ``python3`` kernel started from this
    Python (jupyter_client runs a kernelspec whose argv starts with "python" with ``sys.executable``),
    with the notebook's folder as working directory. Returns the executed cells; a failing cell fails
    the test with the lesson's name, the cell's number and first line, and the kernel's traceback."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = nbformat.read(str(path), as_version=4)
    # One more cell, after the lesson's own, to prove which Python and which minilstm ran it.
    nb.cells.append(nbformat.v4.new_code_cell("import sys, minilstm; print(sys.executable); print(minilstm.__file__)"))
    client = NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S, allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel(env=env):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except (CellExecutionError, CellTimeoutError) as exc:
                failure = ANSI.sub("", str(exc))[-4000:]
            else:
                continue
            first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
            pytest.fail(f"{name}: cell {index} (id {cell.get('id')}, starting {first!r}) failed in the "
                        f"kernel:\n{failure}", pytrace=False)
    return nb.cells


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_solved_handout_notebooks_are_the_lessons(solved_handout):
    """The notebooks we run hold every code line of the lesson scripts (minus solution markers)."""
    import nbformat

    for lesson in LESSONS:
        nb = nbformat.read(str(solved_handout / "lessons" / f"{lesson.stem}.ipynb"), as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        for line in lesson.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                assert line in code, f"{lesson.name}: {line!r} is not in the handout's notebook"
        assert "### BEGIN SOLUTION" not in code and "YOUR CODE HERE" not in code, lesson.name


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_notebook_runs_in_a_kernel(lesson, solved_handout, tmp_path):
    notebook = solved_handout / "lessons" / f"{lesson.stem}.ipynb"
    assert notebook.is_file(), f"the handout has no notebook for {lesson.name}"
    figures_dir = tmp_path / "out"
    cells = run_notebook(notebook, kernel_env(solved_handout, figures_dir), f"{lesson.stem}.ipynb")
    python, package = _text(cells[-1]).split()
    assert Path(python).resolve() == Path(sys.executable).resolve(), \
        f"the kernel ran {python}, not the Python of this environment ({sys.executable})"
    assert Path(package).resolve().is_relative_to(solved_handout.resolve()), \
        f"the kernel imported {package}, not the handout's package"
    printed = "".join(_text(c) for c in cells)
    assert "QUICK mode" in printed, f"{lesson.stem}.ipynb did not run in quick mode:\n{printed[:500]}"
    figures = sorted(p.name for p in figures_dir.glob("*.png"))
    assert figures, f"{lesson.stem}.ipynb saved no figure\n{printed[-2000:]}"
    assert all(name.startswith(lesson.stem[:2]) for name in figures), f"figure names should start with the " \
        f"lesson number: {figures}"
