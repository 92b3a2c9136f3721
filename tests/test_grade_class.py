"""A whole class: a folder of student folders, graded in parallel, into a gradebook, feedback files and
Gradescope's results.json, with points and an extra group of checks from an instructor folder."""

from __future__ import annotations

import argparse
import csv
import json

import pytest

from minilstm.classroom import assign, grade
from minilstm.classroom.cli import add_cli
from minilstm.classroom.errors import GradeError
from minilstm.classroom.instructor import load_instructor


def _parser():
    parser = argparse.ArgumentParser(prog="minilstm")
    add_cli(parser.add_subparsers(dest="command"))
    return parser


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    students = root / "students"
    assign.write_student_version(students / "ada", ["dropout"], solved=["dropout:operator", "dropout:placement",
                                                                           "dropout:variational"])
    assign.write_student_version(students / "bob", ["dropout"])
    (students / "eve").mkdir()  # handed in nothing usable
    (students / "eve" / "notes.txt").write_text("sorry")
    # ada's parts were filled in with --solved, standing for her own work: grading.json gives nothing away (ada's
    # assignment.json says the parts were given: the student's file, only noted)
    instructor = root / "instructor"
    instructor.mkdir()
    (instructor / "grading.json").write_text(json.dumps({
        "assignments": ["dropout"],
        "points": {"dropout:operator": 20, "dropout:placement": {"zaremba": 10, "recurrent": 6, "none_and_eval": 4},
                   "dropout:variational": 10}}))
    (instructor / "checks.py").write_text(  # an extra group, checked on the same fresh inputs
        "import numpy as np\n"
        "def mask_is_exactly_the_scale(ctx):\n"
        "    for case in ('p10', 'p50', 'p65'):\n"
        "        if ctx.ran('dropout_mask', case):\n"
        "            m = ctx.theirs[case]['mask']\n"
        "            if not np.array_equal(np.unique(m), ctx.ref[case]['mask'].dtype.type([0, 1]) / "
        "(1 - float(ctx.inputs[case]['p']))):\n"
        "                ctx.say('dropout_mask: kept units must hold exactly 1/(1-p)')\n"
        "EXTRA_GROUPS = {'dropout:operator': [('exact_scale', 5, 'the kept value is exactly 1/(1-p)', "
        "mask_is_exactly_the_scale)]}\n")
    out = root / "results"
    args = _parser().parse_args(["grade", str(students), "-j", "2", "--out", str(out), "--instructor", str(instructor),
                                 "--timeout", "30"])
    status = args.func(args)
    return {"root": root, "out": out, "status": status, "instructor": instructor, "students": students}


def test_gradebook_and_feedback_for_every_student(klass):
    assert klass["status"] == 1  # points lost somewhere
    rows = list(csv.DictReader((klass["out"] / "gradebook.csv").read_text().splitlines()))
    assert [r["student"] for r in rows] == ["ada", "bob", "eve"]
    ada, bob, eve = rows
    # 20 + 20 + 10 points from grading.json, plus the extra group's 5 from checks.py
    assert (ada["score"], ada["max_score"], ada["dropout:operator"], ada["dropout:placement"],
            ada["dropout:variational"]) == ("55", "55", "25", "20", "10")
    assert (bob["score"], bob["max_score"]) == ("0", "55")
    assert eve["score"] == "0" and "no minilstm package" in eve["errors"]
    for name in ("ada", "bob", "eve"):
        assert (klass["out"] / "feedback" / f"{name}.txt").is_file()
    bob_text = (klass["out"] / "feedback" / "bob.txt").read_text()
    assert "dropout:placement/zaremba" in bob_text and "your code here" in bob_text
    assert "dropout:operator/exact_scale" in bob_text


def test_instructor_points_per_part_and_group(klass):
    cfg = load_instructor(klass["instructor"])
    assert sum(cfg["points"]["dropout:operator"].values()) == 20
    assert cfg["points"]["dropout:placement"] == {"zaremba": 10, "recurrent": 6, "none_and_eval": 4}
    (klass["root"] / "bad").mkdir()
    (klass["root"] / "bad" / "grading.json").write_text(json.dumps({"points": {"lstm:nope": 3}}))
    with pytest.raises(GradeError, match="unknown part lstm:nope in points; parts: lstm:cell_forward, "):
        load_instructor(klass["root"] / "bad")
    (klass["root"] / "bad" / "grading.json").write_text("{}")
    (klass["root"] / "bad" / "checks.py").write_text("EXTRA_GROUPS = {'dropout:operator': [('mask', 1, 't', len)]}")
    with pytest.raises(GradeError, match="needs a new name"):
        load_instructor(klass["root"] / "bad")


def test_gradescope_results_json(klass, tmp_path):
    results = tmp_path / "results.json"
    args = _parser().parse_args(["grade", str(klass["students"] / "ada"), "--instructor", str(klass["instructor"]),
                                 "--gradescope", str(results)])
    assert args.func(args) == 0
    data = json.loads(results.read_text())
    assert data["score"] == 55
    assert len(data["tests"]) == 10 and {t["max_score"] for t in data["tests"]} >= {10, 6, 4}
    assert all(set(t) == {"name", "score", "max_score", "output"} for t in data["tests"])
    assert all(t["score"] == t["max_score"] for t in data["tests"])
