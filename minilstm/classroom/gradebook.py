"""A class's gradebook: ``OUT/gradebook.csv`` and one feedback file per student, whole files only.

One row per student (total, maximum, one column per part, errors, notes, the
feedback file); the students' names are their folders' names, made distinct
across class folders; a cell a spreadsheet would run as a formula is escaped.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from .. import atomic
from .reports import file_name, format_report, num


def _student_name(report: dict, base: Path | None) -> str:
    path = Path(report["student_dir"])
    try:
        return path.name if base is None or path == base else path.relative_to(base).as_posix()
    except ValueError:  # not under base
        return path.name


def _student_names(reports: list, base=None) -> list:
    """One name per report: the folder's name, or its path under ``base`` (by default the folder all the
    submissions share, so two class folders' ``ada`` are ``class1/ada`` and ``class2/ada``)."""
    dirs = [Path(r["student_dir"]) for r in reports]
    if base is None and len({d.name for d in dirs}) < len(set(dirs)):
        base = Path(os.path.commonpath([str(d) for d in dirs]))
    return [_student_name(r, Path(base) if base is not None else None) for r in reports]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    """A CSV cell a spreadsheet shows as text: a string starting like a formula gets a leading quote (OWASP)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_gradebook(reports: list, out_dir, base=None) -> Path:
    """OUT/gradebook.csv (one row per student, one column per part) and OUT/feedback/<student>.txt.

    Every file is written whole or not at all (a temporary file, then a rename), the gradebook last:
    a run stopped before the end leaves the earlier gradebook, never half of one. Two students of
    the same name get distinct feedback files; cells that a spreadsheet would run as a formula
    (``=``, ``+``, ``-``, ``@``, tab, CR first) start with a quote."""
    out = Path(out_dir)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    keys = []
    for r in reports:
        for a in r["assignments"]:
            for p in a["parts"]:
                if p["key"] not in keys:
                    keys.append(p["key"])
    names = _student_names(reports, base)
    files, taken = [], set()
    for name in names:
        stem, k = file_name(name.replace("/", "_")), 1
        while (stem if k == 1 else f"{stem}-{k}").lower() in taken:
            k += 1
        stem = stem if k == 1 else f"{stem}-{k}"
        taken.add(stem.lower())
        files.append(out / "feedback" / f"{stem}.txt")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["student", "score", "max_score"] + keys + ["errors", "notes", "feedback"])
    for r, name, feedback in zip(reports, names, files):
        scores = {p["key"]: ("given" if p.get("given") else num(p["score"]))
                  for a in r["assignments"] for p in a["parts"]}
        w.writerow([_cell(c) for c in [name, r["score"], r["max_score"]] + [scores.get(k, "") for k in keys]
                    + ["; ".join(r["errors"]), "; ".join(r.get("notes") or ()),
                       feedback.relative_to(out).as_posix()]])
        atomic.write_text(feedback, format_report(r, verbose=True) + "\n")
    path = out / "gradebook.csv"
    atomic.write_text(path, buf.getvalue())  # the CSV's own \r\n line ends, as csv wrote them
    return path
