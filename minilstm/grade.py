"""``minilstm grade``: score each part of a student's code, from a process the student's code never runs in.

The trust boundary. The grader (this process) never imports a student's
code. For every part P of every submission it

1. draws fresh inputs from a secret seed (``secrets.randbits``; new for every
   grading run) and computes the reference answers itself, with its own
   package (``assignments/probes.py``);
2. assembles a scratch copy of the student's ``minilstm/`` in which the
   functions of every *other* part are replaced by the reference's (one bug
   costs one part), while P's functions stay the student's and no copy of P's
   reference code is on the child's import path;
3. runs a child ``python -I -S -B`` (isolated mode, no site-packages: only the
   scratch copy, the probe script and a view of site-packages without
   minilstm are importable; a scrubbed environment with HOME and TMPDIR in a
   scratch folder; stdin closed; its own process group; an address-space cap
   set before any student code runs; a wall-clock limit). The child runs the
   part's cases on the student's code and writes arrays (``.npz``) back;
4. kills the child's whole process group, loads the arrays without pickle,
   and decides every verdict here (``assignments/checks.py``): a group of
   checks earns its points when the returned arrays match the reference.

So nothing the student's code does in the child (an ``atexit`` hook, writing
files, ``os._exit``, patching the checks, reading them) changes a verdict
except returning the right numbers, which needs the right code. A crash, a
timeout, ``os._exit`` or a garbled result costs only that part, with a
one-line reason. What needs a container (the child runs with the grader's
user, files and network): see lessons/INSTRUCTORS.md, "Trust model".

Many submissions at once: ``minilstm grade CLASS_DIR -j 4 --out results/``
(a folder of student folders) writes ``gradebook.csv`` and one feedback file
per student; ``--gradescope results.json`` writes Gradescope's format; points
come from ``--instructor DIR`` (``DIR/grading.json``), never from editing the
package.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import secrets
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .assignments import ASSIGNMENTS, HERE as ASSIGNMENTS_DIR, part_key, select
from .assignments import Group as _Group
from .assignments import checks as _checks
from .assignments import probes as _probes

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_TIMEOUT = 60.0   # seconds per part (the reference needs about 1 s)
DEFAULT_MEMORY_MB = 2048  # address-space cap per part
MAX_OUTPUT_BYTES = 64 * 2**20
SCHEMA = 2
INSTRUCTOR_CONFIG = "grading.json"


class GradeError(RuntimeError):
    """The submission could not be graded at all (not a package, unreadable, ...)."""


# ---------------------------------------------------------------------------
# Instructor settings: points and given parts, from a trusted folder
# ---------------------------------------------------------------------------

def load_instructor(folder) -> dict:
    """``FOLDER/grading.json``: {"assignments": [...], "solved": [...], "points": {...}}.

    points: {"lstm:cell_forward": 8} (spread over the part's groups in proportion) or
    {"lstm:cell_forward": {"values": 5, "float32": 2, "inputs": 1}}. Unknown names are errors.
    """
    path = Path(folder) / INSTRUCTOR_CONFIG
    if not path.is_file():
        raise GradeError(f"--instructor {folder}: no {INSTRUCTOR_CONFIG} there (expected {path})")
    try:
        cfg = json.loads(path.read_text())
    except ValueError as exc:
        raise GradeError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(cfg, dict) or set(cfg) - {"assignments", "solved", "points"}:
        raise GradeError(f"{path}: expected an object with the keys assignments, solved, points")
    parts = {part_key(a, p): p for a in ASSIGNMENTS.values() for p in a.parts}
    points = {}
    for key, value in (cfg.get("points") or {}).items():
        if key not in parts:
            raise GradeError(f"{path}: unknown part {key!r} in points; parts: {', '.join(parts)}")
        groups = {g.name: g.points for g in parts[key].groups}
        if isinstance(value, dict):
            if set(value) - set(groups):
                raise GradeError(f"{path}: part {key} has no group {sorted(set(value) - set(groups))}; "
                                 f"its groups: {', '.join(groups)}")
            points[key] = {g: int(value.get(g, 0)) for g in groups}
        elif isinstance(value, (int, float)) and value >= 0:
            points[key] = _spread(float(value), groups)
        else:
            raise GradeError(f"{path}: points of {key} must be a number or an object of group points")
    for key in cfg.get("solved") or ():
        if key not in parts:
            raise GradeError(f"{path}: unknown part {key!r} in solved")
    for name in cfg.get("assignments") or ():
        if name not in ASSIGNMENTS:
            raise GradeError(f"{path}: unknown assignment {name!r}")
    return {"assignments": cfg.get("assignments"), "solved": cfg.get("solved"), "points": points,
            "extra": _extra_checks(Path(folder), parts)}


def _extra_checks(folder: Path, parts: dict) -> dict:
    """Extra groups from ``FOLDER/checks.py`` (the instructor's code, run here, never in a child).

    It defines ``EXTRA_GROUPS = {"lstm:cell_forward": [(name, points, title, check), ...]}``, where
    ``check(ctx)`` sees the same fresh inputs, reference answers and returned values as the
    package's checks (``minilstm/assignments/checks.py``: ``ctx.inputs/ref/theirs[case][field]``,
    ``ctx.close``, ``ctx.say``) and says what is wrong; no message: the group passes.
    """
    path = folder / "checks.py"
    if not path.is_file():
        return {}
    import importlib.util
    spec = importlib.util.spec_from_file_location("minilstm_instructor_checks", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the instructor's file: say where it broke
        raise GradeError(f"{path} failed to load: {type(exc).__name__}: {exc}") from None
    extra = getattr(module, "EXTRA_GROUPS", None)
    if not isinstance(extra, dict):
        raise GradeError(f"{path} must define EXTRA_GROUPS = {{'assignment:part': [(name, points, title, check)]}}")
    out = {}
    for key, groups in extra.items():
        if key not in parts:
            raise GradeError(f"{path}: unknown part {key!r} in EXTRA_GROUPS; parts: {', '.join(parts)}")
        names = {g.name for g in parts[key].groups}
        for name, pts, title, fn in groups:
            if name in names or not callable(fn):
                raise GradeError(f"{path}: extra group {key}/{name} needs a new name and a check function")
            out.setdefault(key, []).append((str(name), pts, str(title), fn))
    return out


def _spread(total, groups):
    """Distribute ``total`` points over groups in proportion to their default points."""
    base = sum(groups.values())
    out = {g: round(total * p / base, 2) for g, p in groups.items()}
    last = list(groups)[-1]
    out[last] = round(total - sum(v for g, v in out.items() if g != last), 2)
    return out


# ---------------------------------------------------------------------------
# The child's world: an assembled package, a filtered site-packages view, a bootstrap
# ---------------------------------------------------------------------------

BOOTSTRAP = '''\
"""Written by minilstm grade: limits and guards first, then the student's package, then the probe."""
import json, os, resource, sys
job_dir = sys.argv[1]
with open(os.path.join(job_dir, "job.json")) as f:
    job = json.load(f)
cap = int(job["memory_bytes"])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
sys.path[:0] = job["sys_path"]
import numpy
import _minilstm_probes

_FORBIDDEN = tuple(job["forbidden"])


def _guard(event, args, _forbidden=_FORBIDDEN, _real=os.path.realpath, _fspath=os.fspath):
    # A speed bump, not a wall (see INSTRUCTORS.md): no reading the reference's files, no ctypes, no sockets.
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = _fspath(args[0])
        path = _real(path.decode() if isinstance(path, bytes) else path)
        if any(path == d or path.startswith(d + os.sep) for d in _forbidden):
            raise PermissionError("minilstm grade: the reference package cannot be read while grading")
    elif event.startswith(("ctypes.", "socket.")):
        raise PermissionError(f"minilstm grade: {event} is not allowed while grading")


sys.addaudithook(_guard)
_minilstm_probes._child_main(job_dir)
'''

def _site_dirs():
    dirs = []
    for d in list(site.getsitepackages()) + [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]:
        if d and Path(d).is_dir() and Path(d).resolve() not in dirs:
            dirs.append(Path(d).resolve())
    import numpy  # wherever NumPy lives, the child needs it
    numpy_home = Path(numpy.__file__).resolve().parent.parent
    if numpy_home not in dirs:
        dirs.append(numpy_home)
    return dirs


def _site_view(dest: Path) -> Path:
    """A folder of links to everything in site-packages except minilstm (no .pth files, no editable finder)."""
    dest.mkdir()
    for d in _site_dirs():
        for entry in sorted(d.iterdir()):
            name = entry.name
            if (name.lower().startswith(("minilstm", "__editable__", "_minilstm")) or name.endswith(".pth")
                    or name == "__pycache__" or (dest / name).exists()):
                continue
            if (entry / "minilstm" / "__init__.py").exists() or entry.resolve() == PACKAGE_DIR.parent:
                continue
            (dest / name).symlink_to(entry)
    return dest


def _forbidden_dirs():
    """The reference package and whatever installs it (editable finders, dist-info), resolved."""
    out = {str(PACKAGE_DIR)}
    for d in _site_dirs():
        for entry in d.iterdir():
            if entry.name.lower().startswith(("minilstm", "__editable__")):
                out.add(os.path.realpath(entry))
    return sorted(out)


def _find_def(tree, qualname):
    node, body = None, tree.body
    for name in qualname.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == name), None)
        if node is None:
            return None
        body = node.body
    return node


def _source_of(text, qualname):
    """The source lines of a function (with its decorators), or None."""
    node = _find_def(ast.parse(text), qualname)
    if node is None:
        return None
    start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
    return "\n".join(text.splitlines()[start:node.end_lineno])


def _reference_patch(module_text, qualname):
    """Code appended to a student's module that rebinds ``qualname`` to the reference version.

    Appended (not substituted) so the student's line numbers stay right in messages.
    """
    src = _source_of(module_text, qualname)
    if "." not in qualname:
        return f"\n\n# minilstm grade: the reference {qualname} (another part)\n{src}\n"
    cls, attr = qualname.split(".", 1)
    body = textwrap.indent(textwrap.dedent(src), "    ")
    holder = f"_MinilstmReference_{cls}"
    return (f"\n\n# minilstm grade: the reference {qualname} (another part)\nclass {holder}:\n{body}\n"
            f"{cls}.{attr} = {holder}.__dict__[{attr!r}]\ndel {holder}\n")


def _module_file(spec):
    return spec.split(":", 1)[0].replace(".", "/") + ".py"


# The reference's code of every part's functions, as patches to append: made once, in the main thread
# (ast.parse in the grading threads can fail on CPython 3.11, "AST constructor recursion depth mismatch",
# when the recursion limit changed since the thread started).
_PATCHES = {}


def reference_patches() -> dict:
    """{(module file, qualname): code appended to a student's module to rebind it to the reference}."""
    if not _PATCHES:
        made = {}
        for a in ASSIGNMENTS.values():
            for p in a.parts:
                for spec in p.functions:
                    rel, qualname = _module_file(spec), spec.split(":", 1)[1]
                    made[(rel, qualname)] = _reference_patch(
                        (PACKAGE_DIR.parent / rel).read_text(encoding="utf-8"), qualname)
        _PATCHES.update(made)
    return _PATCHES


def assemble(student: Path, dest: Path, graded_key: str) -> None:
    """Copy the student's ``minilstm/`` to ``dest/minilstm`` with every other part's functions
    rebound to the reference. A file that does not parse and holds none of the graded part's
    functions is taken whole from the reference (one syntax error costs that file's parts).
    Symbolic links, caches and hidden files are not copied."""
    _assemble(student, dest, graded_key, reference_patches())


def _assemble(student: Path, dest: Path, graded_key: str, reference: dict) -> None:
    def ignore(folder, names):
        return {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo")) or n.startswith(".")
                or os.path.islink(os.path.join(folder, n))}

    shutil.copytree(student / "minilstm", dest / "minilstm", ignore=ignore, symlinks=False)
    graded_files = {_module_file(s) for a in ASSIGNMENTS.values() for p in a.parts
                    if part_key(a, p) == graded_key for s in p.functions}
    patches = {}
    for a in ASSIGNMENTS.values():
        for p in a.parts:
            if part_key(a, p) == graded_key:
                continue
            for spec in p.functions:
                patches.setdefault(_module_file(spec), []).append(spec.split(":", 1)[1])
    for rel, qualnames in sorted(patches.items()):
        target, ref_text = dest / rel, (PACKAGE_DIR.parent / rel).read_text(encoding="utf-8")
        try:
            text = target.read_text(encoding="utf-8")
            compile(text, rel, "exec", dont_inherit=True)  # a syntax check without building AST objects
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            if rel in graded_files:
                continue  # the child's import reports the error under the graded part
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(ref_text, encoding="utf-8")
            continue
        text += "".join(reference[(rel, q)] for q in qualnames)
        target.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------
# One part of one submission
# ---------------------------------------------------------------------------

def _clean_env(home: Path) -> dict:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(home), "TMP": str(home), "TEMP": str(home),
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "MINILSTM_DEVICE": "cpu", "MPLBACKEND": "Agg"}
    # One BLAS thread: tiny matrices, and a thread pool per child would spin on a busy machine.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _tail(path: Path, limit=2000) -> str:
    try:
        data = path.read_bytes()[-limit:].decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in data.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def run_child(work: Path, student: Path, key: str, inputs: dict, timeout: float, memory_mb: int,
              site_view: Path, probe_dir: Path):
    """Run part ``key`` of the student's code on ``inputs`` in a child; (outputs or None, reason)."""
    import numpy as np
    work.mkdir(parents=True)
    pkg, home = work / "pkg", work / "home"
    home.mkdir()
    try:
        assemble(student, pkg, key)
    except (OSError, ValueError, RecursionError, shutil.Error) as exc:
        return None, f"the submission's minilstm/ could not be copied ({type(exc).__name__}: {exc}"[:300] + \
            "); this part scores 0"
    np.savez(work / "inputs.npz", **inputs)
    grader = work / "grader"  # the probe and bootstrap: a copy per child, so no child can spoil another's
    shutil.copytree(probe_dir, grader)
    (work / "job.json").write_text(json.dumps({
        "part": key, "sys_path": [str(pkg), str(grader), str(site_view)],
        "memory_bytes": int(memory_mb) * 2**20, "forbidden": _forbidden_dirs() + [str(grader.resolve())]}))
    log = work / "child.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-B", str(grader / "_minilstm_boot.py"), str(work)],
                                cwd=home, env=_clean_env(home), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, close_fds=True)
        try:
            code = proc.wait(timeout=timeout)
            reason = None
        except subprocess.TimeoutExpired:
            code, reason = None, f"did not finish within {timeout:g} s (an endless loop?); this part scores 0"
        finally:
            _kill_group(proc)  # the child and anything it started: nothing lingers, nothing holds grading
    result = work / "outputs.npz"
    if reason is None and not result.is_file():
        how = ("the process ended without returning results (os._exit, sys.exit or a crash at import?)"
               if code is not None and code >= 0 else f"the process was killed by signal {-code}")
        last = _tail(log)
        reason = f"{how}; exit status {code}" + (f"; last output: {last}" if last else "") + "; this part scores 0"
    if reason is not None:
        return None, reason
    try:
        with zipfile.ZipFile(result) as z:  # a small file may unpack to gigabytes: look before loading
            if result.stat().st_size > MAX_OUTPUT_BYTES or sum(i.file_size for i in z.infolist()) > MAX_OUTPUT_BYTES:
                raise ValueError("too large")
        with np.load(result, allow_pickle=False) as data:
            outputs = {str(k): data[k] for k in data.files}
    except Exception as exc:  # noqa: BLE001 - whatever the file holds, it is only data
        return None, f"the results that came back could not be read ({type(exc).__name__}); this part scores 0"
    if "!import_error" in outputs:
        return None, str(outputs["!import_error"])[:500]
    return outputs, None


def grade_part(student: Path, a, p, work: Path, timeout: float, memory_mb: int, site_view: Path,
               probe_dir: Path, points: dict | None = None, extra=()) -> dict:
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
    outputs, reason = run_child(work, student, key, inputs, timeout, memory_mb, site_view, probe_dir)
    group_points = {g.name: g.points for g in p.groups}
    group_points.update(points or {})
    all_groups = list(p.groups) + [_Group(name, pts, title) for name, pts, title, _ in extra]
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
    messages = []
    for g in groups:
        for m in g["messages"]:
            if m not in messages:
                messages.append(m)
    score = sum(g["score"] for g in groups)
    total = sum(g["points"] for g in groups)
    return {"name": p.name, "key": key, "title": p.title, "functions": p.function_names(),
            "points": total, "score": score, "passed": score == total, "given": False,
            "error": reason, "groups": groups, "messages": messages,
            "failures": [{"test": f"{key}/{g['name']}", "message": m} for g in groups for m in g["messages"]],
            "seconds": round(time.monotonic() - started, 2)}


# ---------------------------------------------------------------------------
# Submissions
# ---------------------------------------------------------------------------

def _handout_meta(student: Path) -> dict:
    meta = student / "assignment.json"
    try:
        data = json.loads(meta.read_text()) if meta.is_file() else {}
        return data if isinstance(data, dict) else {}
    except (ValueError, OSError):
        return {}


def _plan(student: Path, assignments, instructor: dict | None, solved):
    """(assignments to grade, part keys given away): the instructor's word first, then the handout's."""
    meta = _handout_meta(student)
    names = assignments or (instructor or {}).get("assignments")
    if not names:
        listed = meta.get("assignments")
        names = [n for n in listed if n in ASSIGNMENTS] if isinstance(listed, list) else None
    chosen = select(names or None)
    if solved is not None:
        given = set(solved)
    elif instructor and instructor.get("solved") is not None:
        given = set(instructor["solved"])
    else:  # a single handout graded on its own: its assignment.json says what was handed out solved
        listed = meta.get("solved")
        given = {s for s in listed if isinstance(s, str)} if isinstance(listed, list) else set()
    return chosen, given


class _Shared:
    """What every child of one grading run shares: the site view and the probe script."""

    def __init__(self, root: Path):
        self.root = root
        self.site_view = _site_view(root / "site")
        self.probe_dir = root / "probe"
        self.probe_dir.mkdir()
        shutil.copy(ASSIGNMENTS_DIR / "probes.py", self.probe_dir / "_minilstm_probes.py")
        (self.probe_dir / "_minilstm_boot.py").write_text(BOOTSTRAP)


def _submission_report(student, chosen, given, parts_by_key, seconds):
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
        "score": _num(sum(a["score"] for a in report_assignments)),
        "max_score": _num(sum(a["max_score"] for a in report_assignments)),
        "given": sorted(given), "errors": errors, "seconds": round(seconds, 1),
    }


def _num(x):
    return int(x) if float(x).is_integer() else round(float(x), 2)


def grade_many(student_dirs, assignments=None, timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB,
               jobs: int = 1, instructor=None, solved=None) -> list:
    """Grade several submissions; one report per folder (a folder without a package gets an error report)."""
    cfg = load_instructor(instructor) if instructor else None
    students = [Path(s).resolve() for s in student_dirs]
    plans, tasks, reports = {}, [], {}
    for s in students:
        if not (s / "minilstm" / "__init__.py").is_file():
            reports[s] = {"schema": SCHEMA, "student_dir": str(s), "assignments": [], "score": 0, "max_score": 0,
                          "given": [], "seconds": 0.0,
                          "errors": [f"{s} holds no minilstm package (expected {s / 'minilstm' / '__init__.py'})"]}
            continue
        chosen, given = _plan(s, assignments, cfg, solved)
        plans[s] = (chosen, given)
        for a in chosen:
            for p in a.parts:
                if part_key(a, p) not in given:
                    tasks.append((s, a, p))
    reference_patches()  # in this thread, before the pool starts
    started = {s: time.monotonic() for s in plans}
    results = {}
    with tempfile.TemporaryDirectory(prefix="minilstm-grade-") as scratch:
        root = Path(scratch)
        shared = _Shared(root)

        def work(index_task):
            k, (s, a, p) = index_task
            pts = (cfg or {}).get("points", {}).get(part_key(a, p))
            extra = (cfg or {}).get("extra", {}).get(part_key(a, p), ())
            return (s, part_key(a, p)), grade_part(s, a, p, root / f"job{k}", timeout, memory_mb,
                                                   shared.site_view, shared.probe_dir, pts, extra)

        with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
            for (s, key), part in pool.map(work, enumerate(tasks)):
                results.setdefault(s, {})[key] = part
    for s, (chosen, given) in plans.items():
        reports[s] = _submission_report(s, chosen, given, results.get(s, {}), time.monotonic() - started[s])
    return [reports[s] for s in students]


def grade(student_dir, assignments=None, timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB,
          jobs: int = 1, instructor=None, solved=None) -> dict:
    """Grade the code in ``student_dir``; returns the report (a JSON-ready dict).

    assignments: names to grade (default: the instructor's config, else those in the handout's
    assignment.json, else all). timeout / memory_mb: limits per part. The report: ``score`` /
    ``max_score`` in total and per assignment, part and group, each part's messages, ``errors``.
    """
    student = Path(student_dir).resolve()
    if not (student / "minilstm" / "__init__.py").is_file():
        raise GradeError(f"{student} holds no minilstm package (expected {student / 'minilstm' / '__init__.py'})")
    return grade_many([student], assignments, timeout, memory_mb, jobs, instructor, solved)[0]


def submissions_in(folder: Path) -> list:
    """The student folders of a class folder (sorted), or [folder] when it is one submission."""
    folder = Path(folder)
    if (folder / "minilstm" / "__init__.py").is_file():
        return [folder]
    if not folder.is_dir():
        raise GradeError(f"{folder} is not a folder")
    subs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not subs:
        raise GradeError(f"{folder} holds neither a minilstm package nor student folders")
    return subs


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

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
            lines.append(f"  {_num(p['score']):>4}/{_num(p['points']):<4} {p['name']:<18} {status}  "
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
                lines.append(f"      {_num(g['score'])}/{_num(g['points'])} {p['key']}/{g['name']}: {g['title']}"
                             + ("" if fresh else " (see above)"))
                shown = fresh if verbose else fresh[:3]
                for msg in shown:
                    for k, ln in enumerate(textwrap.wrap(msg, 110) or [""]):
                        lines.append(("        - " if k == 0 else "          ") + ln)
                if len(shown) < len(fresh):
                    lines.append(f"        ({len(fresh) - len(shown)} more: --verbose)")
        lines.append(f"  {_num(a['score']):>4}/{_num(a['max_score']):<4} total for {a['name']}")
    for err in report["errors"]:
        lines += ["", f"error: {err}"]
    lines += ["", f"score: {report['score']}/{report['max_score']}"]
    return "\n".join(lines)


def write_json(report: dict, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


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
    if report["errors"]:
        out["output"] = "\n".join(report["errors"])
    return out


def _student_name(report: dict, base: Path | None) -> str:
    path = Path(report["student_dir"])
    return path.name if base is None or path == base else path.relative_to(base).as_posix()


def write_gradebook(reports: list, out_dir, base=None) -> Path:
    """OUT/gradebook.csv (one row per student, one column per part) and OUT/feedback/<student>.txt."""
    out = Path(out_dir)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    keys = []
    for r in reports:
        for a in r["assignments"]:
            for p in a["parts"]:
                if p["key"] not in keys:
                    keys.append(p["key"])
    path = out / "gradebook.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "score", "max_score"] + keys + ["errors"])
        for r in reports:
            name = _student_name(r, base)
            scores = {p["key"]: ("given" if p.get("given") else _num(p["score"]))
                      for a in r["assignments"] for p in a["parts"]}
            w.writerow([name, r["score"], r["max_score"]] + [scores.get(k, "") for k in keys]
                       + ["; ".join(r["errors"])])
            (out / "feedback" / f"{name.replace('/', '_')}.txt").write_text(format_report(r, verbose=True) + "\n")
    return path


def _cmd_grade(args) -> int:
    """Exit status: 0 full marks (every submission), 1 some points lost, 2 could not grade."""
    try:
        folders = []
        for d in args.student_dir:
            folders += submissions_in(Path(d))
        single = len(folders) == 1 and len(args.student_dir) == 1 and Path(args.student_dir[0]) == folders[0]
        reports = grade_many(folders, args.assignment, timeout=args.timeout, memory_mb=args.memory, jobs=args.jobs,
                             instructor=args.instructor, solved=args.solved)
    except GradeError as exc:
        print(f"minilstm grade: error: {exc}", file=sys.stderr)
        return 2
    if single:
        print(format_report(reports[0], verbose=args.verbose))
    else:
        for r in reports:
            print(f"{r['score']:>6}/{r['max_score']:<4} {r['student_dir']}" +
                  (f"  ({r['errors'][0]})" if r["errors"] else ""))
    if args.json:
        write_json(reports[0] if single else {"schema": SCHEMA, "submissions": reports}, args.json)
        print(f"report: {args.json}")
    if args.gradescope:
        if not single:
            print("minilstm grade: error: --gradescope writes one submission's results; grade one folder",
                  file=sys.stderr)
            return 2
        write_json(gradescope_results(reports[0]), args.gradescope)
        print(f"Gradescope results: {args.gradescope}")
    if args.out:
        base = Path(args.student_dir[0]).resolve() if not single and len(args.student_dir) == 1 else None
        print(f"gradebook: {write_gradebook(reports, args.out, base)}")
    if all(r["errors"] and r["score"] == 0 for r in reports):
        return 2
    return 0 if all(r["score"] == r["max_score"] for r in reports) else 1


def add_grade_parser(subparsers) -> None:
    g = subparsers.add_parser(
        "grade", help="score each part of one student's folder, or of a whole class folder",
        description="Grade the minilstm package in each STUDENT_DIR (or in every folder of a class folder). "
                    "Every part runs in its own isolated child process with a time and memory limit, on inputs "
                    "drawn fresh for this run; this process compares the returned values with the reference and "
                    "decides every verdict. Exit status 0: full marks; 1: points lost; 2: could not grade.")
    g.add_argument("student_dir", nargs="+", metavar="STUDENT_DIR",
                   help="a student's folder (holding minilstm/), or a folder of student folders")
    g.add_argument("--assignment", action="append", choices=list(ASSIGNMENTS), metavar="NAME",
                   help="assignment to grade (default: --instructor's, else the handout's assignment.json, else all)")
    g.add_argument("--instructor", metavar="DIR",
                   help=f"folder with {INSTRUCTOR_CONFIG} (points per part or group, assignments, parts given "
                        "solved) and optionally checks.py (extra groups of checks)")
    g.add_argument("--solved", action="append", metavar="PART",
                   help="a part handed out solved (assignment:part), not scored; repeatable")
    g.add_argument("-j", "--jobs", type=int, default=1, help="parts graded in parallel (default 1)")
    g.add_argument("--json", metavar="REPORT", help="also write the report(s) as JSON to this file")
    g.add_argument("--out", metavar="DIR", help="write DIR/gradebook.csv and DIR/feedback/<student>.txt")
    g.add_argument("--gradescope", metavar="RESULTS_JSON",
                   help="write Gradescope's autograder results.json (one submission)")
    g.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help=f"seconds allowed per part (default {DEFAULT_TIMEOUT:g})")
    g.add_argument("--memory", type=int, default=DEFAULT_MEMORY_MB,
                   help=f"address-space limit per part in MiB (default {DEFAULT_MEMORY_MB})")
    g.add_argument("--verbose", "-v", action="store_true", help="show every message")
    g.set_defaults(func=_cmd_grade)


__all__ = ["grade", "grade_many", "grade_part", "assemble", "format_report", "write_json", "write_gradebook",
           "gradescope_results", "load_instructor", "submissions_in", "GradeError", "add_grade_parser"]
