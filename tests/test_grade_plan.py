"""Issue 20: a grade that only the instructor's plan and the student's own work decide.

1. What is graded (assignments, parts given, maxima) comes from the instructor's side: ``--plan``
   (the ``OUT.plan.json`` that ``minilstm assign OUT`` writes beside the handout), ``--instructor`` or
   ``--assignment``; a handout's own ``assignment.json`` is only compared with it, and without any
   plan grading stops with one line.
2. A part cannot borrow the reference of a part it does not declare in ``Part.uses``: those stay the
   student's (a stub still raises); the declared uses are enough for every part on its own.
3. Points only for work: trivial stubs (``return None``, ``raise ValueError``, ``raise
   NotImplementedError``, ``pass``) earn nothing in any part, validation and error groups included.
4. A class run that one student cannot break: links among the class folder's entries, the same name
   in two class folders, formula-like names in the CSV, a 400 MB sparse file, malformed
   ``assignment.json``, a parent killed half-way (nothing half-written, a rerun continues).
5. A BOM, CRLF line ends, non-ASCII comments and a solution file linked within the student's folder
   grade as the same code without them.

Every grading run of items 1, 2, 3 and 5 is one ``grade_many`` call (module fixture ``graded``), the
class run of item 4 another (``klass``); the stopped run is a subprocess.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minilstm.classroom import assign, grade, regions
from minilstm.classroom.assemble import assemble, reference_patches
from minilstm.classroom.assignments import ASSIGNMENTS, all_parts, module_file, reference_parts
from minilstm.classroom.cli import add_cli
from minilstm.classroom.errors import GradeError
from minilstm.classroom.gradebook import write_gradebook
from minilstm.classroom.plan import grading_plan, load_plan, plan_path
from minilstm.classroom.reports import format_report
from minilstm.classroom.submission import normalize_source
from minilstm.classroom.verdicts import only_work

REPO = Path(__file__).resolve().parents[1]
PARTS = all_parts()
COURSE_POINTS = sum(a.max_points for a in ASSIGNMENTS.values())
STUBS = {"return-none": "return None", "raise-valueerror": "raise ValueError('not written yet')",
         "raise-notimplemented": "raise NotImplementedError", "pass": "pass"}
BUG = ("dc = dc + dh * o * (1.0 - tanh_c * tanh_c)", "dc = dh * o * (1.0 - tanh_c * tanh_c)")  # in cell_backward

def _csv_lines(path):
    """The CSV file's rows as text, the file closed (warnings are errors in the suite)."""
    with open(path, newline="") as fh:
        return fh.read().splitlines(keepends=True)


BORROWED_STEP = '''

def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One step = a sequence of length 1 (built on lstm_forward)."""
    h, cache = lstm_forward(x[:, None], prev_h, Wx, Wh, b, c0=prev_c)
    return h[:, 0], cache.final_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache):
    dx, dh0, dWx, dWh, db, dc0 = lstm_backward(dnext_h[:, None], cache, dc_final=dnext_c)
    return dx[:, 0], dh0, dc0, dWx, dWh, db
'''


def _parser():
    parser = argparse.ArgumentParser(prog="minilstm")
    add_cli(parser.add_subparsers(dest="command"))
    return parser


def _copy(src: Path, dest: Path) -> Path:
    """A submission made of ``src``'s package (and its assignment.json, if any)."""
    shutil.copytree(src / "minilstm", dest / "minilstm", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if (src / "assignment.json").is_file():
        shutil.copy(src / "assignment.json", dest / "assignment.json")
    return dest


def _stubbed_handout(out: Path, statement: str) -> Path:
    """The whole course handed out, every region of the package replaced by ``statement``."""
    real = regions.stub_lines
    regions.stub_lines = lambda r: [r.indent + statement] if r.path.startswith("minilstm/") else real(r)
    try:
        assign.write_student_version(out)
    finally:
        regions.stub_lines = real
    return out


def _only(key):
    """A plan that grades part ``key`` alone (its assignment's other parts given)."""
    name = key.split(":")[0]
    return {"assignments": [name], "solved": [k for k in PARTS if k.startswith(name + ":") and k != key]}


def _lstm_only(*keys):
    return {"assignments": ["lstm"], "solved": [k for k in PARTS if k.startswith("lstm:") and k not in keys]}


def _buggy_solution(dest: Path) -> Path:
    """A complete solution (the reference's code) with a bug in cell_backward."""
    _copy(REPO, dest)
    lstm_py = dest / "minilstm/ops/lstm.py"
    text = lstm_py.read_text(encoding="utf-8")
    assert text.count(BUG[0]) == 1
    lstm_py.write_text(text.replace(*BUG), encoding="utf-8")
    return dest


def scores(report):
    return {p["key"]: p["score"] for a in report["assignments"] for p in a["parts"] if not p.get("given")}


def groups(report, key):
    (part,) = [p for a in report["assignments"] for p in a["parts"] if p["key"] == key]
    return {g["name"]: g["score"] for g in part["groups"]}


# --------------------------------------------------------------------------- the graded submissions


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("plan")
    sub, plans = {}, {}
    # 3. trivial stubs everywhere; 1. each carries a handout record that must not be obeyed
    for name, statement in STUBS.items():
        sub[name] = _stubbed_handout(root / name, statement)
        plans[name] = plan_path(sub[name])  # what assign wrote beside it: the whole course, nothing given
    lstm_only = json.loads(assign.build(["lstm"])["assignment.json"])
    (sub["raise-notimplemented"] / "assignment.json").write_text(json.dumps(lstm_only))  # a genuine, other file
    edited = json.loads((sub["pass"] / "assignment.json").read_text())
    edited.update(solved=list(PARTS), parts={k: 50 if k == "lstm:step" else p.points for k, p in PARTS.items()})
    (sub["pass"] / "assignment.json").write_text(json.dumps(edited))  # every part given, 40 points more
    (sub["return-none"] / "assignment.json").write_text("[[]]")
    (sub["raise-valueerror"] / "assignment.json").write_text("[" * 30_000 + "]" * 30_000)
    course = sub["raise-notimplemented"]  # the fresh handout of the whole course (stubs raise)
    # 2. lstm:step built on lstm_forward / lstm_backward: with the student's stubs there, and with their own code
    for name, base in (("borrower", course), ("borrower-own", REPO)):
        sub[name] = _copy(base, root / name)
        lstm_py = sub[name] / "minilstm/ops/lstm.py"
        lstm_py.write_text(lstm_py.read_text() + BORROWED_STEP)
        plans[name] = _lstm_only("lstm:step")
    # 2. every part alone in a handout of stubs (its functions the reference's): its uses are all it needs
    patches = reference_patches()
    for key, part in PARTS.items():
        name = f"alone-{key}"
        sub[name] = _copy(course, root / name.replace(":", "-"))
        for spec in part.functions:
            rel, qualname = module_file(spec), spec.split(":", 1)[1]
            with open(sub[name] / rel, "a") as f:
                f.write(patches[(rel, qualname)])
        plans[name] = _only(key)
    # 5. the same buggy solution: plain, encoded, linked
    sub["plain"] = _buggy_solution(root / "plain")
    sub["encoded"] = _buggy_solution(root / "encoded")
    lstm_py = sub["encoded"] / "minilstm/ops/lstm.py"
    comment = "# Größe, ✓, 中文: comments not in ASCII\n"
    text = lstm_py.read_text(encoding="utf-8").replace("def cell_backward(", comment + "def cell_backward(")
    lstm_py.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    sub["linked"] = _buggy_solution(root / "linked")
    (sub["linked"] / "work").mkdir()
    shutil.move(sub["linked"] / "minilstm/ops/lstm.py", sub["linked"] / "work/lstm.py")
    (sub["linked"] / "minilstm/ops/lstm.py").symlink_to("../../work/lstm.py")
    (root / "outside.py").write_text("SECRET = 1\n")
    (sub["linked"] / "minilstm/outside.py").symlink_to(root / "outside.py")
    for name in ("plain", "encoded", "linked"):
        plans[name] = _lstm_only("lstm:step", "lstm:cell_backward")
    return {"root": root, "sub": sub, "plans": plans, "lstm_only": lstm_only}


@pytest.fixture(scope="module")
def graded(built):
    sub, plans = built["sub"], built["plans"]
    started = time.monotonic()
    reports = grade.grade_many(list(sub.values()), jobs=2, timeout=60, plans={sub[k]: plans[k] for k in sub})
    return {"reports": dict(zip(sub, reports)), "seconds": time.monotonic() - started}


# --------------------------------------------------------------------------- 1. the plan


def test_assign_writes_the_plan_beside_the_handout(built):
    plan = json.loads(plan_path(built["sub"]["pass"]).read_text())
    assert plan["assignments"] == list(ASSIGNMENTS) and plan["solved"] == []
    assert plan["parts"] == {k: p.points for k, p in PARTS.items()}
    assert plan_path(built["sub"]["pass"]).parent == built["root"]  # beside the folder, not in it
    assert not list(built["sub"]["pass"].glob("*.plan.json"))


def test_a_swapped_handout_record_changes_nothing(graded, built):
    """A genuine lstm-only assignment.json in a handout of the whole course: graded by the plan (all 148)."""
    report = graded["reports"]["raise-notimplemented"]
    assert report["max_score"] == COURSE_POINTS and [a["name"] for a in report["assignments"]] == list(ASSIGNMENTS)
    (note,) = [n for n in report["notes"] if "disagrees" in n]
    assert "assignments [lstm]" in note and "--plan" in note and f"{COURSE_POINTS} points" in note
    assert "note: the handout's assignment.json disagrees" in " ".join(format_report(report).split())


def test_an_edited_handout_record_gives_nothing_away(graded):
    """assignment.json edited to say every part was given and lstm:step is worth 50: ignored, noted."""
    report = graded["reports"]["pass"]
    assert report["given"] == [] and report["max_score"] == COURSE_POINTS and report["score"] == 0
    assert all(not p.get("given") for a in report["assignments"] for p in a["parts"])
    (note,) = [n for n in report["notes"] if "disagrees" in n]
    assert "solved [" in note and f"worth {COURSE_POINTS + 40} points" in note


def test_a_malformed_handout_record_is_noted_not_a_crash(graded):
    for name, why in (("return-none", "not an object"), ("raise-valueerror", "could not be read")):
        report = graded["reports"][name]
        assert report["max_score"] == COURSE_POINTS and report["errors"] == []
        assert any(why in n for n in report["notes"]), report["notes"]


def test_without_a_plan_grading_stops_with_one_line(built, capsys):
    folder = built["sub"]["pass"]
    with pytest.raises(GradeError, match="no grading plan: pass --plan"):
        grade.grade(folder)
    args = _parser().parse_args(["grade", str(folder)])
    assert args.func(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--plan" in err and "--instructor" in err and "--assignment" in err


def test_a_plan_that_gives_every_part_away_is_refused(built, tmp_path):
    everything = {"assignments": ["lstm"], "solved": [k for k in PARTS if k.startswith("lstm:")]}
    with pytest.raises(GradeError, match="leaves nothing to grade"):
        grade.grade(built["sub"]["pass"], plan=everything)
    (tmp_path / "grading.json").write_text(json.dumps(everything))
    with pytest.raises(GradeError, match="leaves nothing to grade"):
        grade.grade(built["sub"]["pass"], instructor=tmp_path)


def test_where_the_plan_comes_from(tmp_path):
    plan = tmp_path / "h.plan.json"
    plan.write_text(json.dumps({"assignments": ["dropout"], "solved": ["dropout:operator"], "parts": {}}))
    loaded = load_plan(plan)
    assert loaded["assignments"] == ["dropout"] and loaded["from"] == f"--plan {plan}"
    made = grading_plan(None, {"assignments": ["lstm"], "solved": None, "folder": "X"}, None, loaded)
    assert [a.name for a in made["chosen"]] == ["dropout"] and made["given"] == {"dropout:operator"}  # the file
    made = grading_plan(["lstm"], None, ["lstm:step"], loaded)  # the command line first
    assert [a.name for a in made["chosen"]] == ["lstm"] and made["given"] == {"lstm:step"}
    made = grading_plan(["all"], None, None, None)
    assert len(made["chosen"]) == len(ASSIGNMENTS) and made["given"] == set()
    made = grading_plan(None, {"assignments": ["training"], "solved": ["training:loop"], "folder": "X"})
    assert [a.name for a in made["chosen"]] == ["training"] and made["given"] == {"training:loop"}
    for bad, why in (({"assignments": []}, "non-empty"), ({"assignments": ["nope"]}, "unknown assignment"),
                     ({"assignments": ["lstm"], "solved": ["lstm:nope"]}, "solved")):
        plan.write_text(json.dumps(bad))
        with pytest.raises(GradeError, match=why):
            load_plan(plan)
    plan.write_text("[" * 100_000)
    with pytest.raises(GradeError, match="not a plan"):
        load_plan(plan)
    help_text = _parser()._subparsers._group_actions[0].choices["grade"].format_help()
    assert "--plan" in help_text and "OUT.plan.json" in help_text


# --------------------------------------------------------------------------- 2. no borrowing


def test_a_part_cannot_borrow_the_reference_of_a_part_it_does_not_use(graded):
    report = graded["reports"]["borrower"]
    assert scores(report) == {"lstm:step": 0}
    text = "\n".join(m for a in report["assignments"] for p in a["parts"] for m in p["messages"])
    assert "raised at minilstm/ops/lstm.py" in text and "in lstm_forward" in text  # the student's stub
    # the same code on the student's own lstm_forward / lstm_backward: their work, and it is right
    assert scores(graded["reports"]["borrower-own"]) == {"lstm:step": PARTS["lstm:step"].points}


def test_the_declared_uses_are_enough_for_every_part_alone(graded):
    """Each part filled in (with the reference's functions) in a handout where everything else is a stub: the
    parts it uses are the reference's while it is graded, so it earns every point."""
    for key in PARTS:
        report = graded["reports"][f"alone-{key}"]
        assert scores(report) == {key: PARTS[key].points}, (key, report["assignments"])


def test_uses_are_known_parts_and_closed():
    for key, part in PARTS.items():
        assert set(part.uses) <= set(PARTS) and key not in part.uses
        assert key not in reference_parts(key)
        for used in reference_parts(key):
            assert reference_parts(used) - {key} <= reference_parts(key)
    assert reference_parts("lstm:step") == {"lstm:cell_forward", "lstm:cell_backward"}
    assert reference_parts("lstm:cell_forward") == set()


def test_assemble_keeps_the_students_own_functions_outside_the_uses(built, tmp_path):
    assemble(built["sub"]["borrower"], tmp_path / "step", "lstm:step")
    text = (tmp_path / "step/minilstm/ops/lstm.py").read_text()
    assert "the reference cell_forward" in text and "the reference cell_backward" in text
    assert "the reference lstm_forward" not in text and "the reference lstm_backward" not in text
    # a file that does not compile is taken from the reference with the functions of parts not used raising
    broken = _copy(built["sub"]["borrower"], tmp_path / "broken")
    (broken / "minilstm/ops/lstm.py").write_text("def oops(:\n")
    assemble(broken, tmp_path / "masked", "translation:masked_loss")
    text = (tmp_path / "masked/minilstm/ops/lstm.py").read_text()
    assert "lstm_forward = _minilstm_unavailable" in text and "cell_forward = _minilstm_unavailable" in text


# --------------------------------------------------------------------------- 3. points only for work


@pytest.mark.parametrize("stub", list(STUBS))
def test_a_trivial_stub_earns_nothing_in_any_part(graded, stub):
    report = graded["reports"][stub]
    assert report["score"] == 0, {k: v for k, v in scores(report).items() if v}
    assert set(scores(report)) == set(PARTS)


def test_validation_groups_need_a_correct_value_first():
    marked = {f"{k}/{g.name}" for k, p in PARTS.items() for g in p.groups if g.needs_output}
    assert {"lstm:cell_forward/inputs", "dropout:operator/errors", "translation:masked_loss/ones"} <= marked
    for key, part in PARTS.items():
        assert any(not g.needs_output for g in part.groups), key
    part = PARTS["lstm:cell_forward"]
    result = {"key": "lstm:cell_forward", "points": 5, "groups": [
        {"name": "values", "score": 0, "points": 3, "passed": False, "messages": ["wrong"]},
        {"name": "float32", "score": 0, "points": 1, "passed": False, "messages": ["wrong"]},
        {"name": "inputs", "score": 1, "points": 1, "passed": True, "messages": []}]}
    out = only_work(json.loads(json.dumps(result)), part)
    assert out["score"] == 0 and not out["groups"][2]["passed"] and "a stub earns nothing" in out["messages"][-1]
    result["groups"][1].update(score=1, passed=True, messages=[])
    out = only_work(json.loads(json.dumps(result)), part)
    assert [g["score"] for g in out["groups"]] == [0, 1, 1]  # float32 passed: the inputs group counts


# --------------------------------------------------------------------------- 5. honest work, however written


def test_bom_crlf_non_ascii_and_a_linked_file_grade_as_the_plain_code(graded):
    plain = graded["reports"]["plain"]
    # step uses the reference cell_backward (the bug is in the student's): full marks; cell_backward loses
    assert scores(plain) == {"lstm:cell_backward": 0, "lstm:step": PARTS["lstm:step"].points}
    for name in ("encoded", "linked"):
        report = graded["reports"][name]
        assert scores(report) == scores(plain), (name, format_report(report))
        for key in scores(plain):
            assert groups(report, key) == groups(plain, key), (name, key)
    notes = " ".join(graded["reports"]["linked"]["notes"])
    assert "links out of the student's folder" in notes and "minilstm/outside.py" in notes


def test_source_is_normalised_to_utf8_without_bom_or_cr():
    assert normalize_source(b"\xef\xbb\xbfx = 1\r\ny = 2\r") == b"x = 1\ny = 2\n"
    latin = "# -*- coding: latin-1 -*-\nname = 'Müller'\n".encode("latin-1")
    out = normalize_source(latin).decode("utf-8")
    assert "Müller" in out and "coding: latin-1" not in out and out.count("\n") == 2
    assert normalize_source(b"\xff\xfe not decodable") == b"\xff\xfe not decodable"


# --------------------------------------------------------------------------- 4. a class run


@pytest.fixture(scope="module")
def klass(built, tmp_path_factory):
    root = tmp_path_factory.mktemp("klass")
    one = root / "class1"
    course = built["sub"]["raise-notimplemented"]
    _copy(REPO, one / "ada")  # cell_forward done
    names = ["=2+3", "+", "-", "@", "\tTab", "\rCR"]
    for name in names:
        _copy(course, one / name)
    (one / "=2+3" / "assignment.json").write_text("[[]]")
    (one / "+" / "assignment.json").write_text("[" * 30_000 + "]" * 30_000)
    sparse = _copy(REPO, one / "sparse")
    for rel in ("minilstm/huge.py", "minilstm/ops/blob.bin"):
        with open(sparse / rel, "wb") as f:
            f.truncate(400 * 2**20)  # 400 MB, nothing on disk
    (one / "link-to-ada").symlink_to(one / "ada")
    _copy(REPO, root / "elsewhere")
    (one / "link-out").symlink_to(root / "elsewhere")
    plan = root / "handout.plan.json"
    plan.write_text(json.dumps(_lstm_only("lstm:cell_forward")))
    out = root / "results"
    status, printed = _run(["grade", str(one), "--plan", str(plan), "--out", str(out), "-j", "2"])
    rows = {r["student"]: r for r in csv.DictReader(_csv_lines(out / "gradebook.csv"))}
    return {"root": root, "out": out, "status": status, "rows": rows, "printed": printed, "names": names,
            "plan": plan, "course": course}


def _run(argv):
    """(exit status, what was printed) of a minilstm command run here."""
    args = _parser().parse_args(argv)
    stdout = io.StringIO()
    real, sys.stdout = sys.stdout, stdout
    try:
        status = args.func(args)
    finally:
        sys.stdout = real
    return status, stdout.getvalue()


def test_links_among_the_class_entries_are_never_graded_twice_or_from_outside(klass):
    students = sorted(klass["rows"])
    assert not any("link" in s for s in students) and len(students) == 8, students
    printed = klass["printed"]
    assert "link-to-ada: a link to ada, who is graded once" in printed
    assert "link-out: a link to" in printed and "outside the class folder: skipped" in printed


def test_formula_like_names_and_messages_are_text_in_the_csv(klass):
    rows = klass["rows"]
    for name in klass["names"]:  # a leading single quote, as OWASP advises
        assert rows["'" + name]["max_score"] == "5"
    for row in csv.reader(io.StringIO((klass["out"] / "gradebook.csv").read_text())):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    feedback = sorted(p.name for p in (klass["out"] / "feedback").iterdir())
    assert len(feedback) == 8 and "=2+3.txt" in feedback and not list(klass["out"].rglob("*.tmp"))
    assert "\\rCR" in klass["printed"] and "\rCR" not in klass["printed"]  # one printable line per student
    report = {"student_dir": "/c/=HYPERLINK(\"x\")", "score": 0, "max_score": 5, "assignments": [],
              "errors": ["=cmd|' /C calc'!A0"], "notes": ["+1", "-2"]}
    book = write_gradebook([report, {**report, "student_dir": "/c/-1"}], klass["root"] / "unit")
    got = list(csv.reader(_csv_lines(book)))
    assert got[1][0] == "'=HYPERLINK(\"x\")" and got[1][3] == "'=cmd|' /C calc'!A0"
    assert got[1][4] == "'+1; -2" and got[2][0] == "'-1"
    assert {p.name for p in (klass["root"] / "unit/feedback").iterdir()} == {"=HYPERLINK__x__.txt", "1.txt"}


def test_the_same_name_in_two_class_folders_keeps_two_feedback_files(klass):
    root = klass["root"]
    _copy(klass["course"], root / "class2/ada")
    out = root / "two"
    status, printed = _run(["grade", str(root / "class1/ada"), str(root / "class2/ada"), "--plan",
                            str(klass["plan"]), "--out", str(out)])
    rows = {r["student"]: r for r in csv.DictReader(_csv_lines(out / "gradebook.csv"))}
    assert rows["class1/ada"]["score"] == "5" and rows["class2/ada"]["score"] == "0"
    one, two = rows["class1/ada"]["feedback"], rows["class2/ada"]["feedback"]
    assert one != two
    assert "score: 5/5" in (out / one).read_text() and "score: 0/5" in (out / two).read_text()


def test_a_sparse_file_is_not_copied_and_notes_say_what_was_skipped(klass, tmp_path):
    row = klass["rows"]["sparse"]
    assert row["score"] == "5"
    assert "minilstm/huge.py (400 MiB)" in row["notes"]
    assert "not Python source" in row["notes"] and "blob.bin" in row["notes"]
    started = time.monotonic()
    assemble(klass["root"] / "class1/sparse", tmp_path / "pkg", "lstm:cell_forward")
    assert time.monotonic() - started < 5
    assert not (tmp_path / "pkg/minilstm/huge.py").exists() and not (tmp_path / "pkg/minilstm/ops/blob.bin").exists()
    assert (tmp_path / "pkg/minilstm/ops/lstm.py").is_file()


def test_malformed_records_in_a_class_run_are_notes(klass):
    rows = klass["rows"]
    assert rows["'=2+3"]["max_score"] == "5" and "not an object" in rows["'=2+3"]["notes"]
    assert rows["'+"]["max_score"] == "5" and "could not be read" in rows["'+"]["notes"]
    assert rows["ada"]["score"] == "5" and klass["status"] == 1


SLOW = "    import time; time.sleep(2)  # a slow student: the run is stopped while it is graded\n"


def test_a_stopped_class_run_leaves_no_half_gradebook_and_a_rerun_continues(built, tmp_path):
    students = tmp_path / "class"
    _copy(REPO, students / "a-quick")
    slow = _copy(REPO, students / "b-slow")
    lstm_py = slow / "minilstm/ops/lstm.py"
    anchor = "    xp.multiply(f, prev_c, out=next_c)\n"
    lstm_py.write_text(lstm_py.read_text().replace(anchor, SLOW + anchor))
    plan = tmp_path / "handout.plan.json"
    plan.write_text(json.dumps(_lstm_only("lstm:cell_forward")))
    out = tmp_path / "results"
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "minilstm", "grade", str(students), "--plan", str(plan),
                             "--out", str(out), "-j", "1"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list((out / "reports").glob("a-quick-*.json")) and time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be stopped"
            time.sleep(0.05)
        assert list((out / "reports").glob("a-quick-*.json")), "no report saved for the first student"
    finally:
        proc.send_signal(signal.SIGKILL)  # the parent, killed while the slow student is graded
        proc.wait()
    assert not (out / "gradebook.csv").exists() and not list(out.rglob("*.tmp"))
    (saved,) = (out / "reports").glob("a-quick-*.json")
    first = json.loads(saved.read_text())
    assert first["score"] == PARTS["lstm:cell_forward"].points
    status, printed = _run(["grade", str(students), "--plan", str(plan), "--out", str(out), "-j", "1"])
    assert status == 0
    assert "a-quick  (saved report: files unchanged)" in printed and "b-slow  (saved" not in printed
    rows = list(csv.DictReader(_csv_lines(out / "gradebook.csv")))
    assert [(r["student"], r["score"]) for r in rows] == [("a-quick", "5"), ("b-slow", "5")]
    # a changed file is graded again
    (students / "a-quick/minilstm/extra.py").write_text("X = 1\n")
    status, printed = _run(["grade", str(students), "--plan", str(plan), "--out", str(out), "-j", "1"])
    assert "a-quick  (saved" not in printed and "b-slow  (saved report: files unchanged)" in printed
    assert json.loads(saved.read_text())["cache_key"] != first["cache_key"]
