"""The verdicts: a part's points, decided in the grader from the arrays its child returned.

Every group of checks (``assignments/checks.py``, and the instructor's extra
groups) compares the returned arrays with the reference's on the same fresh
inputs, here in the grader, which never imports student code: a group earns
its points when it has nothing to say. A child that returned nothing (a crash,
a timeout, a refusal) costs every group of its part, with the one-line reason.
Points are for work only (``only_work``).
"""

from __future__ import annotations

from .assignments import Group, part_key
from .assignments import checks as _checks
from .assignments import probes as _probes


def judge_part(a, p, inputs: dict, ref: dict, outputs: dict | None, reason: str | None, points: dict | None = None,
               extra=()) -> dict:
    """The result of part ``p`` of assignment ``a``: its groups with points, score and messages.

    ``outputs``: what the child returned ({"case/field": array}), or None with ``reason``; ``points``: the
    instructor's points per group; ``extra``: the instructor's groups [(name, points, title, check)]."""
    key = part_key(a, p)
    group_points = {g.name: g.points for g in p.groups}
    group_points.update(points or {})
    all_groups = list(p.groups) + [Group(name, pts, title) for name, pts, title, _ in extra]
    group_points.update({name: pts for name, pts, _, _ in extra})
    extra_fns = {name: fn for name, _, _, fn in extra}
    if outputs is None:
        verdicts = {g.name: [reason] for g in all_groups}
    else:
        verdicts = {}
        for g in all_groups:
            try:
                if g.name in extra_fns:
                    split = _probes._split
                    ctx = _checks.Ctx(split(inputs), split(ref), split(outputs))
                    extra_fns[g.name](ctx)
                    verdicts[g.name] = ctx.messages
                else:
                    verdicts[g.name] = _checks.judge_group(key, g.name, inputs, ref, outputs)
            except Exception as exc:  # noqa: BLE001 - malformed values returned: this group fails
                verdicts[g.name] = [f"{', '.join(p.function_names())}: the values returned could not be checked "
                                    f"({type(exc).__name__}: {exc})"]
    groups = []
    for g in all_groups:
        msgs = verdicts[g.name]
        groups.append({"name": g.name, "title": g.title, "points": group_points[g.name],
                       "score": 0 if msgs else group_points[g.name], "passed": not msgs, "messages": msgs})
    total = sum(g["points"] for g in groups)
    result = {"name": p.name, "key": key, "title": p.title, "functions": p.function_names(), "points": total,
              "score": 0, "passed": False, "given": False, "error": reason, "groups": groups, "messages": [],
              "failures": []}
    return only_work(_totals(result), p)


def _totals(result: dict) -> dict:
    """The part's score, passed, messages (each once, in group order) and failures, from its groups."""
    groups = result["groups"]
    messages = []
    for g in groups:
        messages += [m for m in g["messages"] if m not in messages]
    score = sum(g["score"] for g in groups)
    result.update(score=score, passed=score == result["points"], messages=messages,
                  failures=[{"test": f"{result['key']}/{g['name']}", "message": m} for g in groups
                            for m in g["messages"]])
    return result


def only_work(result: dict, p) -> dict:
    """Points for work only: a group marked ``needs_output`` (input validation, error handling, inputs left
    unchanged) counts when at least one of the part's unmarked groups passed, never for a stub alone."""
    marked = {g.name for g in p.groups if g.needs_output}
    plain = {g.name for g in p.groups if not g.needs_output}
    groups = result.get("groups") or []
    if not marked or any(g["passed"] for g in groups if g["name"] in plain):
        return result
    what = " / ".join(p.function_names())
    for g in groups:
        if g["name"] in marked and g["passed"]:
            g.update(score=0, passed=False, messages=[
                f"{what}: {result['key']}/{g['name']} counts once the part computes correct values (when "
                f"another of its groups passes); a stub earns nothing"])
    return _totals(result)
