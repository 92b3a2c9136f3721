"""A submission's report: the JSON record, the text a student reads, Gradescope's format, saved reports.

A report is a JSON-ready dict: ``score`` / ``max_score`` in total and per
assignment, part and group, each part's messages, ``errors`` (the submission
could not be graded), ``notes`` (what the grader noticed: files left out, a
handout record that disagrees with the plan), the plan it was graded by and
the sandbox layers that graded it. Every file is written whole or not at all
(``minilstm/atomic.py``).
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from pathlib import Path

from .. import atomic
from . import sandbox
from .assignments import part_key

SCHEMA = 2


def num(x):
    """Points as a reader writes them: 5, not 5.0; 2.5; at most two decimals."""
    return int(x) if float(x).is_integer() else round(float(x), 2)


def shown(text: str) -> str:
    """A path or name as one printable line (a student's folder name may hold a tab or a CR)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def file_name(name: str) -> str:
    """A file name for a student's name: letters, digits and . _ - + = @ only, no leading dot or dash."""
    return re.sub(r"[^\w.+=@-]", "_", name).lstrip(".-")[:100] or "student"


def submission_report(student, chosen, given, parts_by_key, seconds, notes=(), plan_from=None) -> dict:
    """The report of one submission: its graded parts (``parts_by_key``, from ``verdicts.judge_part``) and the
    given ones (not scored), by assignment; one error where every graded part failed for the same reason."""
    report_assignments = []
    for a in chosen:
        parts = []
        for p in a.parts:
            key = part_key(a, p)
            if key in given:
                parts.append({"name": p.name, "key": key, "title": p.title, "functions": p.function_names(),
                              "points": 0, "score": 0, "passed": True, "given": True, "error": None, "groups": [],
                              "messages": [], "failures": []})
            else:
                parts.append(parts_by_key[key])
        report_assignments.append({"name": a.name, "title": a.title, "score": sum(p["score"] for p in parts),
                                   "max_score": sum(p["points"] for p in parts), "parts": parts})
    errors = []
    reasons = {p["error"] for a in report_assignments for p in a["parts"] if p["error"]}
    if len(reasons) == 1 and all(p["error"] for a in report_assignments for p in a["parts"] if not p["given"]):
        errors = sorted(reasons)  # the same problem everywhere: the package itself (e.g. it does not import)
    return {
        "schema": SCHEMA, "student_dir": str(student), "assignments": report_assignments,
        "score": num(sum(a["score"] for a in report_assignments)),
        "max_score": num(sum(a["max_score"] for a in report_assignments)),
        "given": sorted(given), "errors": errors, "notes": list(notes), "seconds": round(seconds, 1),
        "plan": {"from": plan_from, "assignments": [a.name for a in chosen], "given": sorted(given)},
        "sandbox": _sandbox_record(),
    }


def _sandbox_record() -> dict:
    """Which of the sandbox's layers graded this submission, and whether the instructor waived the filesystem one."""
    return {"layers": sandbox.summary(), "unsafe_no_sandbox": sandbox.unsafe_allowed()}


def error_report(student, error, notes=()) -> dict:
    """The report of a submission that could not be graded at all (no package, unreadable)."""
    return {"schema": SCHEMA, "student_dir": str(student), "assignments": [], "score": 0, "max_score": 0,
            "given": [], "seconds": 0.0, "errors": [error], "notes": list(notes)}


def format_report(report: dict, verbose: bool = False) -> str:
    """The text a student or instructor reads: points per part and group, and what to fix."""
    lines = [f"Grading {report['student_dir']}"]
    for a in report["assignments"]:
        lines += ["", f"{a['name']}: {a['title']}"]
        for p in a["parts"]:
            if p.get("given"):
                lines.append(f"   given      {p['name']:<18} (handed out solved: not scored)")
                continue
            status = "ok" if p["passed"] else ("partly" if p["score"] else "FAILED")
            lines.append(f"  {num(p['score']):>4}/{num(p['points']):<4} {p['name']:<18} {status}  "
                         f"({', '.join(p['functions'])})")
            if p.get("error"):
                lines.append(f"      - {p['error']}")
                continue
            seen = set()
            for g in p["groups"]:
                if g["passed"]:
                    continue
                fresh = [m for m in g["messages"] if m not in seen]
                seen.update(fresh)
                lines.append(f"      {num(g['score'])}/{num(g['points'])} {p['key']}/{g['name']}: {g['title']}"
                             + ("" if fresh else " (see above)"))
                shown = fresh if verbose else fresh[:3]
                for msg in shown:
                    for k, ln in enumerate(textwrap.wrap(msg, 110) or [""]):
                        lines.append(("        - " if k == 0 else "          ") + ln)
                if len(shown) < len(fresh):
                    lines.append(f"        ({len(fresh) - len(shown)} more: --verbose)")
        lines.append(f"  {num(a['score']):>4}/{num(a['max_score']):<4} total for {a['name']}")
    for err in report["errors"]:
        lines += ["", f"error: {err}"]
    for note in report.get("notes") or ():
        lines += ["", *textwrap.wrap(f"note: {note}", 110, subsequent_indent="      ")]
    lines += ["", f"score: {report['score']}/{report['max_score']}"]
    return "\n".join(lines)


def write_json(report: dict, path) -> None:
    """``report`` (or any JSON-ready record) as sorted, indented JSON, written whole."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(report, indent=2, sort_keys=True) + "\n")


def gradescope_results(report: dict) -> dict:
    """Gradescope's autograder format: score, and one test per group (name, score, max_score, output)."""
    tests = []
    for a in report["assignments"]:
        for p in a["parts"]:
            if p.get("given"):
                continue
            for g in p["groups"]:
                tests.append({"name": f"{p['key']} / {g['name']}: {g['title']}", "score": g["score"],
                              "max_score": g["points"], "output": "\n".join(g["messages"]) or "passed"})
    out = {"score": report["score"], "tests": tests}
    if report["errors"] or report.get("notes"):
        out["output"] = "\n".join(list(report["errors"]) + [f"note: {n}" for n in report.get("notes") or ()])
    return out


def saved_report_path(reports_dir, student: Path) -> Path:
    """Where a class run saves a student's report: the folder's name and a hash of its whole path."""
    tag = hashlib.sha256(str(student).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return Path(reports_dir) / f"{file_name(student.name)}-{tag}.json"


def saved_report(reports_dir, student: Path, key: str):
    """The report saved by an earlier run for this submission, if its key (files, plan, grader) is the same."""
    try:
        saved = json.loads(saved_report_path(reports_dir, student).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if isinstance(saved, dict) and saved.get("cache_key") == key and saved.get("student_dir") == str(student):
        saved["reused"] = True
        return saved
    return None


def save_report(reports_dir, student: Path, report: dict) -> None:
    """Save ``report`` for ``student`` in ``reports_dir`` as soon as it is complete (whole or not at all), so a
    class run that is stopped continues from it (``saved_report``)."""
    Path(reports_dir).mkdir(parents=True, exist_ok=True)
    atomic.write_text(saved_report_path(reports_dir, student), json.dumps(report, indent=1, sort_keys=True))
