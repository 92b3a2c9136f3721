"""``minilstm assign`` and ``minilstm grade`` on the command line: ``add_cli(sub)`` registers both.

Every flag is checked by the parser (``minilstm/cliargs.py``): a bad value is one line naming the flag
and what it accepts, never a traceback or a run that blames every student. Errors of the run itself
(AssignError, GradeError, a file that cannot be written) are one line too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cliargs import float_arg, int_arg, path_arg
from . import reports, sandbox
from .assign import MARKER, write_student_version
from .assignments import ASSIGNMENTS, select
from .errors import AssignError, GradeError
from .grade import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, grade_many
from .gradebook import write_gradebook
from .instructor import INSTRUCTOR_CONFIG
from .plan import plan_path
from .regions import SOURCE_ROOT
from .submission import submissions_in

MIN_TIMEOUT, MAX_TIMEOUT = 1.0, 86400.0  # seconds per part: the reference needs about 1 s, a day is plenty
# MiB of address space per part: below about this much, Python and NumPy do not even start in the child
MIN_MEMORY_MB, MAX_MEMORY_MB = 256, 2**20
MAX_JOBS = 64


def _assignment_name(extra=()):
    """An argparse type: an assignment's name (or one of ``extra``), said in words when it is unknown."""
    known = list(ASSIGNMENTS) + list(extra)

    def parse(text):
        if text not in known:
            raise argparse.ArgumentTypeError(f"no assignment {text}; choose from {', '.join(known)}")
        return text
    parse.__name__ = "assignment"
    return parse


def _error(command: str, exc) -> None:
    """One line on stderr for what stopped a command: its message, or what an OSError says about which file."""
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        exc = f"{where}{exc.strerror or type(exc).__name__}"
    print(f"minilstm {command}: error: {reports.shown(exc)}", file=sys.stderr)


def _cmd_assign(args) -> int:
    if args.list:
        for a in ASSIGNMENTS.values():
            print(f"{a.name:<12} {a.max_points:>3} points  {a.title}")
            for p in a.parts:
                print(f"    {p.name:<18} {p.points:>3}  {p.title}")
        return 0
    if not args.out_dir:
        print("minilstm assign: error: OUT_DIR is required (or --list)", file=sys.stderr)
        return 2
    try:
        written = write_student_version(args.out_dir, args.assignment, args.force, args.solved or (),
                                        source_root=args.source or SOURCE_ROOT)
    except (AssignError, OSError) as exc:
        _error("assign", exc)
        return 1
    chosen = select(args.assignment)
    notebooks = sum(p.endswith(".ipynb") for p in written)
    print(f"wrote {len(written)} files to {args.out_dir}: assignment "
          f"{', '.join(a.name for a in chosen)} ({sum(a.max_points for a in chosen)} points), "
          f"{notebooks} lesson notebooks, visible tests in tests/")
    print(f"grading plan: {plan_path(args.out_dir)} (yours, not the students': keep it with your grading files)")
    print(f"grade with: minilstm grade STUDENT_DIR_OR_CLASS_DIR --plan {plan_path(args.out_dir)}")
    return 0


def _cmd_grade(args) -> int:
    """Exit status: 0 full marks (every submission), 1 some points lost, 2 could not grade."""
    notes = []
    if args.unsafe_no_sandbox:
        sandbox.allow_unsafe(True)
        notes.append("--unsafe-no-sandbox: graded without requiring the filesystem sandbox (trusted code only)")
    try:
        folders = []
        for d in args.student_dir:
            folders += submissions_in(Path(d), notes)
        seen: dict[Path, Path] = {}
        for f in folders:  # the same folder twice (two arguments, or one inside the other): graded once
            seen.setdefault(f.resolve(), f)
        if len(seen) < len(folders):
            notes.append(f"{len(folders) - len(seen)} folder(s) named twice: graded once")
        folders = list(seen.values())
        single = len(folders) == 1 and len(args.student_dir) == 1 and Path(args.student_dir[0]) == folders[0]
        if args.gradescope and not single:
            raise GradeError("--gradescope writes one submission's results; grade one folder")
        done = grade_many(folders, args.assignment, timeout=args.timeout, memory_mb=args.memory, jobs=args.jobs,
                          instructor=args.instructor, solved=args.solved, plan=args.plan,
                          reports_dir=Path(args.out) / "reports" if args.out else None, regrade=args.regrade)
    except (GradeError, OSError) as exc:
        _error("grade", exc)
        return 2
    for note in notes:
        print(f"note: {reports.shown(note)}")
    if single:
        print(reports.format_report(done[0], verbose=args.verbose))
    else:
        for r in done:
            print(f"{r['score']:>6}/{r['max_score']:<4} {reports.shown(r['student_dir'])}" +
                  (f"  ({reports.shown(r['errors'][0])})" if r["errors"] else "") +
                  ("  (saved report: files unchanged)" if r.get("reused") else ""))
            for note in r.get("notes") or ():
                print(f"             note: {reports.shown(note)}")
    try:
        if args.json:
            reports.write_json(done[0] if single else {"schema": reports.SCHEMA, "submissions": done,
                                                       "notes": notes}, args.json)
            print(f"report: {args.json}")
        if args.gradescope:
            reports.write_json(reports.gradescope_results(done[0]), args.gradescope)
            print(f"Gradescope results: {args.gradescope}")
        if args.out:
            base = Path(args.student_dir[0]).resolve() if not single and len(args.student_dir) == 1 else None
            print(f"gradebook: {write_gradebook(done, args.out, base)}")
    except OSError as exc:
        _error("grade", exc)
        return 2
    if all(r["errors"] and r["score"] == 0 for r in done):
        return 2
    return 0 if all(r["score"] == r["max_score"] for r in done) else 1


def add_cli(subparsers) -> None:
    """Register ``assign`` and ``grade`` on an argparse subparsers object (minilstm/cli.py calls this)."""
    names = ", ".join(ASSIGNMENTS)
    a = subparsers.add_parser(
        "assign", help="write the student version of an assignment (stubs, notebooks, visible tests)",
        description="Write a student version of the course into OUT_DIR: the package with the solution regions "
                    "of the chosen assignment replaced by `raise NotImplementedError(hint)`, the lessons as "
                    "notebooks, the visible tests and ASSIGNMENT.md. Hidden tests are never copied. Running it "
                    f"twice gives byte-identical files. Assignments: {names}.")
    a.add_argument("out_dir", nargs="?", metavar="OUT_DIR", type=path_arg,
                   help="folder to write (must be empty or new); its grading plan goes beside it, OUT_DIR.plan.json "
                        "(for minilstm grade --plan; keep it, do not hand it out)")
    a.add_argument("--assignment", action="append", type=_assignment_name(), metavar="NAME",
                   help=f"assignment to hand out ({names}); repeat for several; default: all of them")
    a.add_argument("--force", action="store_true",
                   help=f"replace an earlier handout in OUT_DIR: only the files its manifest ({MARKER}) lists, "
                        "and only if none of them changed since; files anyone added stay")
    a.add_argument("--solved", action="append", metavar="PART",
                   help="leave this part filled in (assignment:part); repeatable, e.g. to hand out a part as "
                        "a worked example")
    a.add_argument("--source", metavar="CHECKOUT", type=path_arg,
                   help="the course's sources (a checkout holding minilstm/, lessons/, setup.cfg); default: where "
                        "this minilstm is installed from, which must be a checkout (pip install -e .)")
    a.add_argument("--list", action="store_true", help="list the assignments and their parts, then exit")
    a.set_defaults(func=_cmd_assign)

    g = subparsers.add_parser(
        "grade", help="score each part of one student's folder, or of a whole class folder",
        description="Grade the minilstm package in each STUDENT_DIR (or in every folder of a class folder). "
                    "What is graded comes from you, never from the student's folder: --plan (the file "
                    "`minilstm assign OUT` writes beside the handout, OUT.plan.json), --instructor DIR "
                    "(grading.json's assignments and solved parts) or --assignment; without any of them grade "
                    "stops. Every part runs in its own isolated child process with a time and memory limit, on "
                    "inputs drawn fresh for this run; this process compares the returned values with the "
                    "reference and decides every verdict. Exit status 0: full marks; 1: points lost; 2: could "
                    "not grade.")
    g.add_argument("student_dir", nargs="+", metavar="STUDENT_DIR", type=path_arg,
                   help="a student's folder (holding minilstm/), or a folder of student folders")
    g.add_argument("--plan", metavar="PLAN_JSON", type=path_arg,
                   help="the grading plan minilstm assign wrote beside the handout (OUT.plan.json): which "
                        "assignments, which parts were handed out solved. A handout's own assignment.json is the "
                        "student's file: it is only compared with the plan (a disagreement is noted)")
    g.add_argument("--assignment", action="append", type=_assignment_name(extra=["all"]), metavar="NAME",
                   help="assignment to grade, repeatable; all: every one (overrides --plan and --instructor)")
    g.add_argument("--instructor", metavar="DIR", type=path_arg,
                   help=f"folder with {INSTRUCTOR_CONFIG} (points per part or group, assignments, parts given "
                        "solved) and optionally checks.py (extra groups of checks)")
    g.add_argument("--solved", action="append", metavar="PART",
                   help="a part handed out solved (assignment:part), not scored; repeatable (overrides --plan and "
                        "--instructor)")
    g.add_argument("-j", "--jobs", type=int_arg(1, MAX_JOBS), default=1,
                   help=f"parts graded in parallel, 1 to {MAX_JOBS} (default 1)")
    g.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="grade even where this machine has no filesystem sandbox (Landlock): only for code you "
                        "trust; the report records it (`python -m minilstm.classroom.sandbox` lists the layers)")
    g.add_argument("--json", metavar="REPORT", type=path_arg, help="also write the report(s) as JSON to this file")
    g.add_argument("--out", metavar="DIR", type=path_arg,
                   help="write DIR/gradebook.csv and DIR/feedback/<student>.txt (whole files only, the gradebook "
                        "at the end) and DIR/reports/ (each student's report as it is done: a rerun after an "
                        "interruption reuses those whose files are unchanged)")
    g.add_argument("--regrade", action="store_true", help="with --out: grade every submission again, even those "
                                                           "with a saved report")
    g.add_argument("--gradescope", metavar="RESULTS_JSON", type=path_arg,
                   help="write Gradescope's autograder results.json (one submission)")
    g.add_argument("--timeout", type=float_arg(MIN_TIMEOUT, MAX_TIMEOUT), default=DEFAULT_TIMEOUT,
                   help=f"seconds allowed per part, {MIN_TIMEOUT:g} to {MAX_TIMEOUT:g} (default {DEFAULT_TIMEOUT:g})")
    g.add_argument("--memory", type=int_arg(MIN_MEMORY_MB, MAX_MEMORY_MB), default=DEFAULT_MEMORY_MB,
                   help=f"address-space limit per part in MiB, at least {MIN_MEMORY_MB} (default {DEFAULT_MEMORY_MB})")
    g.add_argument("--verbose", "-v", action="store_true", help="show every message")
    g.set_defaults(func=_cmd_grade)
