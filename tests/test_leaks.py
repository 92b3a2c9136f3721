"""The leak check (``minilstm assign``): no handout may give away a part it hands out.

A solution can leave the reference in two ways. Copied: its lines appear in
another file (``test_assignments.py`` proves the line comparison). Restated:
lesson text derives it, pseudocode in a comment or a markdown cell walks
through it, a kernel string spells it out in C, a test helper computes the
expected values the way the solution does. Here each restatement is put into
a copy of the course's sources, and building a handout of the part must stop
with an AssignError that names the file and the part; the real course must
build cleanly for every assignment, every part on its own, and the whole
course, while the paper's equations, which the docstrings and hints state,
stay free to mention.
"""

import importlib.util
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from minilstm.classroom import assign, leaks, regions
from minilstm.classroom.assignments import ASSIGNMENTS, part_key
from minilstm.classroom.errors import AssignError

REPO = Path(__file__).resolve().parents[1]
EVERY_PART = [part_key(a, p) for a in ASSIGNMENTS.values() for p in a.parts]


def course_copy(tmp_path: Path) -> Path:
    """A copy of the course's sources (package, lessons, packaging files) to put leaks into."""
    root = tmp_path / "course"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".pytest_cache")
    shutil.copytree(REPO / "minilstm", root / "minilstm", ignore=ignore)
    shutil.copytree(REPO / "lessons", root / "lessons", ignore=ignore)
    shutil.rmtree(root / "lessons" / regions.LESSON_OUTPUTS, ignore_errors=True)
    for name in assign.ROOT_FILES:
        if (REPO / name).is_file():
            shutil.copy(REPO / name, root / name)
    return root


def append(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.write_text(path.read_text() + text)


def leak_error(root: Path, assignments, rel: str, key: str):
    """Building the handout must stop, naming ``rel`` and the part ``key``."""
    with pytest.raises(AssignError) as info:
        assign.build(assignments, source_root=root)
    message = str(info.value)
    assert re.search(rf"^leak: {re.escape(rel)}\b.* contains the solution of \[{re.escape(key)}\]", message, re.M), \
        message
    return message


# ----------------------------------------------------------------------------- the notation


def test_canonical_tokens_relate_markdown_latex_and_code():
    same = ["c = f * c_prev + i * g", "c_t = f_t * c_{t-1} + i_t * g_t", "next_c = f * prev_c + i * g",
            "c_t = f_t \\odot c_{t-1} + i_t \\odot g_t"]
    assert len({tuple(leaks.canonical_tokens(s)) for s in same}) == 1
    # the reference's in-place NumPy calls, pseudocode's operators and a C kernel's elements
    assert leaks.canonical_tokens("xp.multiply(f, prev_c, out=next_c)") == leaks.canonical_tokens("next_c = f * prev_c")
    assert leaks.canonical_tokens("xp.tanh(next_c, out=tanh_c)") == leaks.canonical_tokens("tanh_c = tanhf(c[k]);")
    assert leaks.canonical_tokens("dx = da @ cache.Wx.T") == leaks.canonical_tokens("dx = da Wx^T")
    assert leaks.canonical_tokens("a = x @ Wx + prev_h @ Wh + b") == \
        leaks.canonical_tokens("a = x_t W_x + h_{t-1} W_{h} + b")
    assert leaks.canonical_tokens("1.0 - tc ** 2") == leaks.canonical_tokens("T(1) - tc^2")
    assert leaks.canonical_tokens("dWx_loop += dWx_t") == leaks.canonical_tokens("dWx += dWx_t")
    # but different computations stay different
    assert leaks.canonical_tokens("h = o * tanh(c)") != leaks.canonical_tokens("h = o * tanh_c")
    assert leaks.canonical_tokens("da_i = di * i * (1 - i)") != leaks.canonical_tokens("da_i = di * (1 - i * i)")


# ----------------------------------------------------------------------------- restatements are refused


LATEX_CELL_BACKWARD = '''

# %% [markdown]
# ## The cell's backward pass, in the paper's notation
#
# With $tc_t = \\tanh(c_t)$, from the bottom up:
#
# ```
# dc_t     = dc_t + dh_t * o_t * (1 - tanh_c_t * tanh_c_t)
# da_i     = dc_t * g_t * i_t * (1 - i_t)
# da_f     = dc_t * c_{t-1} * f_t * (1 - f_t)
# da_o     = dh_t * tanh_c_t * o_t * (1 - o_t)
# da_g     = dc_t * i_t * (1 - g_t * g_t)
# dc_{t-1} = dc_t * f_t
# ```
'''


def test_a_lesson_markdown_cell_that_restates_a_solution_is_refused(tmp_path):
    """(a) A markdown cell walking through cell_backward's lines, in LaTeX-ish notation (c_{t-1}, _t)."""
    root = course_copy(tmp_path)
    assign.build(["lstm"], source_root=root)  # the copy itself is clean
    append(root, "lessons/01_lstm_cell.py", LATEX_CELL_BACKWARD)
    message = leak_error(root, ["lstm"], "lessons/01_lstm_cell.ipynb", "lstm:cell_backward")
    assert "markdown" in message and "minilstm/ops/lstm.py:" in message  # the cell, and the region it restates
    assign.build(["dropout"], source_root=root)  # where cell_backward is not handed out, the text may stay


@pytest.mark.parametrize("lesson, key", [
    ("02_cell_backward", "lstm:cell_backward"),  # the whole backward pass derived, line by line
    ("04_bptt", "lstm:sequence_backward"),       # BPTT as pseudocode
    ("08_cpu_to_gpu", "lstm:cell_forward"),       # the cell's CUDA kernel
])
def test_the_lessons_leaked_before_their_duplicate_blocks(tmp_path, lesson, key):
    """(a) The lesson text the issue found leaking, with its DUPLICATE block taken away, leaks again."""
    root = course_copy(tmp_path)
    path = root / "lessons" / f"{lesson}.py"
    text = path.read_text()
    assert f"### BEGIN DUPLICATE [{key}]" in text
    path.write_text(regions.render_duplicates(text, path.name, set()))  # the markers go, the text stays
    leak_error(root, ["lstm"], f"lessons/{lesson}.ipynb", key)


PSEUDOCODE_COMMENT = '''

# BPTT, as lstm_backward does it:
#   for t in reversed(range(T)):
#       prev_c = c[:, t - 1] if t > 0 else c0
#       dh_t = dh[:, t] + dh_next
#       dc_next = cell_backward(dh_t, dc_next, gates[:, t], prev_c, tanh_c[:, t], dgates[:, t])
#       dh_next = dgates[:, t] @ Wh.T
#   dWx = x^T dG;  dWh = h_prev^T dG;  db = dG summed over the rows
'''


def test_pseudocode_in_a_comment_is_refused(tmp_path):
    """(b) Comments in a package file that walk through lstm_backward's loop."""
    root = course_copy(tmp_path)
    append(root, "minilstm/gradcheck.py", PSEUDOCODE_COMMENT)
    leak_error(root, ["lstm"], "minilstm/gradcheck.py", "lstm:sequence_backward")
    assign.build(["training"], source_root=root)


KERNELS = {
    "elementwise-cell-forward": ("lstm:cell_forward", '''

CELL_FORWARD = """
    c = f * prev_c + i * g;
    tanh_c = tanh(c);
    h = o * tanh_c;
"""
'''),
    "raw-cuda-cell-forward": ("lstm:cell_forward", '''

CELL_FORWARD = r"""
extern "C" __global__ void lstm_cell(const float* i, const float* f, const float* o, const float* g,
                                     const float* prev_c, float* next_c, float* tanh_c, float* next_h, int n) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k < n) {
        next_c[k] = f[k] * prev_c[k] + i[k] * g[k];
        tanh_c[k] = tanhf(next_c[k]);
        next_h[k] = o[k] * tanh_c[k];
    }
}
"""
'''),
    "elementwise-cell-backward": ("lstm:cell_backward", '''

CELL_BACKWARD = """
    T dc = dc_in + dh * o * (T(1) - tanh_c * tanh_c);
    da_i = dc * g * i * (T(1) - i);
    da_f = dc * prev_c * f * (T(1) - f);
    da_o = dh * tanh_c * o * (T(1) - o);
    da_g = dc * i * (T(1) - g * g);
    dprev_c = dc * f;
"""
'''),
}


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_a_kernel_string_that_is_the_solution_is_refused(tmp_path, kernel):
    """(c) The cell as a CUDA kernel's source, in a string literal of a new package module."""
    key, source = KERNELS[kernel]
    root = course_copy(tmp_path)
    (root / "minilstm" / "ops" / "fused_cell.py").write_text('"""The LSTM cell as one CUDA kernel."""' + source)
    leak_error(root, ["lstm"], "minilstm/ops/fused_cell.py", key)
    assign.build(["dropout"], source_root=root)


HELPER = '''

def expected_cell_backward(dh, dc, gates, prev_c, tanh_c):
    """What cell_backward must return: (da (N, 4H), dprev_c (N, H))."""
    H = prev_c.shape[1]
    i, f, o, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
    da = np.concatenate([dc * g * i * (1.0 - i), dc * prev_c * f * (1.0 - f), dh * tanh_c * o * (1.0 - o),
                         dc * i * (1.0 - g * g)], axis=1)
    return da, dc * f
'''


def test_a_test_helper_that_states_the_solution_is_refused(tmp_path):
    """(d) A helper shipped with the visible tests that computes the expected gradients as the solution does."""
    root = course_copy(tmp_path)
    append(root, "minilstm/classroom/assignments/visible/assignment_helpers.py", HELPER)
    message = leak_error(root, ["lstm"], "tests/assignment_helpers.py", "lstm:cell_backward")
    assert re.search(r"^leak: minilstm/classroom/assignments/visible/assignment_helpers.py\b", message, re.M)
    assign.build(["translation"], source_root=root)


# ----------------------------------------------------------------------------- what is not a leak


PAPER_EQUATIONS = '''

# %% [markdown]
# The paper's equations, three ways:
#
# $c_t = f_t \\odot c_{t-1} + i_t \\odot g_t$, $h_t = o_t \\odot \\tanh(c_t)$, with
# $i, f, o = \\sigma(a_i), \\sigma(a_f), \\sigma(a_o)$ and $g = \\tanh(a_g)$, $a = x_t W_x + h_{t-1} W_h + b$.
#
# ```
# c = f * c_prev + i * g
# h = o * tanh(c)
# ```
#
# and in NumPy, `next_c = f * prev_c + i * g` and `next_h = o * np.tanh(next_c)`; the cell state's
# gradient highway is `dc_{t-1} = dc_t * f`.
'''


GIVEN_CODE_QUOTED = '''

# %% [markdown]
# Beam search keeps its sentences in one batch the same way, in `minilstm/decoding.py`:
#
# ```python
# t = 0
# while True:
#     t += 1
#     where = "start" if t == 1 else "step"
#     ...
#     keep = np.flatnonzero(~done)
#     if keep.size == 0:
#         break
#     active, scores, seqs = active[keep], scores[keep], seqs[keep]
#     state, lp = model.step(xp.asarray(tok[keep].ravel()), state)
# ```
'''


def test_text_that_quotes_given_code_is_not_a_leak(tmp_path, monkeypatch):
    """beam_search (given) keeps its batch as greedy_decode (translation:greedy) does: quoting it gives nothing
    away that the handout does not hold. Without the given code counted as public, it would be refused."""
    root = course_copy(tmp_path)
    append(root, "lessons/10_translation.py", GIVEN_CODE_QUOTED)
    assign.build(["translation"], source_root=root)
    real = leaks._given
    monkeypatch.setattr(leaks, "_given", lambda source_root: {**real(source_root), "code": set()})
    leak_error(root, ["translation"], "lessons/10_translation.ipynb", "translation:greedy")


def test_the_papers_equations_may_be_mentioned(tmp_path):
    root = course_copy(tmp_path)
    append(root, "lessons/01_lstm_cell.py", PAPER_EQUATIONS)
    files = assign.build(["lstm"], source_root=root)
    assert "the cell state's" in files["lessons/01_lstm_cell.ipynb"].decode()


@pytest.mark.parametrize("names", [[name] for name in ASSIGNMENTS] + [None],
                         ids=list(ASSIGNMENTS) + ["course"])
def test_every_handout_builds_with_the_real_lessons(names):
    files = assign.build(names)
    assert any(rel.startswith("lessons/") and rel.endswith(".ipynb") for rel in files)


@pytest.mark.parametrize("key", EVERY_PART)
def test_every_part_handed_out_alone_builds(key):
    """The whole course with every other part filled in: the solutions of the others are public then."""
    files = assign.build(None, solved=[k for k in EVERY_PART if k != key])
    assert json.loads(files["assignment.json"])["stubbed"] == [key]


# ----------------------------------------------------------------------------- the fixes


def notebook_text(files, lesson):
    return "".join("".join(c["source"]) for c in json.loads(files[f"lessons/{lesson}.ipynb"])["cells"])


def test_lessons_keep_their_derivations_except_where_they_are_the_exercise():
    lstm, dropout = assign.build(["lstm"]), assign.build(["dropout"])
    full = {  # lesson: (text the reference course keeps, text an lstm handout has instead)
        "02_cell_backward": ("dc_total = dc + dtc * (1 - tc^2)", "are yours to derive"),
        "04_bptt": ("dWx += dWx_t", "The loop is this handout's `[lstm:sequence_backward]` exercise"),
        "08_cpu_to_gpu": ("c = f * prev_c + i * g;  tanh_c = tanh(c)", '"sigmoid")`, the sigmoid'),
    }
    for lesson, (derivation, note) in full.items():
        kept, handout = notebook_text(dropout, lesson), notebook_text(lstm, lesson)
        assert derivation in kept and note not in kept and "DUPLICATE" not in kept, lesson
        assert derivation not in handout and note in handout and "DUPLICATE" not in handout, lesson
    # lesson 2 still works one line through as the example: h = o * tc gives do and dtc
    assert "do  = dh * tc" in notebook_text(lstm, "02_cell_backward")


def test_duplicate_blocks_of_comments_become_a_note_and_instead_may_continue():
    text = ("x = 1\n"
            "### BEGIN DUPLICATE [lstm:step]\n"
            "# a = x Wx + h Wh + b\n"
            "\n"
            "#   next_c = ...\n"
            "### END DUPLICATE\n"
            "### BEGIN DUPLICATE [lstm:step] (instead: # a long note (with parentheses)\n"
            "###     on two lines)\n"
            "# hidden\n"
            "### END DUPLICATE\n"
            "y = 2\n")
    out = regions.render_duplicates(text, "t.py", {"lstm:step"})
    assert out == ("x = 1\n# (Left out of this handout: it would give away [lstm:step].)\n"
                   "# a long note (with parentheses) on two lines\ny = 2\n")
    kept = regions.render_duplicates(text, "t.py", {"dropout:operator"})
    assert "hidden" in kept and "next_c" in kept and "DUPLICATE" not in kept and "on two lines" not in kept
    with pytest.raises(AssignError, match="never closes"):
        regions.render_duplicates("### BEGIN DUPLICATE [lstm:step] (instead: f(\n# x\n### END DUPLICATE\n",
                                  "t.py", {"lstm:step"})
    with pytest.raises(AssignError, match="cannot be nested"):
        regions.render_duplicates("### BEGIN DUPLICATE [lstm:step]\n### BEGIN DUPLICATE [lstm:step]\n"
                                  "### END DUPLICATE\n### END DUPLICATE\n", "t.py", {"lstm:step"})


def _visible_module(monkeypatch, name):
    visible = REPO / "minilstm" / "classroom" / "assignments" / "visible"
    monkeypatch.syspath_prepend(str(visible))
    spec = importlib.util.spec_from_file_location(f"_visible_{name}", visible / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():  # the visible tests' part marker is registered by their own conftest
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        spec.loader.exec_module(module)
    return module


def _reference_cell(a, prev_c):
    from minilstm.ops import lstm

    N, H = prev_c.shape
    gates = a.copy()
    lstm.activate_gates_(gates, H, np)
    c, tanh_c, h = (np.empty((N, H)) for _ in range(3))
    lstm.cell_forward(gates, prev_c, c, tanh_c, h, np)
    return h, c


def test_the_helpers_stored_cells_are_the_references(monkeypatch):
    """assignment_helpers.cell_equations no longer spells out the cell: for the visible tests' inputs it
    returns numbers stored from the reference (checked here), for any other input minilstm's own cell."""
    helpers = _visible_module(monkeypatch, "assignment_helpers")
    tests = _visible_module(monkeypatch, "test_lstm")
    a, prev_c, _, _ = tests.cell_case()
    p = tests.step_inputs()
    cases = [(a, prev_c), (p["x"] @ p["Wx"] + p["prev_h"] @ p["Wh"] + p["b"], p["prev_c"])]
    for a, prev_c in cases:
        stored = helpers.stored_cell(a, prev_c)
        assert stored is not None, "the visible tests' inputs changed: store the reference's cell for them again"
        for mine, ref in zip(stored, _reference_cell(a, prev_c)):
            np.testing.assert_allclose(mine, ref, rtol=1e-13, atol=1e-15)
        moved = a.copy()
        moved[0, 0] += 5e-3  # what the finite differences of the cell_backward test do
        assert helpers.stored_cell(moved, prev_c) is None
        for mine, ref in zip(helpers.cell_equations(moved, prev_c), _reference_cell(moved, prev_c)):
            np.testing.assert_allclose(mine, ref, rtol=1e-13, atol=1e-15)
    source = (REPO / "minilstm" / "classroom" / "assignments" / "visible" / "assignment_helpers.py").read_text()
    assert "f * prev_c + i * g" not in source and "+ i * g" not in source
