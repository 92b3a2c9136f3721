"""The grading plan: what is graded and which parts are given, from the instructor's side only.

``minilstm assign OUT`` writes the plan beside the handout, ``OUT.plan.json``
(``write_plan``): the assignments handed out, their parts and points, the parts
given solved. ``minilstm grade`` takes what to grade from, first to last,
``--assignment`` / ``--solved``, ``--plan OUT.plan.json`` (``load_plan``), or
the instructor folder's ``grading.json`` (``grading_plan``); with none of them
it refuses, never 0/0. The handout's own ``assignment.json`` is the student's
file: it is only compared with the plan (``for_submission``), and a
disagreement is noted in the report, never obeyed.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import atomic
from .assignments import ASSIGNMENTS, all_parts, part_key, select
from .errors import GradeError
from .submission import inside

PLAN_SUFFIX = ".plan.json"
MAX_PLAN_BYTES = 2**20
MAX_META_BYTES = 64 * 2**10


def plan_path(handout_dir) -> Path:
    """The grading plan of the handout ``handout_dir``: ``<handout_dir>.plan.json``, beside the folder (not in it:
    the folder goes to the students). ``minilstm assign OUT`` writes it; ``minilstm grade --plan`` reads it."""
    out = Path(handout_dir).resolve()
    return out.parent / (out.name + PLAN_SUFFIX)


def write_plan(out: Path, meta: dict) -> Path:
    """``OUT.plan.json`` beside the handout ``OUT`` (``plan_path``): the instructor's record of what was handed
    out (assignments, parts and points, parts given solved), which ``minilstm grade --plan`` grades by. The
    handout's own assignment.json says the same for the student, but it is the student's file: the grader
    only compares it with the plan."""
    path = plan_path(out)
    record = {**{k: meta[k] for k in ("assignments", "parts", "solved", "stubbed")}, "handout": str(out),
              "generated_by": "minilstm assign: keep it with your grading files, not in the handout; "
                              "grade with minilstm grade STUDENT_DIR --plan " + path.name}
    atomic.write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


class _TooLarge(ValueError):
    pass


def _read_json(path: Path, limit: int):
    """The JSON in ``path``, reading at most ``limit`` bytes (a larger file: _TooLarge, never read whole)."""
    with open(path, "rb") as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise _TooLarge(f"larger than {limit // 1024} KiB")
    return json.loads(raw.decode("utf-8"))


def load_plan(source) -> dict:
    """A grading plan: {"assignments": [...], "solved": [...]} from a plan file (``OUT.plan.json``, written by
    ``minilstm assign OUT``) or a dict; "from" says where it came from. Unknown names are errors."""
    if isinstance(source, dict):
        data, where = source, source.get("from", "the plan given")
    else:
        path = Path(source)
        where = f"--plan {path}"
        if path.is_dir():
            raise GradeError(f"--plan {path} is a folder; pass the plan file minilstm assign wrote beside the "
                             f"handout ({plan_path(path)})")
        try:
            data = _read_json(path, MAX_PLAN_BYTES)
        except OSError as exc:
            raise GradeError(f"--plan {path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
        except (ValueError, RecursionError) as exc:
            raise GradeError(f"--plan {path} is not a plan written by minilstm assign ({type(exc).__name__})") \
                from None
    if not isinstance(data, dict) or not isinstance(data.get("assignments"), list) or not data["assignments"]:
        raise GradeError(f"{where}: expected an object with a non-empty list \"assignments\"")
    names = data["assignments"]
    bad = [n for n in names if not isinstance(n, str) or n not in ASSIGNMENTS]
    if bad:
        raise GradeError(f"{where}: unknown assignment {str(bad[0])[:60]}; known: {', '.join(ASSIGNMENTS)}")
    solved = data.get("solved", [])
    known = all_parts()
    if not isinstance(solved, list) or any(not isinstance(k, str) or k not in known for k in solved):
        raise GradeError(f"{where}: \"solved\" must list parts as assignment:part; parts: {', '.join(known)}")
    return {"assignments": list(names), "solved": list(solved), "from": where}


def grading_plan(assignments=None, instructor: dict | None = None, solved=None, plan: dict | None = None) -> dict:
    """What is graded and what is given, from the instructor's side only: --assignment / --solved first,
    then the plan file, then the instructor folder's grading.json. Never from the handout."""
    if assignments:
        names = list(ASSIGNMENTS) if "all" in assignments else list(assignments)
        where = "--assignment " + " ".join(assignments)
    elif plan:
        names, where = plan["assignments"], plan["from"]
    elif instructor and instructor.get("assignments"):
        names, where = instructor["assignments"], f"--instructor {instructor.get('folder', '')}"
    else:
        raise GradeError("no grading plan: pass --plan HANDOUT.plan.json (minilstm assign writes it beside the "
                         "handout), --instructor DIR (its grading.json lists \"assignments\") or --assignment NAME "
                         "(all: every one); a handout's own assignment.json is not trusted")
    chosen = select(names)
    keys = [part_key(a, p) for a in chosen for p in a.parts]
    if solved is not None:
        unknown = [k for k in solved if k not in all_parts()]
        if unknown:
            raise GradeError(f"--solved {unknown[0]}: unknown part; parts: {', '.join(keys)}")
        given = set(solved)
    elif plan is not None:
        given = set(plan.get("solved") or ())
    elif instructor and instructor.get("solved") is not None:
        given = set(instructor["solved"])
    else:
        given = set()
    given &= set(keys)
    if not set(keys) - given:
        raise GradeError(f"the grading plan ({where}) leaves nothing to grade: every part of "
                         f"{', '.join(a.name for a in chosen)} is given (solved)")
    return {"chosen": chosen, "given": given, "from": where}


def handout_meta(student: Path):
    """(the handout's own assignment.json as a dict, or None; a note when it is there but unreadable).

    Only read to report a disagreement with the grading plan: it is the student's file."""
    meta = Path(student) / "assignment.json"
    try:
        if meta.is_symlink() and not inside(meta, student):
            return None, "the handout's assignment.json is a link out of the student's folder: ignored"
        if not meta.is_file():
            return None, None
        data = _read_json(meta, MAX_META_BYTES)
    except _TooLarge:
        return None, "the handout's assignment.json is larger than 64 KiB: ignored"
    except (ValueError, OSError, RecursionError, MemoryError) as exc:
        return None, f"the handout's assignment.json could not be read ({type(exc).__name__}): ignored"
    if not isinstance(data, dict):
        return None, "the handout's assignment.json is not an object: ignored"
    return data, None


def _names(value):
    """A handout record's list of names, as a sorted list of short strings (None if it is not one)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return sorted(v[:60] for v in value)


def for_submission(student: Path, plan: dict):
    """(assignments to grade, part keys given, notes) for one submission: the grading plan decides; a
    handout whose assignment.json says otherwise is noted, never obeyed."""
    chosen, given = plan["chosen"], set(plan["given"])
    data, note = handout_meta(student)
    notes = [note] if note else []
    if data is None:
        return chosen, given, notes
    keys = {part_key(a, p): p.points for a in chosen for p in a.parts}
    want = {"assignments": sorted(a.name for a in chosen), "solved": sorted(given)}
    diffs = []
    for field in ("assignments", "solved"):
        theirs = _names(data.get(field))
        if theirs != want[field]:
            shown = ", ".join(theirs[:6]) + (" ..." if len(theirs) > 6 else "") if theirs is not None else "?"
            diffs.append(f"{field} [{shown}] (the plan: [{', '.join(want[field])}])")
    parts = data.get("parts")
    numbers = isinstance(parts, dict) and all(type(v) in (int, float) and abs(v) < 1e9 for v in parts.values())
    if not numbers or parts != keys:
        total = f"{sum(parts.values()):g}" if numbers else "?"
        diffs.append(f"{len(parts) if isinstance(parts, dict) else '?'} parts worth {total} points (the plan: "
                     f"{len(keys)} parts, {sum(keys.values())} points)")
    if diffs:
        notes.append(f"the handout's assignment.json disagrees with the grading plan ({plan['from']}), which "
                     f"decides: {'; '.join(diffs)}")
    return chosen, given, notes
