"""Percent-format lessons -> notebooks (minilstm/notebooks.py: jupytext reads, nbformat validates)."""

import json
import sys
from pathlib import Path

import nbformat
import pytest

from minilstm import notebooks
from minilstm.classroom import assign
from minilstm.classroom.errors import AssignError

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted((REPO / "lessons").glob("[0-9]*.py"))


def test_header_markdown_and_code_cells():
    nb = notebooks.percent_to_notebook(
        "# ---\n# jupyter:\n#   jupytext:\n#     text_representation:\n#       format_name: percent\n# ---\n\n"
        "# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nimport numpy as np\n\nx = 1\n", "demo")
    assert nb.nbformat == 4 and nb.nbformat_minor >= 5
    assert [c.cell_type for c in nb.cells] == ["markdown", "code"]
    assert nb.cells[0].source == "# Title\n\ntext"
    assert nb.cells[1].source == "import numpy as np\n\nx = 1"
    assert nb.cells[1].outputs == [] and nb.cells[1].execution_count is None
    assert [c.id for c in nb.cells] == ["demo-0", "demo-1"]
    assert nb.metadata.kernelspec == notebooks.DEFAULT_KERNELSPEC
    nbformat.validate(nb)


def test_the_whole_percent_format():
    """What the old hand-written converter got wrong: raw cells, #%%, magics, titles and tags, the kernelspec."""
    text = ("# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Course\n#     language: python\n"
            "#     name: course-env\n# ---\n\n"
            "# %% [raw]\n# raw text, not code\n\n"
            "#%%\ny = 2\n\n"
            '# %% Setup tags=["parameters"]\n# %pip install minilstm\n# !ls\nz = 3\n')
    nb = notebooks.percent_to_notebook(text, "demo")
    assert [c.cell_type for c in nb.cells] == ["raw", "code", "code"]
    assert nb.cells[0].source == "raw text, not code"
    assert nb.cells[1].source == "y = 2"  # "#%%" is a cell marker too
    assert nb.cells[2].source == "%pip install minilstm\n!ls\nz = 3"  # magics uncommented
    assert nb.cells[2].metadata["tags"] == ["parameters"] and nb.cells[2].metadata["title"] == "Setup"
    assert nb.metadata.kernelspec["name"] == "course-env"  # the lesson's own kernel is kept
    assert notebooks.is_percent_script(text) and notebooks.is_percent_script("#%%\nx = 1\n")
    assert not notebooks.is_percent_script("x = 1  # %% not at the start\n")


def test_cell_ids_are_fixed_and_valid():
    assert notebooks.cell_id("01_lstm_cell", 7) == "01_lstm_cell-7"
    long = notebooks.cell_id("x" * 100 + " y", 123)
    assert len(long) <= 64 and long.endswith("-123")


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lessons_convert_deterministically_and_validate(lesson):
    text = lesson.read_text(encoding="utf-8")
    first = notebooks.notebook_bytes(notebooks.percent_to_notebook(text, lesson.stem))
    again = notebooks.notebook_bytes(notebooks.percent_to_notebook(text, lesson.stem))
    assert first == again and first.endswith(b"\n")
    nb = nbformat.reads(first.decode("utf-8"), as_version=4)
    nbformat.validate(nb)
    ids = [c.id for c in nb.cells]
    assert ids == [f"{lesson.stem}-{i}" for i in range(len(nb.cells))]
    assert nb.cells[0].cell_type == "markdown" and any(c.cell_type == "code" for c in nb.cells)
    # every code line of the script reaches the notebook
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            assert line in code, f"{lesson.name}: {line!r} missing from the notebook"


def test_assign_says_which_extra_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "jupytext", None)  # as if jupytext were not installed
    with pytest.raises(AssignError, match=r'pip install "minilstm\[classroom\]"'):
        assign.percent_to_notebook("# %%\nx = 1\n", "demo")


def test_training_in_jupyter_draws_a_bar_without_the_iprogress_warning(tmp_path):
    """In a real kernel without ipywidgets, train() draws tqdm's text bar; tqdm.auto would warn
    "IProgress not found" there."""
    from test_lessons import kernel_env, run_notebook

    code = (
        "import warnings\nwarnings.simplefilter('always')\n"
        "import minilstm\nfrom minilstm.data import Corpus, load_corpus\n"
        "full = load_corpus('builtin')\n"
        "small = Corpus(name='s', vocab=full.vocab, train=full.train[:3000], valid=full.valid[:800],\n"
        "               test=full.test[:800], entropy=None, description='')\n"
        "res = minilstm.train('tiny', corpus=small, hidden_size=8, num_steps=8, batch_size=8, epochs=1,\n"
        "                     eval_batch_size=4, progress=True)\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    path = tmp_path / "train.ipynb"
    nbformat.write(nb, str(path))
    cells = run_notebook(path, kernel_env(REPO, tmp_path / "out"), "train.ipynb")
    outputs = cells[0].outputs
    everything = json.dumps(outputs)
    assert "IProgress" not in everything and "ipywidgets" not in everything, everything[-2000:]
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        assert "epoch 1/1" in stderr, f"no progress bar in Jupyter: {everything[-2000:]}"
    stdout = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    assert "epoch  1" in stdout and "final: valid ppl" in stdout
