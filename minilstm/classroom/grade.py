"""Grading: score each part of each submission, from a process the student's code never runs in.

The trust boundary. The grader (this process) never imports a student's
code. For every part P of every submission it

1. draws fresh inputs from a secret seed (``secrets.randbits``; new for every
   grading run) and computes the reference answers itself, with its own
   package (``assignments/probes.py``);
2. assembles a scratch copy of the student's ``minilstm/`` (its Python files
   only) in which the functions of the parts P uses are the reference's
   (``assemble.py``: one bug costs one part, no borrowing a reference);
3. runs a child ``python -I -S -B`` inside the operating system's boundary
   (``sandbox/``: Landlock, a PID namespace whose pid 1 kills every process
   of the part, rlimits, no capabilities, no network), which runs the part's
   cases on the student's code and writes arrays back;
4. once every process of the part is dead, loads the arrays without pickle,
   and decides every verdict here (``verdicts.py``).

So nothing the student's code does in the child (an ``atexit`` hook, writing
files, ``os._exit``, patching the checks, reading them, a daemon, a fork
bomb) changes a verdict except returning the right numbers, which needs the
right code. A crash, a timeout, ``os._exit`` or a garbled result costs only
that part, with a one-line reason. Where this machine lacks a layer, and what
the grader cannot promise: lessons/INSTRUCTORS.md, "Trust model".

What is graded comes from the instructor's side only (``plan.py``), never
from the handout's own ``assignment.json``. Many submissions at once
(``grade_many``): each report is saved as soon as it is complete, so a rerun
continues (``reports.saved_report``).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from . import reports
from .assemble import reference_patches
from .assignments import part_key
from .assignments import probes as _probes
from .errors import GradeError
from .instructor import load_instructor
from .plan import for_submission, grading_plan, load_plan
from .sandbox.child import World, run_child
from .submission import copy_package
from .verdicts import judge_part

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the reference package, minilstm/
DEFAULT_TIMEOUT = 60.0   # seconds per part (the reference needs about 1 s)
DEFAULT_MEMORY_MB = 2048  # address-space cap per part


def grade_part(student: Path, a, p, work: Path, timeout: float, memory_mb: int, world: World,
               points: dict | None = None, extra=()) -> dict:
    """Grade one part: fresh inputs, the reference here, the student's code in a child, verdicts here."""
    import numpy as np
    key = part_key(a, p)
    started = time.monotonic()
    rng = np.random.default_rng(secrets.randbits(128))  # secret and new for every grading run
    inputs = _probes.make_inputs(key, rng)
    try:
        ref = _probes.run(key, inputs, catch=False)
    except NotImplementedError as exc:
        raise GradeError(f"this minilstm is a student version ({exc}); grading needs the instructor's "
                         "reference package (students: run `python -m pytest tests`)") from None
    outputs, reason = run_child(work, student, key, inputs, timeout, memory_mb, world)
    result = judge_part(a, p, inputs, ref, outputs, reason, points, extra)
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


_GRADER_DIGEST: list[str] = []


def _grader_digest() -> str:
    """A hash of the grading package (the reference, the probes, the checks, this file): a saved report
    is reused only by the same grader."""
    if not _GRADER_DIGEST:
        h = hashlib.sha256()
        for path in sorted(PACKAGE_DIR.rglob("*.py")):
            if "__pycache__" not in path.parts:
                h.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
        _GRADER_DIGEST.append(h.hexdigest())
    return _GRADER_DIGEST[0]


def grade_many(student_dirs, assignments=None, timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB,
               jobs: int = 1, instructor=None, solved=None, plan=None, plans=None, reports_dir=None,
               regrade: bool = False) -> list:
    """Grade several submissions; one report per folder (a folder without a package gets an error report).

    What is graded comes from the instructor's side only (``plan.grading_plan``): ``assignments`` /
    ``solved``, else ``plan`` (a plan file ``OUT.plan.json`` written by ``minilstm assign OUT``, or a
    dict {"assignments": [...], "solved": [...]}), else the instructor folder's grading.json; ``plans``
    ({folder: plan}) sets it for some folders. No plan at all: GradeError. A handout's assignment.json
    is never obeyed; where it disagrees, the report's ``notes`` say so.

    Each submission's package (its Python files, normalised) is copied once into the scratch folder
    and graded from there. ``reports_dir``: each submission's report is saved there (atomically) as
    soon as its last part is graded, and a rerun reuses a saved report whose files, plan, settings and
    grader are unchanged (``regrade``: never reuse), so a stopped class run continues where it was.
    """
    cfg = load_instructor(instructor) if instructor else {}
    common = load_plan(plan) if plan is not None else None
    own = {Path(k).resolve(): load_plan(v) for k, v in (plans or {}).items()}
    students = [Path(s).resolve() for s in student_dirs]
    unique = list(dict.fromkeys(students))
    made, plan_of = {}, {}
    for s in unique:  # every plan first: a missing one stops the run before any work
        source = own.get(s, common)
        if id(source) not in made:
            made[id(source)] = grading_plan(assignments, cfg, solved, source)
        plan_of[s] = made[id(source)]
    reference_patches()  # in this thread, before the pool starts
    grader = _grader_digest()
    done, pending, tasks = {}, {}, []
    with tempfile.TemporaryDirectory(prefix="minilstm-grade-") as scratch:
        root = Path(scratch)
        for i, s in enumerate(unique):
            started = time.monotonic()
            if not (s / "minilstm" / "__init__.py").is_file():
                done[s] = reports.error_report(s, f"{s} holds no minilstm package (expected "
                                                  f"{s / 'minilstm' / '__init__.py'})")
                continue
            chosen, given, notes = for_submission(s, plan_of[s])
            snapshot = root / f"submission{i}"
            try:
                copied, files = copy_package(s, snapshot / "minilstm")
            except (GradeError, OSError) as exc:
                done[s] = reports.error_report(s, str(exc)[:300], notes)
                continue
            notes += copied
            key = hashlib.sha256(json.dumps({
                "files": files, "notes": notes, "assignments": [a.name for a in chosen], "given": sorted(given),
                "instructor": cfg.get("digest"), "timeout": timeout, "memory_mb": memory_mb,
                "grader": grader, "schema": reports.SCHEMA}, sort_keys=True).encode()).hexdigest()
            saved = reports.saved_report(reports_dir, s, key) if reports_dir is not None and not regrade else None
            if saved is not None:
                done[s] = saved
                continue
            todo = [(s, a, p) for a in chosen for p in a.parts if part_key(a, p) not in given]
            pending[s] = {"chosen": chosen, "given": given, "notes": notes, "snapshot": snapshot, "key": key,
                          "started": started, "left": len(todo), "parts": {}, "from": plan_of[s]["from"]}
            tasks += todo

        def finish(s):
            st = pending[s]
            report = reports.submission_report(s, st["chosen"], st["given"], st["parts"],
                                               time.monotonic() - st["started"], st["notes"], st["from"])
            report["cache_key"] = st["key"]
            if reports_dir is not None:
                reports.save_report(reports_dir, s, report)
            done[s] = report

        if tasks:
            world = World(root)

            def work(k, task):
                s, a, p = task
                key = part_key(a, p)
                part = grade_part(pending[s]["snapshot"], a, p, root / f"job{k}", timeout, memory_mb, world,
                                  cfg.get("points", {}).get(key), cfg.get("extra", {}).get(key, ()))
                return s, key, part

            with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
                futures = [pool.submit(work, k, t) for k, t in enumerate(tasks)]
                try:
                    for future in as_completed(futures):
                        s, key, part = future.result()
                        pending[s]["parts"][key] = part
                        pending[s]["left"] -= 1
                        if pending[s]["left"] == 0:
                            finish(s)  # saved now: a run stopped later keeps it
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
        for s in pending:
            if s not in done:
                finish(s)
    return [done[s] for s in students]


def grade(student_dir, assignments=None, timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB,
          jobs: int = 1, instructor=None, solved=None, plan=None) -> dict:
    """Grade the code in ``student_dir``; returns the report (a JSON-ready dict).

    What is graded: ``assignments`` (names, or ["all"]) and ``solved``, else ``plan`` (the plan file
    ``minilstm assign OUT`` writes beside the handout, ``OUT.plan.json``, or a dict), else the
    instructor folder's grading.json; none of them: GradeError (the handout's own assignment.json is
    the student's file, never obeyed). timeout / memory_mb: limits per part. The report: ``score`` /
    ``max_score`` in total and per assignment, part and group, each part's messages, ``errors``, ``notes``.
    """
    student = Path(student_dir).resolve()
    if not (student / "minilstm" / "__init__.py").is_file():
        raise GradeError(f"{student} holds no minilstm package (expected {student / 'minilstm' / '__init__.py'})")
    return grade_many([student], assignments, timeout, memory_mb, jobs, instructor, solved, plan=plan)[0]
