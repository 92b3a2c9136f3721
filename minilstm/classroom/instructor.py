"""The instructor folder (``minilstm grade --instructor DIR``): points per part or group, and extra checks.

Points never come from editing the package: ``DIR/grading.json`` sets them
(and may hold a plan: "assignments", "solved"), ``DIR/checks.py`` adds groups
of checks. Both are the instructor's files, read and run in the grader only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .assignments import ASSIGNMENTS, all_parts
from .errors import GradeError

INSTRUCTOR_CONFIG = "grading.json"


def load_instructor(folder) -> dict:
    """``FOLDER/grading.json``: {"assignments": [...], "solved": [...], "points": {...}}.

    points: {"lstm:cell_forward": 8} (spread over the part's groups in proportion) or
    {"lstm:cell_forward": {"values": 5, "float32": 2, "inputs": 1}}. Unknown names are errors.
    """
    path = Path(folder) / INSTRUCTOR_CONFIG
    if not path.is_file():
        raise GradeError(f"--instructor {folder}: no {INSTRUCTOR_CONFIG} there (expected {path})")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GradeError(f"{path} cannot be read ({exc.strerror or type(exc).__name__})") from None
    except (ValueError, RecursionError) as exc:
        raise GradeError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(cfg, dict) or set(cfg) - {"assignments", "solved", "points"} \
            or not isinstance(cfg.get("points") or {}, dict):
        raise GradeError(f"{path}: expected an object with the keys assignments, solved (lists) and points (an "
                         "object: part -> number, or part -> {group: number})")
    parts = all_parts()
    points = {}
    for key, value in (cfg.get("points") or {}).items():
        if key not in parts:
            raise GradeError(f"{path}: unknown part {key} in points; parts: {', '.join(parts)}")
        groups = {g.name: g.points for g in parts[key].groups}
        if isinstance(value, dict):
            if not all(_is_points(v) for v in value.values()):
                raise GradeError(f"{path}: the group points of {key} must be numbers, 0 or more")
            if set(value) - set(groups):
                raise GradeError(f"{path}: part {key} has no group {', '.join(sorted(set(value) - set(groups)))}; "
                                 f"its groups: {', '.join(groups)}")
            points[key] = {g: value.get(g, 0) for g in groups}
        elif _is_points(value):
            points[key] = _spread(float(value), groups)
        else:
            raise GradeError(f"{path}: points of {key} must be a number or an object of group points")
    for field in ("solved", "assignments"):
        value = cfg.get(field)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise GradeError(f"{path}: {field} must be a list of names")
    for key in cfg.get("solved") or ():
        if key not in parts:
            raise GradeError(f"{path}: unknown part {key} in solved; parts: {', '.join(parts)}")
    for name in cfg.get("assignments") or ():
        if name not in ASSIGNMENTS:
            raise GradeError(f"{path}: unknown assignment {name}; known: {', '.join(ASSIGNMENTS)}")
    digest = hashlib.sha256(path.read_bytes())
    if (Path(folder) / "checks.py").is_file():
        digest.update((Path(folder) / "checks.py").read_bytes())
    return {"assignments": cfg.get("assignments"), "solved": cfg.get("solved"), "points": points,
            "extra": _extra_checks(Path(folder), parts), "folder": str(folder), "digest": digest.hexdigest()}


def _extra_checks(folder: Path, parts: dict) -> dict:
    """Extra groups from ``FOLDER/checks.py`` (the instructor's code, run here, never in a child).

    It defines ``EXTRA_GROUPS = {"lstm:cell_forward": [(name, points, title, check), ...]}``, where
    ``check(ctx)`` sees the same fresh inputs, reference answers and returned values as the
    package's checks (``minilstm/classroom/assignments/checks.py``: ``ctx.inputs/ref/theirs[case][field]``,
    ``ctx.close``, ``ctx.say``) and says what is wrong; no message: the group passes.
    """
    path = folder / "checks.py"
    if not path.is_file():
        return {}
    import importlib.util
    spec = importlib.util.spec_from_file_location("minilstm_instructor_checks", path)
    if spec is None or spec.loader is None:
        raise GradeError(f"{path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the instructor's file: say where it broke
        raise GradeError(f"{path} failed to load: {type(exc).__name__}: {exc}") from None
    extra = getattr(module, "EXTRA_GROUPS", None)
    if not isinstance(extra, dict):
        raise GradeError(f"{path} must define EXTRA_GROUPS = {{'assignment:part': [(name, points, title, check)]}}")
    out: dict[str, list] = {}  # part key -> [(name, points, title, check)]
    for key, groups in extra.items():
        if key not in parts:
            raise GradeError(f"{path}: unknown part {key} in EXTRA_GROUPS; parts: {', '.join(parts)}")
        names = {g.name for g in parts[key].groups}
        for entry in groups if isinstance(groups, (list, tuple)) else [None]:
            if not (isinstance(entry, (list, tuple)) and len(entry) == 4 and _is_points(entry[1])):
                raise GradeError(f"{path}: each extra group of {key} is (name, points, title, check)")
            name, pts, title, fn = entry
            if name in names or not callable(fn):
                raise GradeError(f"{path}: extra group {key}/{name} needs a new name and a check function")
            out.setdefault(key, []).append((str(name), pts, str(title), fn))
    return out


def _is_points(value) -> bool:
    """A number of points: finite, 0 or more (not a bool, not a string)."""
    return type(value) in (int, float) and 0 <= value < float("inf")


def _spread(total, groups):
    """Distribute ``total`` points over groups in proportion to their default points."""
    base = sum(groups.values())
    out = {g: round(total * p / base, 2) for g, p in groups.items()}
    last = list(groups)[-1]
    out[last] = round(total - sum(v for g, v in out.items() if g != last), 2)
    return out
