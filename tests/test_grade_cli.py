"""The classroom's command line and its fuzz items (issue 22): bad flags are refused by the parser in one line,
messages use the user's words, a handout ships only the lessons' sources.

Each test here was seen to fail with its fix undone (the flags typed as plain int/float, repr in the
messages, every file of lessons/ copied).
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minilstm.classroom import assign, regions
from minilstm.classroom.cli import add_cli
from minilstm.classroom.errors import AssignError

REPO = Path(__file__).resolve().parents[1]


def _parser():
    parser = argparse.ArgumentParser(prog="minilstm")
    add_cli(parser.add_subparsers(dest="command"))
    return parser


@pytest.mark.parametrize("flag,value,said", [
    ("--timeout", "0", "argument --timeout: must be at least 1, got 0"),
    ("--timeout", "-5", "argument --timeout: must be at least 1, got -5"),
    ("--timeout", "nan", "argument --timeout: must be a finite number, got nan"),
    ("--timeout", "inf", "argument --timeout: must be a finite number, got inf"),
    ("--memory", "0", "argument --memory: must be at least 256, got 0"),
    ("--memory", "1", "argument --memory: must be at least 256, got 1"),
    ("--memory", "lots", "argument --memory: 'lots' is not a whole number"),
    ("-j", "0", "argument -j/--jobs: must be at least 1, got 0"),
    ("--assignment", "nope", "argument --assignment: no assignment nope; choose from lstm, dropout, training, "
                             "translation, all"),
])
def test_bad_grade_limits_are_refused_by_the_parser(tmp_path, capsys, flag, value, said):
    """grade --timeout 0|-5|nan and --memory 0|1 used to be accepted, then every student was blamed (or, with
    nan, there was no limit at all)."""
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(["grade", str(tmp_path), "--assignment", "lstm", flag, value])
    assert info.value.code == 2
    assert said in capsys.readouterr().err


def test_the_smallest_memory_accepted_grades_the_reference():
    """The parser's floor is not arbitrary: the reference earns full marks with that much memory per part."""
    from minilstm.classroom import cli, grade
    report = grade.grade(REPO, assignments=["lstm"], memory_mb=cli.MIN_MEMORY_MB, timeout=cli.MAX_TIMEOUT, jobs=2)
    assert report["score"] == report["max_score"] > 0, report["errors"]


def test_a_bad_flag_is_one_line_on_the_real_command_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "minilstm", "grade", str(tmp_path), "--timeout", "nan"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 2 and "--timeout: must be a finite number" in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr, run.stderr


def test_messages_say_the_users_words_not_a_python_repr(tmp_path, capsys):
    with pytest.raises(AssignError) as info:
        assign.build(["lstm"], solved=["lstm:nope"])
    assert str(info.value).startswith("--solved lstm:nope: assignment lstm has no part nope; its parts are ")
    assert "'" not in str(info.value)
    with pytest.raises(SystemExit):
        _parser().parse_args(["assign", str(tmp_path / "out"), "--assignment", "nope"])
    err = capsys.readouterr().err
    assert "no assignment nope; choose from lstm, dropout, training, translation" in err and "'nope'" not in err


def test_a_file_that_cannot_be_written_is_one_line(tmp_path, capsys):
    """An output path through a file: the OSError is one line naming the path, exit status 2 (grade), 1 (assign)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    args = _parser().parse_args(["assign", str(blocker / "handout"), "--assignment", "lstm"])
    assert args.func(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("minilstm assign: error: ") and str(blocker) in err and len(err.splitlines()) == 1
    one_part = [a for key in ("cell_backward", "step", "sequence_forward", "sequence_backward")
                for a in ("--solved", f"lstm:{key}")]
    args = _parser().parse_args(["grade", str(REPO), "--assignment", "lstm", *one_part, "--json",
                                 str(blocker / "report.json")])
    assert args.func(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("minilstm grade: error: ") and len(err.splitlines()) == 1, err


def test_a_handout_ships_only_the_lessons_sources(tmp_path):
    """A notebook lying in lessons/ (run by hand: outputs, maybe a solution) is never copied (issue 22)."""
    root = tmp_path / "course"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".pytest_cache", "*.ipynb")
    shutil.copytree(REPO / "minilstm", root / "minilstm", ignore=ignore)
    shutil.copytree(REPO / "lessons", root / "lessons", ignore=ignore)
    shutil.rmtree(root / "lessons" / regions.LESSON_OUTPUTS, ignore_errors=True)
    for name in assign.ROOT_FILES:
        shutil.copy(REPO / name, root / name)
    stray = {"cells": [{"cell_type": "code", "source": "my scratch work", "metadata": {}, "outputs": []}]}
    (root / "lessons" / "scratch.ipynb").write_text(json.dumps(stray))
    (root / "lessons" / "01_lstm_cell.ipynb").write_text(json.dumps(stray))  # a run copy of a lesson
    (root / "lessons" / "notes.txt").write_text("the instructor's notes")
    files = assign.build(["dropout"], source_root=root)
    lessons = {rel for rel in files if rel.startswith("lessons/")}
    assert "lessons/scratch.ipynb" not in lessons and "lessons/notes.txt" not in lessons
    assert b"my scratch work" not in files["lessons/01_lstm_cell.ipynb"]  # the one made from 01_lstm_cell.py
    assert {Path(rel).suffix for rel in lessons} == {".ipynb", ".py", ".md"}
    assert "lessons/*.ipynb" in (REPO / ".gitignore").read_text().splitlines()
