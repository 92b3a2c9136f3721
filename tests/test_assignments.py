"""Assignments: solution regions -> student version (``minilstm assign``) -> score (``minilstm grade``).

The loop is proved end to end: the generated handouts fail every part, the
reference passes every part, a handout with one part filled in earns exactly
that part's points, and a typical bug costs points of its part only, with a
message naming the function. Every part of every scenario runs in a child
process, so all scenarios are graded in one run, two children at a time, in a
module-scoped fixture. (Forgeries and broken parts: tests/test_grade_trust.py.)
"""

import argparse
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minilstm.classroom import assign, grade, regions
from minilstm.classroom.assignments import ASSIGNMENTS, all_parts
from minilstm.classroom.cli import add_cli
from minilstm.classroom.errors import AssignError, GradeError
from minilstm.classroom.reports import format_report

REPO = Path(__file__).resolve().parents[1]
PARTS = all_parts()  # {"lstm:cell_forward": Part, ...}
ALL_PARTS = list(PARTS)

# Typical bugs: (id, file, correct line, buggy line, the part that must lose its points, words its message must
# contain). Each run is one handout with every part filled in, then its bugs put in; bugs in different parts
# share a run, since each part is graded in isolation (so the run also proves that isolation).
BUG_RUNS = [
    (None, [  # the whole course
        ("assign-instead-of-add", "minilstm/ops/lstm.py", "dc = dc + dh * o * (1.0 - tanh_c * tanh_c)",
         "dc = dh * o * (1.0 - tanh_c * tanh_c)", "lstm:cell_backward", ["cell_backward", "dprev_c"]),
        ("dropout-backward-forgotten", "minilstm/stack.py", "dx = dropout_backward(dx, cache.drops[layer - 1])",
         "dx = dx", "dropout:placement", ["LSTMStack.backward", "embed.W"]),
        ("no-clipping", "minilstm/training.py", "gnorm = clip_global_norm_(grads, max_grad_norm)",
         "gnorm = 0.0", "training:loop", ["train_step", "clip"]),
        ("mean-not-sum", "minilstm/training.py", "nll += loss * x.shape[0]  # the loss", "nll += loss  # the loss",
         "training:evaluate", ["evaluate", "multiply it by N"]),
        ("weight-0-tokens-keep-their-gradient", "minilstm/ops/softmax.py", "dscores *= cache.weights[:, None]",
         "dscores = dscores", "translation:masked_loss", ["softmax_cross_entropy_backward", "weight 0 must be 0"]),
        ("greedy-returns-eos", "minilstm/decoding.py", "for a in np.flatnonzero(tok != model.eos):",
         "for a in range(len(tok)):", "translation:greedy", ["greedy_decode", "ends with <eos>", "leave <eos> out"]),
    ]),
    (["translation"], [
        ("weights-ignored-in-the-loss", "minilstm/ops/softmax.py", "nll *= weights  # an uncounted",
         "pass  # an uncounted", "translation:masked_loss", ["softmax_cross_entropy_forward", "unweighted loss"]),
        ("one-word-past-max-len", "minilstm/decoding.py", "(t >= limits[active])", "(t > limits[active])",
         "translation:greedy", ["greedy_decode", "more than its limit", "max_len=None: 2 S + 10"]),
    ]),
    (["lstm"], [
        ("missing-gate-derivative", "minilstm/ops/lstm.py",
         "xp.multiply(dh * tanh_c, o * (1.0 - o), out=dgates[:, 2 * H:3 * H])",
         "xp.multiply(dh * tanh_c, 1.0, out=dgates[:, 2 * H:3 * H])", "lstm:cell_backward",
         ["cell_backward", "da_o"]),
        ("no-recurrent-gradient", "minilstm/ops/lstm.py", "dh_t = dh[:, t] + dh_next", "dh_t = dh[:, t]",
         "lstm:sequence_backward", ["lstm_backward", "Wh"]),
    ]),
    (["dropout", "lstm"], [  # partial credit: one group of the part fails, the others earn their points
        ("given-recurrent-mask-ignored", "minilstm/stack.py",
         'h_masks = self._get_mask(f"rec{layer}", N, T, self.H, rng, masks, used)',
         'h_masks = self._get_mask(f"rec{layer}", N, T, self.H, rng, {}, used)',
         "dropout:placement", ["LSTMStack.forward", "recurrent", "rec1"]),
        ("fresh-mask-per-step", "minilstm/stack.py", "mask = dropout_mask((N, 1, W), self.dropout, rng, self.dtype)",
         "mask = dropout_mask((N, T, W), self.dropout, rng, self.dtype)", "dropout:variational",
         ["LSTMStack._get_mask", "rec1", "one (N, 1, H)", "per sequence"]),
        ("overwrites-its-input", "minilstm/ops/lstm.py", "    xp.multiply(o, tanh_c, out=next_h)\n",
         "    xp.multiply(o, tanh_c, out=next_h)\n    prev_c *= 0.5\n", "lstm:cell_forward",
         ["cell_forward", "overwrote its input prev_c"]),
    ]),
]
# Expected group scores where a bug leaves some groups of its part intact: {bug id: {group: score}}.
PARTIAL = {
    "given-recurrent-mask-ignored": {"zaremba": 8, "recurrent": 0, "none_and_eval": 2},
    "fresh-mask-per-step": {"per_sequence": 0, "forward": 4, "backward": 4},  # given masks are still used right
    "overwrites-its-input": {"values": 3, "float32": 1, "inputs": 0},
    # "inputs left unchanged" counts only once the part computes a correct value (needs_output): here no gradient
    # group passes, so the 2 points of an untouched input are not earned either (2 before issue 20)
    "assign-instead-of-add": {"gradients": 0, "inputs": 0},
    # the forward and the plain path (weights of ones) are right; <eos> never comes in the max_len group,
    # and every sentence of the eos group ends with <eos> before its limit
    "weight-0-tokens-keep-their-gradient": {"forward": 4, "backward": 0, "ones": 2},
    "weights-ignored-in-the-loss": {"forward": 0, "backward": 4, "ones": 2},
    "greedy-returns-eos": {"eos": 0, "max_len": 3, "batched": 0, "model": 0},
    "one-word-past-max-len": {"eos": 4, "max_len": 0, "batched": 0, "model": 0},
}
BUGS = {bug[0]: (k, bug) for k, (_, run) in enumerate(BUG_RUNS) for bug in run}
SYNTAX_ERROR = ("syntax-error", "minilstm/ops/dropout.py", None, "def oops(:\n", None, None)  # the whole file

# Handouts of the whole course with only these parts filled in (at most one per assignment): together they
# cover every part, and each proves that a part is graded in isolation, across assignments too.
ONE_PART_RUNS = [
    ["lstm:cell_forward", "dropout:operator", "training:evaluate", "translation:masked_loss"],
    ["lstm:cell_backward", "dropout:placement", "training:loop", "translation:greedy"],
    ["lstm:step", "dropout:variational"], ["lstm:sequence_forward"], ["lstm:sequence_backward"],
]


def _scenarios():
    """{id: (assignments, solved parts, bugs)} for every grading run of this module (None: the repository)."""
    out = {"reference": None}  # the slowest runs first, so two workers finish together
    for k, (names, bugs) in enumerate(BUG_RUNS):
        out[f"bugs-{k}"] = (names, ALL_PARTS, bugs)
    for k, solved in enumerate(ONE_PART_RUNS):
        out[f"only-{k}"] = (None, solved, [])
    for name in ASSIGNMENTS:
        out[f"handout-{name}"] = ([name], [], [])
    out["syntax-error"] = (["dropout"], ["dropout:placement"], [SYNTAX_ERROR])
    return out


def _make(root: Path, sid, spec):
    if spec is None:
        return REPO  # the reference grades itself
    names, solved, bugs = spec
    out = root / sid
    assign.write_student_version(out, names, solved=[key for key in solved if names is None or
                                                     key.split(":")[0] in names])
    for bug_id, rel, good, bad, _, _ in bugs:
        path = out / rel
        text = path.read_text()
        if good is None:  # replace the whole file
            path.write_text(bad)
            continue
        assert text.count(good) == 1, f"the bug scenario {bug_id} no longer matches {rel}"
        path.write_text(text.replace(good, bad))
    return out


def _plan(spec):
    """The grading plan of a scenario: its assignments, nothing given. Parts filled in with --solved stand for a
    student's work here: graded, not "given" (the plan assign wrote beside the handout would exempt them from
    scoring; test_command_line_assign_then_grade checks that). The handout's assignment.json, which says they
    were given, is the student's file: only noted."""
    names = (spec[0] if spec is not None else None) or list(ASSIGNMENTS)
    return {"assignments": names, "solved": []}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every scenario graded once, in one grading run: {id: report}. Two children at a time."""
    root = tmp_path_factory.mktemp("handouts")
    scenarios = _scenarios()
    folders = {sid: _make(root, sid, spec) for sid, spec in scenarios.items()}
    # each scenario is graded for the assignments it was handed out with (its plan)
    reports = grade.grade_many(list(folders.values()), jobs=2, timeout=60,
                               plans={folders[sid]: _plan(spec) for sid, spec in scenarios.items()})
    return dict(zip(folders, reports))


def part_scores(report):
    return {p["key"]: p["score"] for a in report["assignments"] for p in a["parts"]}


# ----------------------------------------------------------------------------- the source


def test_every_region_is_tagged_in_a_listed_function_and_every_part_has_one():
    found = regions.collect_regions(REPO)
    regions.check_regions(found, list(ASSIGNMENTS.values()))  # raises with file:line otherwise
    assert {r.key for r in found} == set(PARTS)
    owner = {}
    for key, part in PARTS.items():
        for func in part.functions:
            assert func not in owner, f"{func} is listed by {owner.get(func)} and {key}: isolation needs one owner"
            owner[func] = key
    assert all(r.hint for r in found), "every region carries a hint"


def test_markers_are_comments_only_so_the_reference_runs_unchanged():
    for rel in sorted({r.path for r in regions.collect_regions(REPO)}):
        text = (REPO / rel).read_text()
        kept = regions.render(text, rel, stub=lambda r: False)  # every region filled in, markers dropped
        assert "### BEGIN SOLUTION" not in kept and "### END SOLUTION" not in kept
        assert ast.dump(ast.parse(kept)) == ast.dump(ast.parse(text)), rel


# ----------------------------------------------------------------------------- the parser


def test_region_parsing_hint_continuation_and_stub():
    src = ("def f(x):\n"
           "    \"\"\"Doc: shows a marker that is not one:\n"
           "    ### BEGIN SOLUTION [a:b]\n"
           "    \"\"\"\n"
           "    y = 1  # shape note kept\n"
           "    ### BEGIN SOLUTION [lstm:step] (hint: use g(x) (twice);\n"
           "    ###     then return)\n"
           "    z = g(x)\n"
           "    return g(z)\n"
           "    ### END SOLUTION\n")
    (region,) = regions.find_regions(src, "m.py")
    assert (region.key, region.function, region.hint) == ("lstm:step", "f", "use g(x) (twice); then return")
    student = regions.render(src, "m.py", stub=lambda r: True)
    assert "g(z)" not in student and "shape note kept" in student and "Doc: shows a marker" in student
    namespace = {}
    exec(compile(student, "m.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match=r"f: your code here \[lstm:step\]\. Hint: use g\(x\) \(twice\)"):
        namespace["f"](1)


@pytest.mark.parametrize("src,error", [
    ("x = 1\n# ### nothing\n### BEGIN SOLUTION [a:b]\nx = 2\n", "without a matching"),
    ("### END SOLUTION\n", "without a BEGIN"),
    ("### BEGIN SOLUTION\nx = 2\n### END SOLUTION\n", "needs a tag"),
    ("### BEGIN SOLUTION [a:b]\n### BEGIN SOLUTION [a:c]\n### END SOLUTION\n", "nested"),
    ("### BEGIN SOLUTION [a:b]\n\n### END SOLUTION\n", "empty"),
    ("if x:\n### BEGIN SOLUTION [a:b]\n    y = 1\n### END SOLUTION\n", "indented like"),
    ("### BEGIN SOLUTION [a:b] (hint: never closed\nx = 1\n### END SOLUTION\n", "never closes"),
])
def test_malformed_regions_are_reported_with_file_and_line(src, error):
    with pytest.raises(AssignError, match=error) as info:
        regions.find_regions(src, "bad.py")
    assert "bad.py:" in str(info.value)


# ----------------------------------------------------------------------------- the student version


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The whole course (every assignment stubbed), generated once."""
    out = tmp_path_factory.mktemp("course") / "handout"
    assign.write_student_version(out)
    return out


def test_generation_is_deterministic(course, tmp_path):
    again = tmp_path / "again"
    assign.write_student_version(again)
    files = sorted(p.relative_to(course).as_posix() for p in course.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again).as_posix() for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (course / rel).read_bytes() == (again / rel).read_bytes(), rel
    assign.write_student_version(again, force=True)  # regenerating in place: the same bytes again
    assert all((course / rel).read_bytes() == (again / rel).read_bytes() for rel in files)


def test_force_replaces_only_an_earlier_handout(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(AssignError, match="not empty.*--force"):
        assign.write_student_version(tmp_path, ["lstm"])
    with pytest.raises(AssignError, match=f"refusing to replace {tmp_path}: it is not a handout"):
        assign.write_student_version(tmp_path, ["lstm"], force=True)  # not written by assign: never emptied
    assert (tmp_path / "notes.txt").read_text() == "mine"
    out = tmp_path / "handout"
    assign.write_student_version(out, ["lstm"])
    assert (out / "tests/test_lstm.py").is_file()
    (out / "stale.txt").write_text("the student's own file")
    assign.write_student_version(out, ["dropout"], force=True)  # an earlier handout: its files replaced
    assert not (out / "tests/test_lstm.py").exists() and (out / "tests/test_dropout.py").is_file()
    assert (out / "stale.txt").read_text() == "the student's own file"  # not written by assign: kept
    assert json.loads((out / "assignment.json").read_text())["assignments"] == ["dropout"]
    assert set(json.loads((out / assign.MARKER).read_text())["files"]) == \
        {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {assign.MARKER, "stale.txt"}
    with pytest.raises(AssignError, match="refusing"):
        assign.write_student_version(REPO, ["lstm"], force=True)


def test_force_never_removes_what_assign_did_not_write(tmp_path):
    """Issue 22: --force removes only the files of the manifest, and refuses rather than lose anyone's work."""
    out = tmp_path / "handout"
    assign.write_student_version(out, ["lstm"])
    (out / ".git").mkdir()  # the handout committed to a course repository
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (out / "minilstm" / "mine.py").write_text("X = 1\n")  # a file the student added, inside a folder assign wrote
    assign.write_student_version(out, ["lstm"], force=True)
    assert (out / ".git" / "HEAD").is_file() and (out / "minilstm" / "mine.py").is_file()
    # a file assign wrote and someone changed since: refused, nothing touched
    lstm_py = out / "minilstm" / "ops" / "lstm.py"
    lstm_py.write_text(lstm_py.read_text() + "# my work\n")
    with pytest.raises(AssignError, match=r"minilstm/ops/lstm.py changed since minilstm assign wrote it") as info:
        assign.write_student_version(out, ["dropout"], force=True)
    assert "\n" not in str(info.value) and lstm_py.read_text().endswith("# my work\n")
    assert (out / "tests" / "test_lstm.py").is_file()  # the old handout is still whole
    lstm_py.unlink()  # deleted on purpose: nothing to lose, replaced again
    # a file of the new handout where the student put one of their own: refused
    (out / "tests" / "test_dropout.py").write_text("my tests\n")
    with pytest.raises(AssignError, match=r"would overwrite tests/test_dropout.py, which the earlier assign did"):
        assign.write_student_version(out, ["dropout"], force=True)
    assert (out / "tests" / "test_dropout.py").read_text() == "my tests\n"
    # a folder that merely holds the marker, or a manifest naming a path outside the handout: not assign's
    for text in ("Written by minilstm assign\n", '{"files": {"../victim.txt": "0"}}', '{"files": {".git/HEAD": "0"}}'):
        other = tmp_path / f"other{len(text)}"
        other.mkdir()
        (other / assign.MARKER).write_text(text)
        (tmp_path / "victim.txt").write_text("keep")
        with pytest.raises(AssignError, match="is not a handout written by minilstm assign"):
            assign.write_student_version(other, ["lstm"], force=True)
        assert (tmp_path / "victim.txt").exists() and sorted(p.name for p in other.iterdir()) == [assign.MARKER]


def test_a_wheel_install_without_the_course_sources_stops_with_a_clear_error(tmp_path):
    """A non-editable install has the package but not lessons/ or setup.cfg: assign says so, writes nothing."""
    site = tmp_path / "site-packages"
    site.mkdir()
    (site / "minilstm").symlink_to(REPO / "minilstm")
    with pytest.raises(AssignError, match="installed from a wheel.*--source"):
        assign.write_student_version(tmp_path / "out", ["lstm"], source_root=site)
    assert not (tmp_path / "out").exists()


def test_the_leak_check_refuses_a_handout_that_repeats_a_solution(monkeypatch):
    monkeypatch.setattr(regions, "DUPLICATE_FILES", {})  # bench.py's classroom LSTM would go out as it is
    with pytest.raises(AssignError, match=r"leak: minilstm/bench.py contains the solution of \[lstm:"):
        assign.build(["lstm"])
    monkeypatch.undo()
    real = regions.render_duplicates
    for rel, key in (("minilstm/training.py", "training:evaluate"),  # evaluate_ensemble: a template for evaluate
                     ("lessons/05_dropout_placement.py", "training:loop")):  # its training loop by hand
        monkeypatch.setattr(regions, "render_duplicates", lambda text, path, stubbed, drop=False, rel=rel:
                            real(text, path, set() if path == rel and not drop else stubbed, drop))
        with pytest.raises(AssignError, match=rf"leak: {rel[:-3]}.* contains the solution of \[{key}\]"):
            assign.build(["training"])


def test_files_that_repeat_solutions_are_stubbed(course):
    for rel in ("minilstm/ops/cuda_kernels.py", "minilstm/bench.py"):
        text = (course / rel).read_text()
        assert "Not part of this handout" in text and "__global__" not in text and "def classroom" not in text, rel
    training = (course / "minilstm/training.py").read_text()
    assert "evaluate_ensemble is not part of this handout" in training
    assert "take_along_axis" not in training
    lesson5 = json.loads((course / "lessons/05_dropout_placement.ipynb").read_text())
    assert "sgd_step_(model.params, grads, lr)" not in json.dumps(lesson5)


def test_an_unfinished_part_is_one_line_in_jupyter_and_in_scripts(course):
    code = ("from minilstm.ops import lstm\nimport numpy as np\nz = np.zeros((1, 1))\n"
            "try:\n    lstm.cell_forward(np.zeros((1, 4)), z, z, z, z, np)\n"
            "except NotImplementedError as exc:\n    print(exc._render_traceback_())\n")
    env = {**os.environ, "PYTHONPATH": str(course), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=course, env=env, capture_output=True, text=True,
                         timeout=60)
    (line,) = ast.literal_eval(out.stdout.strip())
    assert line.startswith("Unfinished part [lstm:cell_forward] (see ASSIGNMENT.md): cell_forward: your code here")
    script = course / "lessons" / "first_cells.py"  # a lesson's first cells as a script: one line, no traceback
    script.write_text("import _lesson\nimport numpy as np\nimport minilstm as m\n"
                      "m.lstm_step_forward(*(np.zeros(s) for s in [(1, 2), (1, 3), (1, 3), (2, 12), (3, 12), (12,)]))\n")
    run = subprocess.run([sys.executable, str(script)], cwd=course / "lessons", env={**env, "MPLBACKEND": "Agg"},
                         capture_output=True, text=True, timeout=60)
    script.unlink()
    assert run.returncode == 1 and run.stderr.strip().startswith("Unfinished part [lstm:step]"), run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_visible_tests_pass_on_a_solution_and_fail_on_the_stubs(course, tmp_path):
    solved = tmp_path / "solved"
    assign.write_student_version(solved, solved=list(PARTS))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for folder, want in ((solved, 0), (course, 1)):
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=folder,
                             env={**env, "PYTHONPATH": str(folder)}, capture_output=True, text=True, timeout=300)
        assert run.returncode == want, run.stdout[-2000:]
        if want:
            assert " passed" not in run.stdout.strip().splitlines()[-1], run.stdout[-500:]  # every test fails


def test_handout_contents(course):
    files = {p.relative_to(course).as_posix() for p in course.rglob("*") if p.is_file()}
    assert {"ASSIGNMENT.md", "assignment.json", "README.md", "setup.cfg", "tests/conftest.py",
            "tests/assignment_helpers.py", assign.MARKER} <= files
    assert {f"tests/test_{name}.py" for name in ASSIGNMENTS} <= files
    # hidden tests stay home; no marker or reference solution line survives
    assert not any("hidden" in f for f in files)
    assert not any(f.startswith("lessons/out/") or f.endswith("INSTRUCTORS.md") for f in files)
    for f in files:
        if f.endswith(".py"):  # (assign.py's docstring may *show* a marker: find_regions skips docstrings)
            assert regions.find_regions((course / f).read_text(), f) == [], f
        elif f.endswith(".ipynb"):
            assert "### BEGIN SOLUTION" not in (course / f).read_text(), f
    lstm_py = (course / "minilstm/ops/lstm.py").read_text()
    assert "dc = dc + dh * o * (1.0 - tanh_c * tanh_c)" not in lstm_py
    assert '"""Backward through the cell equations for one step.' in lstm_py  # docstrings stay
    assert "Shapes: N batch, T time, D input size, H hidden size." in lstm_py
    meta = json.loads((course / "assignment.json").read_text())
    assert meta["assignments"] == list(ASSIGNMENTS) and set(meta["stubbed"]) == set(PARTS)
    # the lesson scripts become notebooks (checked against the schema where nbformat is installed)
    try:
        import nbformat
    except ImportError:
        nbformat = None
    for script in sorted((REPO / "lessons").glob("[0-9]*.py")):
        path = course / "lessons" / (script.stem + ".ipynb")
        nb = json.loads(path.read_text())
        assert nb["nbformat"] == 4 and nb["cells"], script.name
        assert f"lessons/{script.name}" not in files
        if nbformat is not None:
            nbformat.validate(nbformat.read(str(path), as_version=4))


def test_handout_imports_and_stubs_raise_with_their_hints(course):
    hints = {r.function: r.hint for r in regions.collect_regions(REPO) if r.key == "lstm:cell_forward"}
    code = (
        "import numpy as np, minilstm, minilstm.training, minilstm.cli, minilstm.model\n"
        "print(minilstm.__file__)\n"
        "from minilstm.ops import lstm\n"
        "z = np.zeros((1, 1))\n"
        "try:\n"
        "    lstm.cell_forward(np.zeros((1, 4)), z, z.copy(), z.copy(), z.copy(), np)\n"
        "except NotImplementedError as exc:\n"
        "    print('STUB:', exc)\n")
    env = {**os.environ, "PYTHONPATH": str(course), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=course, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    first, stub = out.stdout.splitlines()[:2]
    assert Path(first).resolve() == (course / "minilstm" / "__init__.py").resolve()
    assert stub.startswith("STUB: cell_forward: your code here [lstm:cell_forward]. Hint: ")
    assert hints["cell_forward"] in stub


# ----------------------------------------------------------------------------- grading


def test_the_reference_earns_every_point(graded):
    report = graded["reference"]
    assert report["errors"] == []
    assert report["score"] == report["max_score"] == sum(a.max_points for a in ASSIGNMENTS.values())
    for a in report["assignments"]:
        for p in a["parts"]:
            assert p["passed"] and len(p["groups"]) >= 2 and all(g["passed"] for g in p["groups"]), p


@pytest.mark.parametrize("name", list(ASSIGNMENTS))
def test_a_fresh_handout_fails_every_part_with_its_hint(graded, name):
    report = graded[f"handout-{name}"]
    assert report["errors"] == [] and report["score"] == 0
    assert [a["name"] for a in report["assignments"]] == [name]  # from the plan
    for p in report["assignments"][0]["parts"]:
        assert not any(g["passed"] for g in p["groups"])
        assert any("your code here" in m and "Hint:" in m for m in p["messages"]), p["messages"]


@pytest.mark.parametrize("k", range(len(ONE_PART_RUNS)), ids=["+".join(r) for r in ONE_PART_RUNS])
def test_one_part_filled_in_earns_exactly_its_points(graded, k):
    report = graded[f"only-{k}"]
    solved = ONE_PART_RUNS[k]
    assert report["errors"] == []
    assert part_scores(report) == {key: PARTS[key].points if key in solved else 0 for key in PARTS}
    assert report["score"] == sum(PARTS[key].points for key in solved)


@pytest.mark.parametrize("bug_id", list(BUGS))
def test_a_typical_bug_costs_its_part_only_and_names_the_function(graded, bug_id):
    k, (_, _, _, _, part, words) = BUGS[bug_id]
    report = graded[f"bugs-{k}"]
    broken = {bug[4] for bug in BUG_RUNS[k][1]}
    scores = part_scores(report)
    assert {key: v for key, v in scores.items() if key not in broken} == \
        {key: PARTS[key].points for key in scores if key not in broken}
    (lost,) = [p for a in report["assignments"] for p in a["parts"] if p["key"] == part]
    assert lost["score"] < lost["points"]
    if bug_id in PARTIAL:
        assert {g["name"]: g["score"] for g in lost["groups"]} == PARTIAL[bug_id]
    text = "\n".join(lost["messages"])
    for word in words:
        assert word in text, text
    assert "your code here" not in text
    shown = format_report(report)  # the report names the failing group and keeps the message whole
    failing = [g for g in lost["groups"] if not g["passed"]]
    assert all(f"{part}/{g['name']}" in shown for g in failing)
    assert all(w in " ".join(shown.split()) for w in words)


def test_grade_refuses_a_folder_without_the_package(tmp_path):
    with pytest.raises(GradeError, match="no minilstm package"):
        grade.grade(tmp_path)


def test_a_syntax_error_costs_the_parts_of_its_file(graded):
    """dropout.py holds the operator's functions and broadcast_over_time (variational): both score 0 with the
    error and where it is; placement (filled in) is graded on the reference operator and keeps its points."""
    report = graded["syntax-error"]
    (op, placement, variational) = report["assignments"][0]["parts"]
    for part in (op, variational):
        assert part["score"] == 0 and "SyntaxError" in part["error"] and "dropout.py:1" in part["error"], part
    assert placement["score"] == placement["points"] == 15, placement


def test_command_line_assign_then_grade_with_json_report(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="minilstm")
    add_cli(parser.add_subparsers(dest="command"))
    out = tmp_path / "handout"
    args = parser.parse_args(["assign", str(out), "--assignment", "dropout", "--solved", "dropout:operator"])
    assert args.func(args) == 0
    assert parser.parse_args(["assign", str(out)]).func(parser.parse_args(["assign", str(out)])) == 1  # not empty
    report_path = tmp_path / "report.json"
    args = parser.parse_args(["grade", str(out), "--json", str(report_path)])
    assert args.func(args) == 2  # no plan: the handout's own assignment.json is not trusted
    assert "no grading plan: pass --plan" in capsys.readouterr().err
    plan = tmp_path / "handout.plan.json"  # assign wrote it beside the handout
    args = parser.parse_args(["grade", str(out), "--plan", str(plan), "--json", str(report_path)])
    assert args.func(args) == 1  # points lost
    printed = capsys.readouterr().out
    assert "dropout: Dropout, and where the paper puts it" in printed
    assert "given      operator" in printed and "0/15   placement" in printed and "0/13   variational" in printed
    report = json.loads(report_path.read_text())
    # a part handed out solved is not scored: the plan assign wrote beside the handout says which
    assert report["schema"] == 2 and report["max_score"] == 28 and report["given"] == ["dropout:operator"]
    assert part_scores(report) == {"dropout:operator": 0, "dropout:placement": 0, "dropout:variational": 0}
