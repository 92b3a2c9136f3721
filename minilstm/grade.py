"""``minilstm grade``: run an assignment's tests on a student's code and score each part.

How a grading run works:

1. A scratch folder gets the tests: the visible ones (what the student has),
   the hidden ones (only in the instructor's installed package), the shared
   helpers, and the grading plugin; plus a copy of the instructor's package
   renamed ``minilstm_reference``, used to test each part in isolation (see
   ``assignments/grading_plugin.py``).
2. pytest runs in a **subprocess** whose ``PYTHONPATH`` starts with the
   student's folder, so ``import minilstm`` there is the student's code. The
   grader's own process never imports the student's package, and the plugin
   refuses to grade if ``minilstm`` resolves anywhere else.
3. Every test is marked with its part; a part earns its points when all of its
   tests pass. The messages of failed tests (which function, which value or
   gradient, how far off) are collected per part.

The result is printed as a table and can be written as JSON (``--json``) for
course tooling. Run on a student's own copy (which has no hidden tests) it
is a self-check with the visible tests only, and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .assignments import (ASSIGNMENTS, HERE as ASSIGNMENTS_DIR, VISIBLE_DIR, hidden_tests_available,
                          part_key, select)

PACKAGE_DIR = Path(__file__).resolve().parent
REFERENCE_NAME = "minilstm_reference"
DEFAULT_TIMEOUT = 600  # seconds for the whole pytest run (the reference needs about 10)
SCHEMA = 1


class GradeError(RuntimeError):
    """The submission could not be graded at all (not a package, unreadable, ...)."""


# ---------------------------------------------------------------------------
# Preparing the run
# ---------------------------------------------------------------------------

def _assignments_for(student: Path, names):
    """The assignments to grade: as asked, else the ones the handout was made for, else all."""
    if names:
        return select(names)
    meta = student / "assignment.json"
    if meta.is_file():
        try:
            listed = json.loads(meta.read_text())["assignments"]
            return select([n for n in listed if n in ASSIGNMENTS])
        except (ValueError, KeyError, TypeError):
            pass
    return select(None)


def _copy_reference(dest: Path) -> None:
    """The instructor's package as ``minilstm_reference``: relative imports make the rename free."""
    def ignore(folder, names):
        skip = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo"))}
        if Path(folder).resolve() == PACKAGE_DIR:
            skip.add("assignments")  # tests are not part of the reference code
        return skip

    shutil.copytree(PACKAGE_DIR, dest / REFERENCE_NAME, ignore=ignore)


def _prepare(tmp: Path, student: Path, chosen, official: bool) -> dict:
    """Fill the scratch folder; return the plugin's configuration."""
    tests = tmp / "tests"
    tests.mkdir()
    for name in ("conftest.py", "assignment_helpers.py"):
        shutil.copy(VISIBLE_DIR / name, tests / name)
    for a in chosen:
        shutil.copy(a.visible_tests, tests / a.visible_tests.name)
        if official:
            shutil.copy(a.hidden_tests, tests / a.hidden_tests.name)
    plugin = tmp / "plugin"
    plugin.mkdir()
    shutil.copy(ASSIGNMENTS_DIR / "grading_plugin.py", plugin / "minilstm_grading_plugin.py")
    if official:
        _copy_reference(tmp / "reference")
    (tmp / "pytest.ini").write_text(
        "[pytest]\n"
        "markers =\n"
        "    part(name): the graded part ('assignment:part') this test belongs to\n"
        "    gpu: needs a GPU\n"
        "    slow: longer tests\n")
    config = {
        "student_dir": str(student),
        "test_dir": str(tests),
        "results": str(tmp / "results.json"),
        "reference": REFERENCE_NAME if official else None,
        # every part of every assignment: isolation swaps all parts but the one under test
        "parts": {part_key(a, p): list(p.functions) for a in ASSIGNMENTS.values() for p in a.parts},
    }
    (tmp / "grading.json").write_text(json.dumps(config, indent=1))
    return config


def _importable_path(tmp: Path, student: Path) -> Path:
    """A path to the student's folder that can go on PYTHONPATH (which splits on os.pathsep)."""
    if os.pathsep not in str(student):
        return student
    link = tmp / "student"
    try:
        link.symlink_to(student, target_is_directory=True)
    except OSError as exc:
        raise GradeError(f"the folder name {student} contains {os.pathsep!r}, which PYTHONPATH cannot hold; "
                         "rename or copy the folder") from exc
    return link


def _environment(tmp: Path, student: Path) -> dict:
    """The subprocess environment: the student's folder first on PYTHONPATH, no stray minilstm."""
    env = dict(os.environ)
    inherited = [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                 if p and not (Path(p) / "minilstm").is_dir()]  # e.g. the instructor's checkout
    env["PYTHONPATH"] = os.pathsep.join(
        [str(student), str(tmp / "tests"), str(tmp / "plugin"), str(tmp / "reference")] + inherited)
    env["MINILSTM_GRADE_CONFIG"] = str(tmp / "grading.json")
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave no __pycache__ in the student's folder
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only our plugin: no third-party surprises
    env["MINILSTM_DEVICE"] = "cpu"
    # One BLAS thread: the tests multiply tiny matrices, and on a busy machine a thread pool per
    # process spins instead of working (30 s instead of 1 s for the training target).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    return env


# ---------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------

def _score_part(a, p, tests: dict, errors: list) -> dict:
    key = part_key(a, p)
    mine = {nodeid: t for nodeid, t in tests.items() if t["part"] == key}  # in run order: visible first
    failed = {n: t for n, t in mine.items() if t["outcome"] == "failed"}
    passed = sum(t["outcome"] == "passed" for t in mine.values())
    ok = bool(mine) and not failed and passed > 0
    messages, seen = [], set()
    for t in failed.values():  # one message per distinct first line: hidden tests often repeat visible ones
        first = t["message"].split("\n", 1)[0]
        if first not in seen:
            seen.add(first)
            messages.append(t["message"])
    if not mine:
        messages.append("not graded: none of this part's tests ran" + (f" ({errors[0]})" if errors else ""))
    return {
        "name": p.name, "key": key, "title": p.title, "functions": p.function_names(),
        "points": p.points, "score": p.points if ok else 0, "passed": ok,
        "tests": {"passed": passed, "failed": len(failed),
                  "skipped": sum(t["outcome"] == "skipped" for t in mine.values())},
        "messages": messages,
        "failures": [{"test": n.split("::", 1)[-1], "message": t["message"]} for n, t in failed.items()],
    }


def grade(student_dir, assignments=None, timeout: float = DEFAULT_TIMEOUT, python: str | None = None) -> dict:
    """Grade the code in ``student_dir``; returns the report (a JSON-ready dict).

    assignments: names to grade (default: those in the handout's assignment.json, else all).
    The report: ``score``/``max_score`` in total and per assignment and part, each part's
    messages, ``errors`` (problems that stopped grading), ``hidden_tests`` (False for a
    self-check without them).
    """
    student = Path(student_dir).resolve()
    if not (student / "minilstm" / "__init__.py").is_file():
        raise GradeError(f"{student} holds no minilstm package (expected {student / 'minilstm' / '__init__.py'})")
    chosen = _assignments_for(student, assignments)
    official = hidden_tests_available()
    errors = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="minilstm-grade-") as scratch:
        tmp = Path(scratch)
        _prepare(tmp, student, chosen, official)
        cmd = [python or sys.executable, "-m", "pytest", "-q", "-c", str(tmp / "pytest.ini"), "--rootdir", str(tmp),
               "-p", "no:cacheprovider", "-p", "minilstm_grading_plugin", "--tb=short", str(tmp / "tests")]
        try:
            env = _environment(tmp, _importable_path(tmp, student))
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
            log, returncode = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or ""
            log = out.decode() if isinstance(out, bytes) else out
            returncode = None
            errors.append(f"the tests did not finish within {timeout:.0f} s (an endless loop?); "
                          "parts whose tests did not all run score 0")
        results_path = tmp / "results.json"
        results = json.loads(results_path.read_text()) if results_path.is_file() else {"tests": {}, "errors": []}
    errors += results["errors"]
    if returncode not in (0, 1, None) and not results["tests"] and not errors:
        errors.append(f"pytest stopped with status {returncode}: " + " | ".join(log.strip().splitlines()[-5:]))

    report_assignments = []
    for a in chosen:
        parts = [_score_part(a, p, results["tests"], errors) for p in a.parts]
        report_assignments.append({"name": a.name, "title": a.title, "score": sum(p["score"] for p in parts),
                                   "max_score": a.max_points, "parts": parts})
    return {
        "schema": SCHEMA,
        "student_dir": str(student),
        "assignments": report_assignments,
        "score": sum(a["score"] for a in report_assignments),
        "max_score": sum(a["max_score"] for a in report_assignments),
        "hidden_tests": official,
        "errors": errors,
        "seconds": round(time.monotonic() - started, 1),
        "log_tail": "\n".join(log.splitlines()[-40:]) if errors else "",
    }


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

def format_report(report: dict, verbose: bool = False) -> str:
    """The table a student or instructor reads: points per part, and what to fix."""
    kind = "visible + hidden tests" if report["hidden_tests"] else \
        "visible tests only: a self-check, not the final grade"
    lines = [f"Grading {report['student_dir']} ({kind})"]
    for a in report["assignments"]:
        lines += ["", f"{a['name']}: {a['title']}"]
        for p in a["parts"]:
            status = "ok" if p["passed"] else "FAILED"
            lines.append(f"  {p['score']:>3}/{p['points']:<3} {p['name']:<18} {status}  ({', '.join(p['functions'])})")
            shown = p["messages"] if verbose else p["messages"][:2]
            for msg in shown:
                for k, ln in enumerate(msg.splitlines()):
                    lines.append(("      - " if k == 0 else "        ") + ln)
            if len(shown) < len(p["messages"]):
                lines.append(f"      ({len(p['messages']) - len(shown)} more: --verbose)")
        lines.append(f"  {a['score']:>3}/{a['max_score']:<3} total for {a['name']}")
    for err in report["errors"]:
        lines += ["", f"error: {err}"]
    if report["errors"] and report.get("log_tail") and verbose:
        lines += ["", "pytest output (last lines):", report["log_tail"]]
    lines += ["", f"score: {report['score']}/{report['max_score']}"]
    return "\n".join(lines)


def write_json(report: dict, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


def _cmd_grade(args) -> int:
    """Exit status: 0 full marks, 1 some points lost, 2 could not grade."""
    try:
        report = grade(args.student_dir, args.assignment, timeout=args.timeout)
    except GradeError as exc:
        print(f"minilstm grade: error: {exc}", file=sys.stderr)
        return 2
    print(format_report(report, verbose=args.verbose))
    if args.json:
        write_json(report, args.json)
        print(f"report: {args.json}")
    if report["errors"] and report["score"] == 0:
        return 2
    return 0 if report["score"] == report["max_score"] else 1


def add_grade_parser(subparsers) -> None:
    g = subparsers.add_parser(
        "grade", help="run an assignment's tests (visible + hidden) on a student's folder and score each part",
        description="Grade the minilstm package in STUDENT_DIR: run the assignment's visible and hidden tests in a "
                    "subprocess that imports the student's code, test each part in isolation, and print the points "
                    "per part with what to fix. Exit status 0: full marks; 1: points lost; 2: could not grade.")
    g.add_argument("student_dir", metavar="STUDENT_DIR", help="the student's folder (holding minilstm/)")
    g.add_argument("--assignment", action="append", choices=list(ASSIGNMENTS), metavar="NAME",
                   help="assignment to grade (default: the one in STUDENT_DIR/assignment.json, else all); repeatable")
    g.add_argument("--json", metavar="REPORT", help="also write the report as JSON to this file")
    g.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help=f"seconds allowed for all tests (default {DEFAULT_TIMEOUT})")
    g.add_argument("--verbose", "-v", action="store_true", help="show every message, and pytest's output on errors")
    g.set_defaults(func=_cmd_grade)


__all__ = ["grade", "format_report", "write_json", "GradeError", "add_grade_parser"]
