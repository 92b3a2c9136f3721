"""``minilstm grade``: score each part of a student's code, from a process the student's code never runs in.

The trust boundary. The grader (this process) never imports a student's
code. For every part P of every submission it

1. draws fresh inputs from a secret seed (``secrets.randbits``; new for every
   grading run) and computes the reference answers itself, with its own
   package (``assignments/probes.py``);
2. assembles a scratch copy of the student's ``minilstm/`` (its Python files
   only) in which the functions of the parts P uses (``Part.uses``) are
   replaced by the reference's (one bug costs one part), while P's functions
   and every other part's stay the student's (no borrowing a reference) and
   no copy of P's reference code is on the child's import path;
3. runs a child ``python -I -S -B`` inside the operating system's boundary
   (minilstm/sandbox.py): Landlock lets it read only the interpreter, NumPy,
   the read-only copy and the probe, and write only its own folder; a PID
   namespace whose pid 1 kills every process of the part when it ends;
   rlimits (address space, CPU, file size, open files) set before any student
   code runs; no capabilities, no network; a scrubbed environment and a
   wall-clock limit. The child runs the part's cases on the student's code
   and writes arrays (``.npz``) back;
4. once every process of the part is dead, loads the arrays without pickle,
   and decides every verdict here (``assignments/checks.py``): a group of
   checks earns its points when the returned arrays match the reference.

So nothing the student's code does in the child (an ``atexit`` hook, writing
files, ``os._exit``, patching the checks, reading them, a daemon, a fork
bomb) changes a verdict except returning the right numbers, which needs the
right code. A crash, a timeout, ``os._exit`` or a garbled result costs only
that part, with a one-line reason. Where this machine lacks a layer, and what
the grader cannot promise: lessons/INSTRUCTORS.md, "Trust model".

What is graded comes from the instructor's side only (``--plan``, the
``OUT.plan.json`` that ``minilstm assign OUT`` writes beside the handout;
``--instructor``; ``--assignment``), never from the handout's own
``assignment.json``. Many submissions at once: ``minilstm grade CLASS_DIR -j 4
--out results/`` (a folder of student folders) writes ``gradebook.csv`` and
one feedback file per student, whole files only, and saves each report as it
is done so a rerun continues; ``--gradescope results.json`` writes
Gradescope's format; points come from ``--instructor DIR``
(``DIR/grading.json``), never from editing the package.
"""

from __future__ import annotations

import ast
import codecs
import csv
import hashlib
import io
import json
import os
import re
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
import tokenize
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from .assignments import ASSIGNMENTS, HERE as ASSIGNMENTS_DIR, part_key, plan_path, reference_parts, select
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
    for field in ("solved", "assignments"):
        if cfg.get(field) is not None and not isinstance(cfg[field], list):
            raise GradeError(f"{path}: {field} must be a list")
    for key in cfg.get("solved") or ():
        if key not in parts:
            raise GradeError(f"{path}: unknown part {key!r} in solved")
    for name in cfg.get("assignments") or ():
        if name not in ASSIGNMENTS:
            raise GradeError(f"{path}: unknown assignment {name!r}")
    digest = hashlib.sha256(path.read_bytes())
    if (Path(folder) / "checks.py").is_file():
        digest.update((Path(folder) / "checks.py").read_bytes())
    return {"assignments": cfg.get("assignments"), "solved": cfg.get("solved"), "points": points,
            "extra": _extra_checks(Path(folder), parts), "folder": str(folder), "digest": digest.hexdigest()}


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
"""Written by minilstm grade: a diagnostic guard, then the student's package, then the probe.

The limits and the sandbox were set before this interpreter started (minilstm/sandbox.py)."""
import json, os, sys
job_dir = sys.argv[1]
with open(os.path.join(job_dir, "job.json")) as f:
    job = json.load(f)
sys.path[:0] = job["sys_path"]
import numpy
import _minilstm_probes

_READABLE = frozenset(job["readable"])


def _guard(event, args, _readable=_READABLE, _real=os.path.realpath, _fspath=os.fspath, _up=os.path.dirname):
    # A diagnostic, not a wall (the kernel's sandbox is the wall): it names a file a graded part tried to open
    # outside what it may read, and refuses ctypes and sockets, with a message the student can read.
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = _fspath(args[0])
        path = _real(path.decode() if isinstance(path, bytes) else path)
        seen = path
        while seen not in _readable:
            if _up(seen) == seen:
                raise PermissionError("minilstm grade: the reference package cannot be read while grading "
                                      f"({path} is outside what a graded part may read: its inputs, the "
                                      "submission, Python and NumPy)")
            seen = _up(seen)
    elif event.startswith(("ctypes.", "socket.")):
        raise PermissionError(f"minilstm grade: {event} is not allowed while grading")


sys.addaudithook(_guard)
_minilstm_probes._child_main(job_dir)
'''

def _site_dirs():
    """This Python's site folders and NumPy's: where whatever installs the reference (a finder) may sit."""
    dirs = []
    for d in list(site.getsitepackages()) + [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]:
        if d and Path(d).is_dir() and Path(d).resolve() not in dirs:
            dirs.append(Path(d).resolve())
    import numpy
    numpy_home = Path(numpy.__file__).resolve().parent.parent
    if numpy_home not in dirs:
        dirs.append(numpy_home)
    return dirs


def _numpy_dirs() -> list:
    """NumPy's package folder and its bundled libraries (``numpy.libs`` in a wheel), resolved."""
    import numpy
    package = Path(numpy.__file__).resolve().parent
    return [package] + sorted(d for d in package.parent.glob("numpy.libs") if d.is_dir())


def _site_view(dest: Path) -> Path:
    """A folder of links to NumPy alone: the one package outside the standard library a graded part imports
    (not minilstm, not torch, not the rest of site-packages; no .pth files, no editable finder)."""
    dest.mkdir()
    for d in _numpy_dirs():
        (dest / d.name).symlink_to(d)
    return dest


def _forbidden_dirs():
    """The reference package, the folder holding it (the checkout, with .git, or site-packages) and whatever
    installs it (editable finders, dist-info), resolved."""
    out = {str(PACKAGE_DIR), str(PACKAGE_DIR.parent)}
    for d in _site_dirs():
        for entry in d.iterdir():
            if entry.name.lower().startswith(("minilstm", "__editable__")):
                out.add(os.path.realpath(entry))
    return sorted(out)


_RULES = {}


def _child_rules(site_view: Path) -> list:
    """The sandbox's read-only rules shared by every child of a grading run (computed once per site view):
    the system libraries and Python's standard library, less every site folder, the reference and the
    checkout; NumPy's folders and the site view. Each child adds its own copy, probe and folder."""
    key = str(site_view)
    if key not in _RULES:
        from . import sandbox
        forbidden = _forbidden_dirs() + sandbox.site_folders() + [str(Path(site_view).resolve().parent)]
        _RULES[key] = sandbox.shared_rules([str(site_view)] + [str(d) for d in _numpy_dirs()], forbidden)
    return _RULES[key]


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


def _unavailable_patch(qualname, owner, graded_key, why):
    """Code appended to a module that rebinds ``qualname`` (of part ``owner``) to a function that raises."""
    msg = (f"{qualname} [{owner}] is not available while [{graded_key}] is graded: {why}")
    fn = "def _minilstm_unavailable(*args, **kwargs):\n    raise NotImplementedError(" + repr(msg) + ")\n"
    if "." not in qualname:
        return f"\n\n# minilstm grade: {qualname} unavailable\n{fn}{qualname} = _minilstm_unavailable\n" \
               "del _minilstm_unavailable\n"
    cls, attr = qualname.split(".", 1)
    return f"\n\n# minilstm grade: {qualname} unavailable\n{fn}{cls}.{attr} = _minilstm_unavailable\n" \
           "del _minilstm_unavailable\n"


def assemble(student: Path, dest: Path, graded_key: str) -> None:
    """Copy the student's ``minilstm/`` to ``dest/minilstm`` for grading part ``graded_key``.

    Only the package's Python files are copied (``_package_files``: at most MAX_SOURCE_BYTES each,
    links followed only within the student's folder, a UTF-8 BOM, CRLF line ends and another source
    encoding normalised). The functions of the parts ``graded_key`` uses (``reference_parts``) are
    rebound to the reference's (one bug costs one part); every other part's functions stay the
    student's (a stub still raises), so a part cannot borrow the reference of a part it does not use.
    A file that does not parse and holds none of the graded part's functions is taken from the
    reference, with the functions of parts not used rebound to ones that raise."""
    _assemble(student, dest, graded_key, reference_patches())


def _assemble(student: Path, dest: Path, graded_key: str, reference: dict) -> None:
    _copy_package(student, dest / "minilstm")
    allowed = reference_parts(graded_key)
    graded_files, patches, blocked = set(), {}, {}
    for a in ASSIGNMENTS.values():
        for p in a.parts:
            key = part_key(a, p)
            for spec in p.functions:
                rel, qualname = _module_file(spec), spec.split(":", 1)[1]
                if key == graded_key:
                    graded_files.add(rel)
                elif key in allowed:
                    patches.setdefault(rel, []).append(qualname)
                else:
                    blocked.setdefault(rel, []).append((qualname, key))
    for rel in sorted(set(patches) | set(blocked)):
        target = dest / rel
        try:
            text = target.read_text(encoding="utf-8")
            compile(text, rel, "exec", dont_inherit=True)  # a syntax check without building AST objects
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            if rel in graded_files:
                continue  # the child's import reports the error under the graded part
            target.parent.mkdir(parents=True, exist_ok=True)
            why = "your copy of this file could not be read or does not compile, and this part does not use it"
            text = (PACKAGE_DIR.parent / rel).read_text(encoding="utf-8")
            text += "".join(_unavailable_patch(q, owner, graded_key, why) for q, owner in blocked.get(rel, ()))
            target.write_text(text, encoding="utf-8")
            continue
        text += "".join(reference[(rel, q)] for q in patches.get(rel, ()))
        target.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------
# What is copied from a submission: the package's Python files, normalised
# ---------------------------------------------------------------------------

MAX_SOURCE_BYTES = 2**20   # a larger file in minilstm/ is skipped (with a note), never read whole
MAX_SOURCE_FILES = 2000    # and so is everything past this many files
MAX_PACKAGE_BYTES = 64 * 2**20  # or this many bytes in all
_SKIPPED_QUIETLY = (".pyc", ".pyo")


def _inside(path, folder) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _package_files(student: Path):
    """([(path in the package, file to read)], notes): the Python files of ``student/minilstm``.

    Hidden files and caches are left out quietly; files that are not Python source, larger than
    MAX_SOURCE_BYTES, not regular files, or links leading out of the student's folder are left out
    with a note. A link within the student's folder (a file or a folder) is followed. Raises
    GradeError when ``minilstm/`` itself leads out of the student's folder."""
    import stat as _stat
    root = Path(student)
    pkg = root / "minilstm"
    if not _inside(pkg, root):
        raise GradeError(f"minilstm/ is a link out of the student's folder (to {os.path.realpath(pkg)}): not graded")
    files, skipped, visited, total = [], {}, {os.path.realpath(pkg)}, 0
    todo = [(pkg, "")]
    while todo:
        folder, prefix = todo.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped.setdefault(f"could not be listed ({type(exc).__name__})", []).append(prefix or ".")
            continue
        for entry in entries:
            name, rel = entry.name, prefix + entry.name
            if name.startswith(".") or name == "__pycache__" or name.endswith(_SKIPPED_QUIETLY):
                continue
            try:
                if entry.is_symlink() and not _inside(entry.path, root):
                    skipped.setdefault("links out of the student's folder", []).append(rel)
                    continue
                st = os.stat(entry.path)
            except OSError:
                skipped.setdefault("broken links or unreadable", []).append(rel)
                continue
            if _stat.S_ISDIR(st.st_mode):
                real = os.path.realpath(entry.path)
                if real not in visited:
                    visited.add(real)
                    todo.append((Path(entry.path), rel + "/"))
            elif not _stat.S_ISREG(st.st_mode):
                skipped.setdefault("not regular files", []).append(rel)
            elif not name.endswith(".py"):
                skipped.setdefault("not Python source", []).append(rel)
            elif st.st_size > MAX_SOURCE_BYTES:
                skipped.setdefault(f"larger than {MAX_SOURCE_BYTES // 2**20} MiB", []).append(
                    f"{rel} ({st.st_size / 2**20:.0f} MiB)")
            elif len(files) >= MAX_SOURCE_FILES or total + st.st_size > MAX_PACKAGE_BYTES:
                skipped.setdefault(f"past the first {MAX_SOURCE_FILES} files or "
                                   f"{MAX_PACKAGE_BYTES // 2**20} MiB", []).append(rel)
            else:
                files.append((rel, Path(entry.path)))
                total += st.st_size
    notes = []
    for why, names in sorted(skipped.items()):
        shown = ", ".join(f"minilstm/{n}" for n in sorted(names)[:4])
        more = f" and {len(names) - 4} more" if len(names) > 4 else ""
        notes.append(f"not copied for grading ({why}): {shown}{more}")
    return sorted(files), notes


_CODING_RE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


def _normalize_source(data: bytes) -> bytes:
    """The same code as UTF-8 without a BOM, with \\n line ends (a file that cannot be decoded is kept as it is)."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError):
        return data  # the child's import reports what is wrong with it
    if encoding not in ("utf-8", "utf-8-sig"):  # the cookie would now lie: keep the line, drop the claim
        lines = text.split("\n")
        for k in range(min(2, len(lines))):
            if _CODING_RE.match(lines[k].encode("utf-8", "replace")):
                lines[k] = f"# (was {encoding}; converted to UTF-8 by minilstm grade)"
        text = "\n".join(lines)
    return text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")


def _copy_package(student: Path, dest_pkg: Path):
    """Copy the Python files of ``student/minilstm`` to ``dest_pkg``, normalised; (notes, digest)."""
    files, notes = _package_files(student)
    digest = hashlib.sha256()
    dest_pkg.mkdir(parents=True, exist_ok=True)
    for rel, src in files:
        try:
            with open(src, "rb") as f:
                data = f.read(MAX_SOURCE_BYTES + 1)
        except OSError as exc:
            notes.append(f"not copied for grading (unreadable, {type(exc).__name__}): minilstm/{rel}")
            continue
        if len(data) > MAX_SOURCE_BYTES:
            notes.append(f"not copied for grading (it grew past {MAX_SOURCE_BYTES // 2**20} MiB): minilstm/{rel}")
            continue
        data = _normalize_source(data)
        target = dest_pkg / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0" + hashlib.sha256(data).digest())
    return notes, digest.hexdigest()


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
    """Run part ``key`` of the student's code on ``inputs`` in a sandboxed child; (outputs or None, reason).

    The child (minilstm/sandbox.py) reads ``work/pkg`` (the assembled copy) and ``work/grader`` (the probe
    and bootstrap, copied for this child), writes only in ``work/box`` (job.json, inputs.npz, its
    outputs.npz; HOME and TMPDIR in box/home), and reads Python, NumPy and the system libraries: nothing
    else. The outputs are read here once every process of the part is dead; then the folder is deleted,
    so nothing of one part is left for another."""
    from . import sandbox
    found = sandbox.layers()
    refused = sandbox.refusal(found)
    if refused:
        return None, refused
    work.mkdir(parents=True)
    try:
        return _run_sandboxed(work, student, key, inputs, timeout, memory_mb, site_view, probe_dir, found)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_sandboxed(work, student, key, inputs, timeout, memory_mb, site_view, probe_dir, found):
    import numpy as np
    from . import sandbox
    pkg, grader, box = work / "pkg", work / "grader", work / "box"
    home = box / "home"
    home.mkdir(parents=True)
    try:
        assemble(student, pkg, key)
    except (OSError, ValueError, RecursionError, shutil.Error) as exc:
        return None, f"the submission's minilstm/ could not be copied ({type(exc).__name__}: {exc}"[:300] + \
            "); this part scores 0"
    np.savez(box / "inputs.npz", **inputs)
    shutil.copytree(probe_dir, grader)
    own = [(str(pkg.resolve()), "read"), (str(grader.resolve()), "read")]
    rules = _child_rules(site_view) + own
    (box / "job.json").write_text(json.dumps({  # what the child needs: no path of the reference
        "part": key, "sys_path": [str(pkg), str(grader), str(site_view)],
        "readable": sorted({p for p, kind in rules if kind != "list"} | {str(box.resolve())})}))
    sandbox.write_spec(work / "sandbox.json", [sandbox.interpreter(), "-I", "-S", "-B",
                                               str(grader / "_minilstm_boot.py"), str(box)],
                       cwd=home, rules=rules, box=box, found=found,
                       limits={"memory_bytes": int(memory_mb) * 2**20, "cpu_seconds": int(timeout) + 5,
                               "file_bytes": MAX_OUTPUT_BYTES, "output_bytes": MAX_OUTPUT_BYTES,
                               "open_files": 256, "processes": 64})
    log = work / "child.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(sandbox.command(work / "sandbox.json"), cwd=home, env=_clean_env(home),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                                close_fds=True)
        try:
            code = proc.wait(timeout=timeout)
            reason = None
        except subprocess.TimeoutExpired:
            code, reason = None, f"did not finish within {timeout:g} s (an endless loop?); this part scores 0"
        finally:
            _kill_group(proc)  # the launcher, the part's pid 1 and with it every process of the part
    result = box / "outputs.npz"
    if reason is None and result.is_symlink():  # only where the part wrote in place (no private folder)
        reason = "the results that came back are a link, not a file; this part scores 0"
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

MAX_PLAN_BYTES = 2**20
MAX_META_BYTES = 64 * 2**10
plan_file_for = plan_path  # minilstm assign OUT writes OUT.plan.json beside the handout: the instructor's copy


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
                             f"handout ({plan_file_for(path)})")
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_PLAN_BYTES + 1)
            if len(raw) > MAX_PLAN_BYTES:
                raise ValueError("larger than 1 MiB")
            data = json.loads(raw.decode("utf-8"))
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
        raise GradeError(f"{where}: unknown assignment {str(bad[0])[:60]!r}; known: {', '.join(ASSIGNMENTS)}")
    solved = data.get("solved", [])
    known = {part_key(a, p) for a in ASSIGNMENTS.values() for p in a.parts}
    if not isinstance(solved, list) or any(not isinstance(k, str) or k not in known for k in solved):
        raise GradeError(f"{where}: \"solved\" must list parts as assignment:part; parts: {', '.join(known)}")
    return {"assignments": list(names), "solved": list(solved), "from": where}


def _grading_plan(assignments=None, instructor: dict | None = None, solved=None, plan: dict | None = None) -> dict:
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
        unknown = [k for k in solved if k not in keys and k not in {part_key(a, p) for a in ASSIGNMENTS.values()
                                                                      for p in a.parts}]
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


def _handout_meta(student: Path):
    """(the handout's own assignment.json as a dict, or None; a note when it is there but unreadable).

    Only read to report a disagreement with the grading plan: it is the student's file."""
    meta = Path(student) / "assignment.json"
    try:
        if meta.is_symlink() and not _inside(meta, student):
            return None, "the handout's assignment.json is a link out of the student's folder: ignored"
        if not meta.is_file():
            return None, None
        with open(meta, "rb") as f:
            raw = f.read(MAX_META_BYTES + 1)
        if len(raw) > MAX_META_BYTES:
            return None, "the handout's assignment.json is larger than 64 KiB: ignored"
        data = json.loads(raw.decode("utf-8"))
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


def _plan(student: Path, plan: dict):
    """(assignments to grade, part keys given, notes) for one submission: the grading plan decides; a
    handout whose assignment.json says otherwise is noted, never obeyed."""
    chosen, given = plan["chosen"], set(plan["given"])
    data, note = _handout_meta(student)
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
        total = _num(sum(parts.values())) if numbers else "?"
        diffs.append(f"{len(parts) if isinstance(parts, dict) else '?'} parts worth {total} points (the plan: "
                     f"{len(keys)} parts, {sum(keys.values())} points)")
    if diffs:
        notes.append(f"the handout's assignment.json disagrees with the grading plan ({plan['from']}), which "
                     f"decides: {'; '.join(diffs)}")
    return chosen, given, notes


class _Shared:
    """What every child of one grading run starts from, read-only: the site view (NumPy alone), the probe
    script (copied again for each child, so no child can spoil another's) and the sandbox's shared rules.
    Which sandbox layers this machine has is found once, here, before any child starts."""

    def __init__(self, root: Path):
        from . import sandbox
        self.root = root
        self.layers = sandbox.layers()
        self.site_view = _site_view(root / "site")
        self.probe_dir = root / "probe"
        self.probe_dir.mkdir()
        shutil.copy(ASSIGNMENTS_DIR / "probes.py", self.probe_dir / "_minilstm_probes.py")
        (self.probe_dir / "_minilstm_boot.py").write_text(BOOTSTRAP)
        self.rules = _child_rules(self.site_view)


def _submission_report(student, chosen, given, parts_by_key, seconds, notes=(), plan_from=None):
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
        "given": sorted(given), "errors": errors, "notes": list(notes), "seconds": round(seconds, 1),
        "plan": {"from": plan_from, "assignments": [a.name for a in chosen], "given": sorted(given)},
        "sandbox": _sandbox_record(),
    }


def _sandbox_record() -> dict:
    """Which of the sandbox's layers graded this submission, and whether the instructor waived the filesystem one."""
    from . import sandbox
    return {"layers": sandbox.summary(), "unsafe_no_sandbox": sandbox.unsafe_allowed()}


def _error_report(student, error, notes=()):
    return {"schema": SCHEMA, "student_dir": str(student), "assignments": [], "score": 0, "max_score": 0,
            "given": [], "seconds": 0.0, "errors": [error], "notes": list(notes)}


def _only_work(result: dict, p) -> dict:
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
    messages = []
    for g in groups:
        messages += [m for m in g["messages"] if m not in messages]
    score = sum(g["score"] for g in groups)
    result.update(score=score, passed=score == result["points"], messages=messages,
                  failures=[{"test": f"{result['key']}/{g['name']}", "message": m} for g in groups
                            for m in g["messages"]])
    return result


_GRADER_DIGEST = []


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


def _write_atomic(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a temporary file beside it, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _saved_report_path(reports_dir, student: Path) -> Path:
    tag = hashlib.sha256(str(student).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return Path(reports_dir) / f"{_file_name(student.name)}-{tag}.json"


def _saved_report(reports_dir, student: Path, key: str):
    """The report saved by an earlier run for this submission, if its key (files, plan, grader) is the same."""
    try:
        saved = json.loads(_saved_report_path(reports_dir, student).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if isinstance(saved, dict) and saved.get("cache_key") == key and saved.get("student_dir") == str(student):
        saved["reused"] = True
        return saved
    return None


def _num(x):
    return int(x) if float(x).is_integer() else round(float(x), 2)


def grade_many(student_dirs, assignments=None, timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB,
               jobs: int = 1, instructor=None, solved=None, plan=None, plans=None, reports_dir=None,
               regrade: bool = False) -> list:
    """Grade several submissions; one report per folder (a folder without a package gets an error report).

    What is graded comes from the instructor's side only (``_grading_plan``): ``assignments`` /
    ``solved``, else ``plan`` (a plan file ``OUT.plan.json`` written by ``minilstm assign OUT``, or a
    dict {"assignments": [...], "solved": [...]}), else the instructor folder's grading.json; ``plans``
    ({folder: plan}) sets it for some folders. No plan at all: GradeError. A handout's assignment.json
    is never obeyed; where it disagrees, the report's ``notes`` say so.

    Each submission's package (its Python files, normalised) is copied once into the scratch folder
    and graded from there. ``reports_dir``: each submission's report is saved there (atomically) as
    soon as its last part is graded, and a rerun reuses a saved report whose files, plan, settings and
    grader are unchanged (``regrade``: never reuse), so a stopped class run continues where it was.
    """
    cfg = load_instructor(instructor) if instructor else None
    common = load_plan(plan) if plan is not None else None
    own = {Path(k).resolve(): load_plan(v) for k, v in (plans or {}).items()}
    students = [Path(s).resolve() for s in student_dirs]
    unique = list(dict.fromkeys(students))
    made = {}
    plan_of = {}
    for s in unique:  # every plan first: a missing one stops the run before any work
        source = own.get(s, common)
        if id(source) not in made:
            made[id(source)] = _grading_plan(assignments, cfg, solved, source)
        plan_of[s] = made[id(source)]
    reference_patches()  # in this thread, before the pool starts
    grader = _grader_digest()
    reports, pending, tasks = {}, {}, []
    with tempfile.TemporaryDirectory(prefix="minilstm-grade-") as scratch:
        root = Path(scratch)
        for i, s in enumerate(unique):
            started = time.monotonic()
            if not (s / "minilstm" / "__init__.py").is_file():
                reports[s] = _error_report(s, f"{s} holds no minilstm package (expected "
                                              f"{s / 'minilstm' / '__init__.py'})")
                continue
            chosen, given, notes = _plan(s, plan_of[s])
            snapshot = root / f"submission{i}"
            try:
                copied, files = _copy_package(s, snapshot / "minilstm")
            except (GradeError, OSError) as exc:
                reports[s] = _error_report(s, str(exc)[:300], notes)
                continue
            notes += copied
            key = hashlib.sha256(json.dumps({
                "files": files, "notes": notes, "assignments": [a.name for a in chosen], "given": sorted(given),
                "instructor": (cfg or {}).get("digest"), "timeout": timeout, "memory_mb": memory_mb,
                "grader": grader, "schema": SCHEMA}, sort_keys=True).encode()).hexdigest()
            saved = _saved_report(reports_dir, s, key) if reports_dir is not None and not regrade else None
            if saved is not None:
                reports[s] = saved
                continue
            todo = [(s, a, p) for a in chosen for p in a.parts if part_key(a, p) not in given]
            pending[s] = {"chosen": chosen, "given": given, "notes": notes, "snapshot": snapshot, "key": key,
                          "started": started, "left": len(todo), "parts": {}, "from": plan_of[s]["from"]}
            tasks += todo

        def finish(s):
            st = pending[s]
            report = _submission_report(s, st["chosen"], st["given"], st["parts"],
                                        time.monotonic() - st["started"], st["notes"], st["from"])
            report["cache_key"] = st["key"]
            if reports_dir is not None:
                _write_atomic(_saved_report_path(reports_dir, s), json.dumps(report, indent=1, sort_keys=True))
            reports[s] = report

        if tasks:
            shared = _Shared(root)

            def work(k, task):
                s, a, p = task
                key = part_key(a, p)
                pts = (cfg or {}).get("points", {}).get(key)
                extra = (cfg or {}).get("extra", {}).get(key, ())
                part = grade_part(pending[s]["snapshot"], a, p, root / f"job{k}", timeout, memory_mb,
                                  shared.site_view, shared.probe_dir, pts, extra)
                return s, key, _only_work(part, p)

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
            if s not in reports:
                finish(s)
    return [reports[s] for s in students]


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


def submissions_in(folder: Path, notes: list | None = None) -> list:
    """The student folders of a class folder (sorted), or [folder] when it is one submission.

    A link among the class folder's entries is never graded on its own (``notes`` gets why): one to
    another student's folder would grade that student twice, one elsewhere is outside the class."""
    folder = Path(folder)
    if (folder / "minilstm" / "__init__.py").is_file():
        return [folder]
    if not folder.is_dir():
        raise GradeError(f"{folder} is not a folder")
    base = folder.resolve()
    subs = []
    for d in sorted(folder.iterdir(), key=lambda e: e.name):
        if d.name.startswith("."):
            continue
        if d.is_symlink():
            target = Path(os.path.realpath(d))
            if target.parent == base and target.is_dir():
                why = f"a link to {target.name}, who is graded once, under {target.name}"
            elif _inside(target, base):
                why = f"a link into {target.relative_to(base).as_posix()} inside the class folder: skipped"
            else:
                why = f"a link to {target}, outside the class folder: skipped"
            if notes is not None:
                notes.append(f"{folder / d.name}: {why}")
            continue
        if d.is_dir():
            subs.append(d)
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
    for note in report.get("notes") or ():
        lines += ["", *textwrap.wrap(f"note: {note}", 110, subsequent_indent="      ")]
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
    if report["errors"] or report.get("notes"):
        out["output"] = "\n".join(list(report["errors"]) + [f"note: {n}" for n in report.get("notes") or ()])
    return out


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


def _file_name(name: str) -> str:
    """A file name for a student's name: letters, digits and . _ - + = @ only, no leading dot or dash."""
    return re.sub(r"[^\w.+=@-]", "_", name).lstrip(".-")[:100] or "student"


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
        stem, k = _file_name(name.replace("/", "_")), 1
        while (stem if k == 1 else f"{stem}-{k}").lower() in taken:
            k += 1
        stem = stem if k == 1 else f"{stem}-{k}"
        taken.add(stem.lower())
        files.append(out / "feedback" / f"{stem}.txt")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["student", "score", "max_score"] + keys + ["errors", "notes", "feedback"])
    for r, name, feedback in zip(reports, names, files):
        scores = {p["key"]: ("given" if p.get("given") else _num(p["score"]))
                  for a in r["assignments"] for p in a["parts"]}
        w.writerow([_cell(c) for c in [name, r["score"], r["max_score"]] + [scores.get(k, "") for k in keys]
                    + ["; ".join(r["errors"]), "; ".join(r.get("notes") or ()),
                       feedback.relative_to(out).as_posix()]])
        _write_atomic(feedback, format_report(r, verbose=True) + "\n")
    path = out / "gradebook.csv"
    _write_atomic(path, buf.getvalue())
    return path


def _shown(text: str) -> str:
    """A path or name as one printable line (a student's folder name may hold a tab or a CR)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _cmd_grade(args) -> int:
    """Exit status: 0 full marks (every submission), 1 some points lost, 2 could not grade."""
    notes = []
    if args.unsafe_no_sandbox:
        from . import sandbox
        sandbox.allow_unsafe(True)
        notes.append("--unsafe-no-sandbox: graded without requiring the filesystem sandbox (trusted code only)")
    try:
        folders = []
        for d in args.student_dir:
            folders += submissions_in(Path(d), notes)
        seen = {}
        for f in folders:  # the same folder twice (two arguments, or one inside the other): graded once
            seen.setdefault(f.resolve(), f)
        if len(seen) < len(folders):
            notes.append(f"{len(folders) - len(seen)} folder(s) named twice: graded once")
        folders = list(seen.values())
        single = len(folders) == 1 and len(args.student_dir) == 1 and Path(args.student_dir[0]) == folders[0]
        reports = grade_many(folders, args.assignment, timeout=args.timeout, memory_mb=args.memory, jobs=args.jobs,
                             instructor=args.instructor, solved=args.solved, plan=args.plan,
                             reports_dir=Path(args.out) / "reports" if args.out else None, regrade=args.regrade)
    except GradeError as exc:
        print(f"minilstm grade: error: {_shown(exc)}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {_shown(note)}")
    if single:
        print(format_report(reports[0], verbose=args.verbose))
    else:
        for r in reports:
            print(f"{r['score']:>6}/{r['max_score']:<4} {_shown(r['student_dir'])}" +
                  (f"  ({_shown(r['errors'][0])})" if r["errors"] else "") +
                  ("  (saved report: files unchanged)" if r.get("reused") else ""))
            for note in r.get("notes") or ():
                print(f"             note: {_shown(note)}")
    if args.json:
        write_json(reports[0] if single else {"schema": SCHEMA, "submissions": reports, "notes": notes}, args.json)
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
                    "What is graded comes from you, never from the student's folder: --plan (the file "
                    "`minilstm assign OUT` writes beside the handout, OUT.plan.json), --instructor DIR "
                    "(grading.json's assignments and solved parts) or --assignment; without any of them grade "
                    "stops. Every part runs in its own isolated child process with a time and memory limit, on "
                    "inputs drawn fresh for this run; this process compares the returned values with the "
                    "reference and decides every verdict. Exit status 0: full marks; 1: points lost; 2: could "
                    "not grade.")
    g.add_argument("student_dir", nargs="+", metavar="STUDENT_DIR",
                   help="a student's folder (holding minilstm/), or a folder of student folders")
    g.add_argument("--plan", metavar="PLAN_JSON",
                   help="the grading plan minilstm assign wrote beside the handout (OUT.plan.json): which "
                        "assignments, which parts were handed out solved. A handout's own assignment.json is the "
                        "student's file: it is only compared with the plan (a disagreement is noted)")
    g.add_argument("--assignment", action="append", choices=list(ASSIGNMENTS) + ["all"], metavar="NAME",
                   help="assignment to grade, repeatable; all: every one (overrides --plan and --instructor)")
    g.add_argument("--instructor", metavar="DIR",
                   help=f"folder with {INSTRUCTOR_CONFIG} (points per part or group, assignments, parts given "
                        "solved) and optionally checks.py (extra groups of checks)")
    g.add_argument("--solved", action="append", metavar="PART",
                   help="a part handed out solved (assignment:part), not scored; repeatable (overrides --plan and "
                        "--instructor)")
    g.add_argument("-j", "--jobs", type=int, default=1, help="parts graded in parallel (default 1)")
    g.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="grade even where this machine has no filesystem sandbox (Landlock): only for code you "
                        "trust; the report records it (`python -m minilstm.sandbox` lists the layers)")
    g.add_argument("--json", metavar="REPORT", help="also write the report(s) as JSON to this file")
    g.add_argument("--out", metavar="DIR",
                   help="write DIR/gradebook.csv and DIR/feedback/<student>.txt (whole files only, the gradebook "
                        "at the end) and DIR/reports/ (each student's report as it is done: a rerun after an "
                        "interruption reuses those whose files are unchanged)")
    g.add_argument("--regrade", action="store_true", help="with --out: grade every submission again, even those "
                                                           "with a saved report")
    g.add_argument("--gradescope", metavar="RESULTS_JSON",
                   help="write Gradescope's autograder results.json (one submission)")
    g.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help=f"seconds allowed per part (default {DEFAULT_TIMEOUT:g})")
    g.add_argument("--memory", type=int, default=DEFAULT_MEMORY_MB,
                   help=f"address-space limit per part in MiB (default {DEFAULT_MEMORY_MB})")
    g.add_argument("--verbose", "-v", action="store_true", help="show every message")
    g.set_defaults(func=_cmd_grade)


__all__ = ["grade", "grade_many", "grade_part", "assemble", "format_report", "write_json", "write_gradebook",
           "gradescope_results", "load_instructor", "load_plan", "plan_file_for", "submissions_in", "GradeError",
           "add_grade_parser"]
