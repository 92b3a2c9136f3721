"""``minilstm assign``: build the student version of an assignment from the reference source.

The reference code marks what students write with solution regions (the
nbgrader / otter-grader convention)::

    def cell_forward(gates, prev_c, next_c, tanh_c, next_h, xp):
        \"\"\"c = f * c_prev + i * g;  h = o * tanh(c). ...\"\"\"
        H = prev_c.shape[1]
        ### BEGIN SOLUTION [lstm:cell_forward] (hint: c = f * prev_c + i * g; h = o * tanh(c))
        xp.multiply(f, prev_c, out=next_c)
        ...
        ### END SOLUTION

The tag ``[assignment:part]`` says which graded part the region belongs to,
and the hint lives beside the code it describes. A long hint may continue on
the following ``###`` lines until its parenthesis closes. To Python the
markers are comments, so the reference package runs unchanged.

For the assignment being handed out, each of its regions becomes::

        # YOUR CODE HERE [lstm:cell_forward]
        raise NotImplementedError(
            "cell_forward: your code here [lstm:cell_forward]. Hint: c = f * prev_c + i * g; "
            "h = o * tanh(c)")

indented like the marker. Regions of other assignments keep their code (only
the marker lines go), so every handout is a complete, importable package
with a few holes. Docstrings and shape comments outside the regions stay.

The student version (``OUT_DIR``) holds: the package ``minilstm/`` (files and
``### BEGIN DUPLICATE`` blocks that would repeat a handed-out solution become
stubs), the lessons as notebooks ``lessons/*.ipynb`` (percent-format scripts
converted here, no Jupyter needed), the visible tests in ``tests/``,
``ASSIGNMENT.md`` (what to do, for how many points), ``assignment.json``
(which assignment this is, for the student: ``minilstm grade`` only compares
it with the grading plan), the marker
``.minilstm-handout`` (``--force`` replaces only such a folder), plus README,
LICENSE and the packaging files so ``pip install -e .`` works. Beside the
folder, not in it, goes ``OUT.plan.json``, the grading plan ``minilstm grade
--plan`` grades by (``write_plan``). Before writing
anything, a leak check refuses a handout in which a handed-out region's code
appears anywhere in it (``check_leaks``).

It is generated, never edited by hand: the same source gives byte-identical
files (sorted walks, no timestamps, notebooks without execution counts).
"""

from __future__ import annotations

import ast
import functools
import io
import json
import re
import shutil
import sys
import textwrap
import tokenize
from dataclasses import dataclass
from pathlib import Path

from .assignments import ASSIGNMENTS, part_key, plan_path, select

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE_DIR.parent  # the repository (or site-packages) holding minilstm/

# Files of the repository root copied as they are, when present.
ROOT_FILES = ("README.md", "LICENSE", "pyproject.toml", "setup.cfg")
# Never copied into a student version: the instructors' guide and build debris.
SKIP_NAMES = {"INSTRUCTORS.md", "__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".hypothesis"}
SKIP_SUFFIXES = (".pyc", ".pyo")
LESSON_OUTPUTS = "out"  # lessons/out/: figures the lessons write when run (git-ignored, not source)

# Files that only repeat solutions in another form: replaced by a stub module when any of these parts is
# handed out (the fused CUDA kernels spell out the cell; bench's classroom baseline is a whole LSTM with
# BPTT and its train_fns the training step).
LSTM_CELL = {"lstm:cell_forward", "lstm:cell_backward"}
DUPLICATE_FILES = {
    "minilstm/ops/cuda_kernels.py": LSTM_CELL,
    "minilstm/bench.py": LSTM_CELL | {"lstm:step", "lstm:sequence_forward", "lstm:sequence_backward",
                                      "training:loop", "training:evaluate"},
}
# Code elsewhere that repeats a part (evaluate_ensemble is evaluate for K models), or lesson text that
# restates it, sits between ``### BEGIN DUPLICATE [assignment:part]`` and ``### END DUPLICATE``: a stub
# while that part is handed out (a one-line note for a block of comments or markdown), or the one line
# that ``(instead: ...)`` after the tag gives (continued on ``###`` lines like a hint).
DUP_BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)### BEGIN DUPLICATE \[(?P<key>[\w-]+:[\w-]+)\](?P<rest>.*)$")
DUP_END_RE = re.compile(r"^[ \t]*### END DUPLICATE\s*$")
MARKER = ".minilstm-handout"  # written into every handout; --force empties only a folder that has it
LEAK_MIN_CHARS = 16  # a normalised line of a region this long must not appear anywhere else in the handout

BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION\b(?P<rest>.*)$")
END_RE = re.compile(r"^[ \t]*### END SOLUTION\s*$")
TAG_RE = re.compile(r"^\s*\[(?P<assignment>[A-Za-z_][\w-]*):(?P<part>[A-Za-z_][\w-]*)\]\s*(?P<rest>.*)$")
CONT_RE = re.compile(r"^[ \t]*###(?P<text>.*)$")
STUB_WIDTH = 100  # wrap the NotImplementedError message into literals of about this width


class AssignError(ValueError):
    """The source or the command line is wrong; the message says how to fix it."""


# ---------------------------------------------------------------------------
# Solution regions
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Region:
    """One ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block.

    begin / end: 0-based line numbers of the BEGIN marker and of the END marker;
    code_start: first line after the marker (and its hint continuation lines);
    function: qualified name of the enclosing function (None at module level).
    """

    path: str
    begin: int
    code_start: int
    end: int
    indent: str
    assignment: str
    part: str
    hint: str
    function: str | None

    @property
    def key(self):
        return f"{self.assignment}:{self.part}"

    @property
    def where(self):
        return f"{self.path}:{self.begin + 1}"


def _read_hint(rest: str, lines: list, start: int, where: str, keyword: str = "hint"):
    """Parse ``(hint: ...)`` from the BEGIN line's remainder and any ``###`` continuation lines.

    The hint ends where its opening parenthesis closes, so hints may contain
    parentheses of their own. Returns (hint, index of the first code line).
    ``keyword``: "instead" for a DUPLICATE block's ``(instead: ...)``.
    """
    rest = rest.strip()
    if not rest:
        return "", start
    if not rest.startswith(f"({keyword}:"):
        raise AssignError(f"{where}: after the tag, expected '({keyword}: ...)', got {rest!r}")
    text, depth, i = rest[len(f"({keyword}:"):], 1, start
    pieces = []
    while True:
        for pos, ch in enumerate(text):
            depth += (ch == "(") - (ch == ")")
            if depth == 0:
                if text[pos + 1:].strip():
                    raise AssignError(f"{where}: text after the {keyword}'s closing parenthesis (an unbalanced "
                                      f"\")\" in the {keyword}, as in '[0, 1)', closes it early)")
                pieces.append(text[:pos])
                return " ".join(p.strip() for p in pieces if p.strip()), i
        pieces.append(text)
        m = CONT_RE.match(lines[i]) if i < len(lines) else None
        if m is None or BEGIN_RE.match(lines[i]) or END_RE.match(lines[i]) or DUP_END_RE.match(lines[i]):
            raise AssignError(f"{where}: the {keyword}'s parenthesis never closes; continue a long {keyword} on "
                              "lines starting with ### and end it with ')'")
        text, i = m.group("text"), i + 1


def _enclosing_functions(text: str) -> list:
    """[(first line, last line, qualname)] of every function, 0-based, innermost last."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    spans = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    spans.append((child.lineno - 1, child.end_lineno - 1, name))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return spans


def _comment_lines(text: str):
    """0-based numbers of the lines that are a comment and nothing else (None if not tokenizable).

    Markers count only there: a docstring that *shows* a marker (like this module's) is not a region.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    lines = text.splitlines()
    return {t.start[0] - 1 for t in tokens
            if t.type == tokenize.COMMENT and not lines[t.start[0] - 1][:t.start[1]].strip()}


def find_regions(text: str, path: str) -> list:
    """All solution regions of one source file, checked for well-formedness.

    Raises AssignError (with file:line) for a missing END, a nested BEGIN, a
    missing ``[assignment:part]`` tag, an empty region, or code indented less
    than its marker (the stub would not be valid Python).
    """
    if "### BEGIN SOLUTION" not in text and "### END SOLUTION" not in text:
        return []  # most files: no need to tokenize and parse them
    lines = text.splitlines()
    spans = _enclosing_functions(text)
    comments = _comment_lines(text)

    def marker(regex, k):
        return (comments is None or k in comments) and regex.match(lines[k])

    regions, i = [], 0
    while i < len(lines):
        if marker(END_RE, i):
            raise AssignError(f"{path}:{i + 1}: '### END SOLUTION' without a BEGIN")
        m = marker(BEGIN_RE, i)
        if not m:
            i += 1
            continue
        where = f"{path}:{i + 1}"
        tag = TAG_RE.match(m.group("rest"))
        if tag is None:
            raise AssignError(f"{where}: a solution region needs a tag, e.g. "
                              "'### BEGIN SOLUTION [lstm:cell_forward] (hint: ...)'")
        hint, code_start = _read_hint(tag.group("rest"), lines, i + 1, where)
        end = code_start
        while end < len(lines) and not marker(END_RE, end):
            if marker(BEGIN_RE, end):
                raise AssignError(f"{path}:{end + 1}: solution regions cannot be nested (the one at {where} "
                                  "is still open)")
            end += 1
        if end == len(lines):
            raise AssignError(f"{where}: '### BEGIN SOLUTION' without a matching '### END SOLUTION'")
        indent = m.group("indent")
        code = [ln for ln in lines[code_start:end] if ln.strip()]
        if not code:
            raise AssignError(f"{where}: the solution region is empty")
        shallowest = min(len(ln) - len(ln.lstrip()) for ln in code)
        if shallowest != len(indent):
            raise AssignError(f"{where}: the marker must be indented like the region's code "
                              f"({shallowest} spaces), so the stub lands in the right block")
        inside = [name for first, last, name in spans if first <= i <= last]
        regions.append(Region(path, i, code_start, end, indent, tag.group("assignment"), tag.group("part"),
                              hint, inside[-1] if inside else None))
        i = end + 1
    return regions


def _literal(s: str) -> str:
    """A Python string literal for s (JSON escapes are valid Python escapes)."""
    return json.dumps(s, ensure_ascii=False)


def stub_lines(region: Region) -> list:
    """The lines that replace a region in the student version, indented like its marker."""
    who = region.function or region.path
    message = f"{who}: your code here [{region.key}]."
    if region.hint:
        message += f" Hint: {region.hint}"
    chunks = textwrap.wrap(message, STUB_WIDTH, break_long_words=False, break_on_hyphens=False,
                           drop_whitespace=False)
    ind = region.indent
    # Unfinished is a NotImplementedError that Jupyter shows as one line naming the part (not a traceback)
    out = [f"{ind}# YOUR CODE HERE [{region.key}]", f"{ind}from minilstm.assignments import Unfinished",
           f"{ind}raise Unfinished("]
    out += [f"{ind}    {_literal(chunk)}" for chunk in chunks]
    out[-1] += ")"
    return out


def _render_duplicates(text: str, path: str, stubbed: set, drop: bool = False) -> str:
    """Replace ``### BEGIN DUPLICATE [key]`` blocks by a stub when ``key`` is handed out ("*": any key),
    or by nothing (``drop``); drop the markers. A block of comments only (a lesson's markdown, pseudocode
    in comments) becomes a one-line comment saying what was left out. ``(instead: line)`` after the tag,
    continued on ``###`` lines if long, replaces the block by that one line (e.g. a call of the student's
    function, or ``# text`` in markdown) rather than a stub."""
    if "### BEGIN DUPLICATE" not in text:
        return text
    lines, out, i = text.splitlines(), [], 0
    spans = _enclosing_functions(text)
    while i < len(lines):
        m = DUP_BEGIN_RE.match(lines[i])
        if not m:
            if DUP_END_RE.match(lines[i]):
                raise AssignError(f"{path}:{i + 1}: '### END DUPLICATE' without a BEGIN")
            out.append(lines[i])
            i += 1
            continue
        instead, body = _read_hint(m.group("rest"), lines, i + 1, f"{path}:{i + 1}", keyword="instead")
        end = next((k for k in range(body, len(lines)) if DUP_END_RE.match(lines[k])), None)
        if end is None:
            raise AssignError(f"{path}:{i + 1}: '### BEGIN DUPLICATE' without '### END DUPLICATE'")
        if any(DUP_BEGIN_RE.match(ln) for ln in lines[body:end]):
            raise AssignError(f"{path}:{i + 1}: DUPLICATE blocks cannot be nested")
        key, ind = m.group("key"), m.group("indent")
        kept = [ln for ln in lines[body:end] if ln.strip()]
        if drop:
            pass
        elif instead and (key in stubbed or "*" in stubbed):
            out.append(ind + instead)
        elif (key in stubbed or "*" in stubbed) and kept and all(ln.lstrip().startswith("#") for ln in kept):
            out.append(f"{ind}# (Left out of this handout: it would give away [{key}].)")
        elif key in stubbed or "*" in stubbed:
            inside = [name for first, last, name in spans if first <= i <= last]
            who = inside[-1] if inside else path
            out += [f"{ind}raise NotImplementedError(",
                    f"{ind}    {_literal(f'{who} is not part of this handout: it would give away [{key}]')})"]
        else:
            out += lines[body:end]
        i = end + 1
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def _duplicate_stub(rel: str, keys: set) -> str:
    """A module standing in for a file that would give away the parts ``keys``."""
    parts = ", ".join(sorted(keys))
    return (f'"""Not part of this handout: the full {rel} repeats the solution of {parts}.\n\n'
            'It comes back with the next handout (or the course\'s reference package). Everything in the\n'
            'assignment runs on NumPy without it.\n"""\n\n\n'
            'def __getattr__(name):\n'
            f'    raise NotImplementedError(f"{rel}: {{name}} is not part of this handout (it would give away '
            f'{parts}); run on the CPU (NumPy)")\n\n\n'
            'def main(argv=None):\n'
            f'    print("{rel} is not part of this handout (it would give away {parts})")\n'
            '    return 2\n')


def render(text: str, path: str, stub) -> str:
    """The student's text of one file: regions for which ``stub(region)`` is true become stubs,
    the others keep their code; every marker line goes."""
    lines = text.splitlines()
    out, pos = [], 0
    for region in find_regions(text, path):
        out += lines[pos:region.begin]
        out += stub_lines(region) if stub(region) else lines[region.code_start:region.end]
        pos = region.end + 1
    out += lines[pos:]
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


# ---------------------------------------------------------------------------
# Lessons: percent-format scripts -> notebooks (jupytext + nbformat, in minilstm/notebooks.py)
# ---------------------------------------------------------------------------

from . import notebooks as _notebooks  # noqa: E402

is_percent_script = _notebooks.is_percent_script


def percent_to_notebook(text: str, name: str = "cell"):
    """The notebook of a percent-format lesson (see minilstm/notebooks.py); cell ids from ``name``."""
    try:
        return _notebooks.percent_to_notebook(text, name)
    except _notebooks.MissingNotebookTools as exc:
        raise AssignError(str(exc)) from None


def notebook_bytes(nb) -> bytes:
    """Deterministic serialisation (sorted keys, one-space indent, as Jupyter writes)."""
    return _notebooks.notebook_bytes(nb)


# ---------------------------------------------------------------------------
# The student version
# ---------------------------------------------------------------------------

def _walk(root: Path, skip_dirs=()):
    """Files under root, sorted, without caches, compiled files or skipped folders."""
    skip_dirs = {Path(d).resolve() for d in skip_dirs}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIP_NAMES for part in rel.parts) or path.suffix in SKIP_SUFFIXES:
            continue
        if any(d == path.resolve() or d in path.resolve().parents for d in skip_dirs):
            continue
        if path.is_file():
            yield path


def _module_path(func_spec: str) -> str:
    """``minilstm.ops.lstm:cell_forward`` -> ``minilstm/ops/lstm.py``."""
    return func_spec.split(":", 1)[0].replace(".", "/") + ".py"


def collect_regions(source_root: Path = SOURCE_ROOT) -> list:
    """Every solution region in the package and the lessons (for checks and for the guide)."""
    regions = []
    for base in ("minilstm", "lessons"):
        root = source_root / base
        if not root.is_dir():
            continue
        for path in _walk(root, skip_dirs=[root / "assignments"] if base == "minilstm" else ()):
            if path.suffix == ".py":
                rel = path.relative_to(source_root).as_posix()
                regions += find_regions(path.read_text(encoding="utf-8"), rel)
    return regions


def check_regions(regions: list, assignments) -> None:
    """Every tag names a known part; every package region sits in a function its part lists;
    every part handed out has at least one region (or the handout would not be a task)."""
    known = {part_key(a, p): p for a in ASSIGNMENTS.values() for p in a.parts}
    for r in regions:
        if r.key not in known:
            raise AssignError(f"{r.where}: unknown part [{r.key}]; known parts: {', '.join(known)}")
        if r.path.startswith("minilstm/"):
            spec = r.path[:-3].replace("/", ".") + ":" + (r.function or "")
            if spec not in known[r.key].functions:
                raise AssignError(
                    f"{r.where}: the region [{r.key}] is in {r.function or 'module level'}, which part "
                    f"{r.key} does not list in minilstm/assignments/__init__.py (add {spec!r} to its functions; "
                    "the grader swaps whole functions to test parts in isolation)")
    have = {r.key for r in regions}
    for a in assignments:
        for p in a.parts:
            if part_key(a, p) not in have:
                raise AssignError(f"part {part_key(a, p)} has no solution region in the source: nothing to hand out")


def _check_out_dir(out: Path, force: bool, source_root: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise AssignError(f"{out} exists and is not a folder")
    if not any(out.iterdir()):
        return
    if not force:
        raise AssignError(f"{out} is not empty; choose a new folder, or pass --force to replace an earlier "
                          "handout written there")
    src = source_root.resolve()
    if out == src or out in src.parents or (out / ".git").exists():
        raise AssignError(f"refusing to empty {out}: it holds the reference source or a git repository")
    if not (out / MARKER).is_file():
        raise AssignError(f"refusing to empty {out}: it is not a handout written by minilstm assign (no {MARKER} "
                          "in it); --force only replaces an earlier handout. Choose a new folder")


def _readme(assignments: list, solved: set) -> str:
    """ASSIGNMENT.md: what to do, where, and for how many points."""
    out = ["# " + " + ".join(a.title for a in assignments), "",
           "Generated by `minilstm assign`; do not edit by hand (regenerate instead).", ""]
    for a in assignments:
        if len(assignments) > 1:
            out += [f"## {a.title} (`{a.name}`, {a.max_points} points)", ""]
        else:
            out += [f"**{a.max_points} points.** Assignment name: `{a.name}`.", ""]
        out += [a.summary, "", "| part | points | what | where |", "|---|---|---|---|"]
        for p in a.parts:
            where = ", ".join(f"`{f.split(':', 1)[1]}` ({_module_path(f)})" for f in p.functions)
            done = " (given)" if part_key(a, p) in solved else ""
            out.append(f"| `{p.name}`{done} | {p.points} | {p.title} | {where} |")
        out.append("")
    out += [
        "## How to work", "",
        "Every place to fill in raises `NotImplementedError` with a hint; the docstrings say what each "
        "function takes and returns, with shapes. Search for `YOUR CODE HERE`:", "",
        "```bash", "grep -rn 'YOUR CODE HERE' minilstm", "```", "",
        "Install the package in editable mode and run the visible tests:", "",
        "```bash",
        "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && pip install pytest",
        "python -m pytest tests -q", "```", "",
        "`minilstm gradcheck` compares your backward passes with finite differences; the lessons in "
        "`lessons/` are notebooks (`pip install jupyter`, then `jupyter notebook lessons`).", "",
        "## How it is graded", "",
        "The grader calls your functions on inputs it draws fresh for every grading run and compares what they "
        "return with the course's reference; each part is made of groups of checks, and each group earns its "
        "points when all of its checks pass. Each part is graded on its own, in its own process: the functions "
        "of the parts it builds on (e.g. `cell_forward` and `cell_backward` for the step) are the reference's "
        "there, so a bug in one part costs that part's points only, while your other functions stay yours. A "
        "group that checks the inputs are left unchanged or that an error is raised counts once the part "
        "computes a correct value. A part that crashes, loops forever or runs out of memory scores 0 without "
        "harming the others. The "
        "visible tests in `tests/` check the same things on fixed inputs (on your machine they use your code "
        "throughout, so a part may fail there because an earlier one is not done yet). The grade report names "
        "the function and, for a gradient, which one is wrong and by how much.", "",
        "Working in a virtual environment inside this folder (`.venv`, as above) is fine: only `minilstm/` is "
        "graded.", "",
    ]
    return "\n".join(out)


def build(assignments=None, solved=(), source_root: Path | str = SOURCE_ROOT) -> dict:
    """The student version as {relative path: bytes}, without writing anything.

    assignments: names to hand out (None: all of them, the whole course);
    solved: part keys (``"lstm:step"``) or bare part names to leave filled in.
    """
    source_root = Path(source_root)
    chosen = select(assignments)
    names = {a.name for a in chosen}
    solved = {s if ":" in s else _expand_part(s, chosen) for s in solved}
    for key in solved:
        a, _, p = key.partition(":")
        if a not in ASSIGNMENTS:
            raise AssignError(f"--solved {key}: unknown assignment {a!r}")
        try:
            ASSIGNMENTS[a].part(p)
        except ValueError as exc:
            raise AssignError(f"--solved {key}: {exc}") from None

    _check_sources(source_root)
    regions = collect_regions(source_root)
    check_regions(regions, chosen)

    def stub(region):
        return region.assignment in names and region.key not in solved

    stubbed_keys = {r.key for r in regions if stub(r)}
    files = {}
    package = source_root / "minilstm"
    for path in _walk(package):
        rel = path.relative_to(source_root).as_posix()
        if rel in DUPLICATE_FILES and DUPLICATE_FILES[rel] & stubbed_keys:
            files[rel] = _duplicate_stub(rel, DUPLICATE_FILES[rel] & stubbed_keys).encode("utf-8")
        elif path.suffix == ".py":
            text = _render_duplicates(render(path.read_text(encoding="utf-8"), rel, stub), rel, stubbed_keys)
            compile(text, rel, "exec")  # a stub must never break the syntax
            files[rel] = text.encode("utf-8")
        else:
            files[rel] = path.read_bytes()

    lessons = source_root / "lessons"
    if lessons.is_dir():
        for path in _walk(lessons, skip_dirs=[lessons / LESSON_OUTPUTS]):
            rel = path.relative_to(source_root).as_posix()
            if path.suffix == ".py":
                text = _render_duplicates(render(path.read_text(encoding="utf-8"), rel, stub), rel, stubbed_keys)
                compile(text, rel, "exec")
                if is_percent_script(text):
                    files[rel[:-3] + ".ipynb"] = notebook_bytes(percent_to_notebook(text, path.stem))
                else:
                    files[rel] = text.encode("utf-8")
            else:
                files[rel] = path.read_bytes()

    for name in ROOT_FILES:
        if (source_root / name).is_file():
            files[name] = (source_root / name).read_bytes()

    visible = package / "assignments" / "visible"
    for name in ("conftest.py", "assignment_helpers.py"):
        files[f"tests/{name}"] = (visible / name).read_bytes()
    for a in chosen:
        files[f"tests/test_{a.name}.py"] = (visible / f"test_{a.name}.py").read_bytes()

    if not any(rel.endswith(".ipynb") for rel in files):
        raise AssignError(f"no lesson notebooks could be made from {source_root / 'lessons'}: a handout needs them")
    stubbed = sorted({r.key for r in regions if stub(r)})
    files["ASSIGNMENT.md"] = _readme(chosen, solved).encode("utf-8")
    meta = {
        "assignments": [a.name for a in chosen],
        "parts": {part_key(a, p): p.points for a in chosen for p in a.parts},
        "solved": sorted(solved),
        "stubbed": stubbed,
        "generated_by": "minilstm assign (do not edit: regenerate instead)",
    }
    files["assignment.json"] = (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8")
    files[MARKER] = b"Written by minilstm assign: `minilstm assign --force` may replace this folder.\n"
    check_leaks(files, [r for r in regions if stub(r)], source_root)
    return files


def _check_sources(source_root: Path) -> None:
    """The course sources a handout is made of must be there (a wheel install has only the package)."""
    missing = [name for name in ("lessons", "setup.cfg", "README.md") if not (source_root / name).exists()]
    if missing:
        raise AssignError(
            f"the course sources are not next to the package in {source_root} (missing: {', '.join(missing)}): "
            "minilstm seems installed from a wheel, which holds only the package. Run assign from a checkout of "
            "the course (pip install -e . there), or pass --source CHECKOUT")


# ---------------------------------------------------------------------------
# Leak check: no handed-out solution may survive anywhere in the handout
# ---------------------------------------------------------------------------
#
# Two comparisons, both with the code of every region handed out (its comments left out):
#
# * code, line by line (normalise_python, normalise_line): what a region's code looks like when it is pasted
#   into another file, a lesson's code cell or a kernel string. Catches copies, not paraphrases.
# * text, as canonical tokens (canonical_tokens): markdown cells, comments, string literals (docstrings,
#   kernel sources), every file that is not Python, and the visible tests with their helpers, code included
#   (tests/: they are read, and must not compute the expected values the way the solution does). This is
#   where a solution is restated rather than copied: as pseudocode, in LaTeX-ish notation, or in C. Runs of
#   LEAK_SHINGLE canonical tokens are compared; runs that are public (in a hint of a handed-out part, twice or
#   more in the package's given code and text, or anywhere in the given code of the package and lessons) do
#   not count, so the paper's equations, which the docstrings and hints state, may be mentioned freely.

_SKIP_TOKENS = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                tokenize.ENCODING, tokenize.ENDMARKER}
_STRING_TOKENS = {tokenize.STRING} | ({tokenize.FSTRING_MIDDLE} if hasattr(tokenize, "FSTRING_MIDDLE") else set())

LEAK_SHINGLE = 6        # canonical tokens per compared run
LEAK_TEXT_TOKENS = 10   # a piece of text leaks a region when its shared runs cover this many of the region's tokens
LEAK_TEXT_RUN = 12      # ... and either one unbroken stretch of this many (a long line, or a few short ones)
LEAK_TEXT_SHARE = 0.25  # ... or this share of the region's tokens that are not public
LEAK_WINDOW = 60        # lines: longer texts are compared in windows of this many lines, half overlapping


@functools.lru_cache(maxsize=512)
def _python_tokens(text: str):
    """Python's tokens of text (a tuple), or None if it does not tokenize; cached, since every handout
    compares the same files."""
    try:
        return tuple(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None


def normalise_python(code: str) -> list:
    """One string per line of code: its tokens joined, comments and whitespace gone."""
    tokens = _python_tokens(code)
    if tokens is None:
        return [ln for ln in (normalise_line(x) for x in code.splitlines()) if ln]
    by_line = {}
    for t in tokens:
        if t.type not in _SKIP_TOKENS:
            by_line.setdefault(t.start[0], []).append(t.string)
    return ["".join(v) for _, v in sorted(by_line.items())]


def normalise_line(line: str) -> str:
    """Any language, one line: no comment (#, //), no whitespace, no trailing ';' (kernel strings, notebooks)."""
    line = re.split(r"\s#|^#|//", line, maxsplit=1)[0]
    return re.sub(r"\s+", "", line).rstrip(";")


# Canonical tokens: one notation for code, pseudocode, LaTeX-ish text and CUDA C.
_NAMESPACES = re.compile(r"\b(?:np|xp|cp|cupy|numpy|math|torch|m|minilstm|cache|self)\s*\.\s*(?=[A-Za-z_])")
_TYPE_CAST = re.compile(r"\bT\(\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\)")  # CUDA's T(0.5)
_ELEMENT = re.compile(r"\[\s*[A-Za-z_]\w*\s*\]")  # x[k]: one element, as a C kernel reads and writes them
_CANON_SUBS = (
    (re.compile(r"_\{\s*[tT]\s*(?:[-+]\s*\d+\s*)?\}"), ""),                             # c_{t-1} -> c
    (re.compile(r"_\{\s*(\w+)\s*\}"), r"_\1"),                                          # W_{x} -> W_x
    (re.compile(r"\^\{?T\}?(?![A-Za-z0-9_])|\u1d40|\.T\b"), " T "),                 # Wx^T, Wx.T: transposes
    (re.compile(r"\\cdot|\\odot|\\circ|\\times|[\u2299\u2218\u00b7\u00d7]"), " * "),  # elementwise products
    (re.compile(r"\*\*|\^"), " ^ "),                                                 # tc**2, tc^2: powers
    (re.compile(r"\\sigma\b|\u03c3"), " sigm "),
)
_CANON_TOKEN = re.compile(r"[A-Za-z_]\w*|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+*/%^<>=!&|]=|[-+*/%^<>=~]")
_DECORATIONS = {"prev", "next", "t", "tm1", "in", "mine", "hand", "loop"}  # time steps and "my version of"
_SYNONYMS = {"sigmoid": "sigm", "sigma": "sigm", "expit": "sigm", "tanhf": "tanh", "expf": "exp", "logf": "log",
             "sqrtf": "sqrt"}  # C's float versions are the same functions
_OUT_CALL = re.compile(r"\b(multiply|add|subtract|divide|true_divide|matmul|dot|tanh|exp|log|sqrt|negative)\s*\(")
_OUT_OPS = {"multiply": "*", "add": "+", "subtract": "-", "divide": "/", "true_divide": "/", "matmul": "@",
            "dot": "@"}


def _split_args(text: str) -> list:
    depth, start, out = 0, 0, []
    for k, ch in enumerate(text):
        depth += (ch in "([{") - (ch in ")]}")
        if ch == "," and depth == 0:
            out.append(text[start:k].strip())
            start = k + 1
    return out + [text[start:].strip()]


def _rewrite_out_calls(text: str) -> str:
    """``multiply(a, b, out=c)`` -> ``c = (a) * (b)``; ``tanh(a, out=c)`` -> ``c = tanh(a)`` (NumPy's in-place
    calls, as the reference writes the cell, in the notation pseudocode and kernels use)."""
    out, pos = [], 0
    while (m := _OUT_CALL.search(text, pos)) is not None:
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += (text[j] in "([{") - (text[j] in ")]}")
            j += 1
        args = _split_args(text[m.end():j - 1]) if depth == 0 else []
        dest = next((a for a in args if re.match(r"out\s*=", a)), None)
        if dest is None:
            out.append(text[pos:m.end()])
            pos = m.end()
            continue
        rest = [_rewrite_out_calls(a) for a in args if a is not dest]
        fn = m.group(1)
        expr = f" {_OUT_OPS[fn]} ".join(f"({a})" for a in rest) if fn in _OUT_OPS else f"{fn}({', '.join(rest)})"
        out.append(f"{text[pos:m.start()]}{dest.split('=', 1)[1].strip()} = {expr}")
        pos = j
    return "".join(out) + text[pos:]


def _canonical_name(name: str) -> str:
    if name in _SYNONYMS:
        return _SYNONYMS[name]
    kept = [p for p in name.split("_") if p not in _DECORATIONS]
    if len(kept) == 2 and len(kept[0]) == 1 and kept[0].isupper() and kept[1]:
        return "".join(kept)  # W_x is Wx
    return "_".join(kept) if any(kept) else name


def canonical_tokens(text: str) -> list:
    """The tokens of code, pseudocode or prose in one notation, for comparing restatements.

    Punctuation, quotes, comment markers and whitespace go; module and object prefixes go (``np.``,
    ``xp.``, ``cache.``, ``self.``); ``@`` and juxtaposition are the same (both are dropped);
    ``x.T``, ``x^T`` and ``xᵀ`` are ``x T``; ``**`` is ``^``; ``1.0`` is ``1``; CUDA's ``T(1)`` is ``1``;
    ``multiply(a, b, out=c)`` is ``c = a * b``; ``x[k]`` (one element, as in a C kernel) is ``x``, and
    ``tanhf`` is ``tanh``; names lose their time-step and ownership decorations
    (``c_{t-1}``, ``c_prev``, ``prev_c``, ``next_c``, ``c_t`` and ``c_mine`` are all ``c``), and sigmoid,
    sigm and σ are one word. So ``c = f * c_prev + i * g``, ``c_t = f_t * c_{t-1} + i_t * g_t`` and
    ``next_c = f * prev_c + i * g`` are the same tokens.
    """
    return list(_canonical(text))


@functools.lru_cache(maxsize=2048)
def _canonical(text: str) -> tuple:
    text = _TYPE_CAST.sub(r" \1 ", _rewrite_out_calls(_NAMESPACES.sub("", text)))
    text = _ELEMENT.sub(" ", text)
    for regex, replacement in _CANON_SUBS:
        text = regex.sub(replacement, text)
    out = []
    for tok in _CANON_TOKEN.findall(text):
        if tok[0].isalpha() or tok[0] == "_":
            tok = _canonical_name(tok)
        elif tok[0].isdigit() or tok[0] == ".":
            try:
                value = float(tok)
            except ValueError:
                pass
            else:
                tok = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
        out.append(tok)
    return tuple(out)


def _shingles(tokens) -> list:
    return [tuple(tokens[k:k + LEAK_SHINGLE]) for k in range(len(tokens) - LEAK_SHINGLE + 1)]


@functools.lru_cache(maxsize=2048)
def _shingle_set(text: str) -> frozenset:
    return frozenset(_shingles(_canonical(text)))


def _python_split(text: str):
    """(the code with comments and strings blanked, [(line, comment or string)]) of Python source; None if it
    does not tokenize."""
    tokens = _python_tokens(text)
    if tokens is None:
        return None
    starts = [0]
    for line in io.StringIO(text):  # the lines tokenize counts (splitlines would also split at \f)
        starts.append(starts[-1] + len(line))
    code, pos, prose = [], 0, []
    for t in tokens:
        if t.type == tokenize.COMMENT:
            prose.append((t.start[0], t.string.lstrip("#")))
        elif t.type in _STRING_TOKENS:
            prose.append((t.start[0], re.sub(r"^[rRbBuUfF]*", "", t.string)))
        else:
            continue
        begin, end = starts[t.start[0] - 1] + t.start[1], starts[t.end[0] - 1] + t.end[1]
        code += [text[pos:begin], " "]
        pos = end
    return "".join(code) + text[pos:], prose


def _without_comments(code: str) -> str:
    """Python source with its comments blanked (strings kept: a kernel's source is code too)."""
    tokens = _python_tokens(code)
    if tokens is None:
        return "\n".join(re.split(r"(?:^|\s)#", ln, maxsplit=1)[0] for ln in code.splitlines())
    lines = list(io.StringIO(code))
    for t in reversed([t for t in tokens if t.type == tokenize.COMMENT]):
        row, col = t.start
        lines[row - 1] = lines[row - 1][:col] + lines[row - 1][t.end[1]:]
    return "".join(lines)


def _decoded(rel: str, data: bytes):
    """(text, notebook cells) of one handout file: cells None unless it is a notebook that parses;
    (None, None) for a file that is not UTF-8 (nothing to search)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, None
    if rel.endswith(".ipynb"):
        try:
            return text, [(c.get("cell_type", "cell"), "".join(c.get("source", "")))
                          for c in json.loads(text).get("cells", [])]
        except (ValueError, AttributeError):
            pass
    return text, None


def _texts(rel: str, data: bytes) -> list:
    """The text(s) of one handout file to search, notebooks cell by cell."""
    text, cells = _decoded(rel, data)
    if text is None:
        return []
    return [source for _, source in cells] if cells is not None else [text]


def _windows(fragments: list, last_line: int) -> list:
    """[(place, text)] of [(line, text)] fragments, in windows of LEAK_WINDOW lines overlapping by half."""
    if last_line <= LEAK_WINDOW:
        return [("", "\n".join(t for _, t in fragments))] if fragments else []
    out, step = [], LEAK_WINDOW // 2
    for start in range(1, last_line + 1, step):
        inside = [t for line, t in fragments if start <= line < start + LEAK_WINDOW]
        if inside:
            out.append((f"lines {start}-{min(start + LEAK_WINDOW - 1, last_line)}", "\n".join(inside)))
        if start + LEAK_WINDOW > last_line:
            break
    return out


def _text_pieces(rel: str, data: bytes) -> list:
    """[(place, text)] of one handout file for the text comparison: a notebook's markdown cells whole and its
    code cells' comments and strings; the comments and strings of the package's and the lessons' Python
    (their code is compared line by line); the visible tests (tests/, minilstm/assignments/visible/) and
    every other text file whole."""
    text, cells = _decoded(rel, data)
    if text is None:
        return []
    if cells is not None:
        out = []
        for k, (kind, source) in enumerate(cells):
            split = _python_split(source) if kind == "code" else None
            body = "\n".join(t for _, t in split[1]) if split is not None else source
            out.append((f"cell {k + 1}, {kind}", body))
        return out
    if rel.endswith(".ipynb"):  # a notebook that does not parse: searched whole
        return [("", text)]
    lines = text.count("\n") + 1
    code_given = rel.endswith(".py") and (rel.startswith("lessons/") or rel.startswith("minilstm/")) \
        and not rel.startswith("minilstm/assignments/visible/")
    split = _python_split(text) if code_given else None
    if split is not None:
        fragments = [(line, t) for line, t in split[1]]
    else:
        fragments = list(enumerate(text.splitlines(), 1))
    return _windows(fragments, lines)


_GIVEN_CACHE = {}


def _given(source_root: Path) -> dict:
    """What every handout gives away, cached per state of the files: ``lines``, the normalised lines of the
    package's code outside solution regions, duplicate blocks and duplicate files (with repeats, for the
    line comparison); ``text``, how often each canonical shingle occurs in that code and its comments and
    strings; ``code``, the shingles of the given code of the package and the lessons (no comments, no
    strings: a kernel's source in a string is not given code)."""
    package, lessons = source_root / "minilstm", source_root / "lessons"
    paths = list(_walk(package, skip_dirs=[package / "assignments" / "visible"]))
    if lessons.is_dir():
        paths += list(_walk(lessons, skip_dirs=[lessons / LESSON_OUTPUTS]))
    key = (str(source_root.resolve()), tuple((str(p), p.stat().st_mtime_ns) for p in paths))
    if key not in _GIVEN_CACHE:
        _GIVEN_CACHE.clear()
        _GIVEN_CACHE[key] = _read_given(source_root, paths)
    return _GIVEN_CACHE[key]


def _read_given(source_root: Path, paths: list) -> dict:
    from collections import Counter

    lines, text_counts, code = [], Counter(), set()
    for path in paths:
        rel = path.relative_to(source_root).as_posix()
        if path.suffix != ".py" or rel in DUPLICATE_FILES:
            continue
        text = render(path.read_text(encoding="utf-8"), rel, lambda r: True)
        text = _render_duplicates(text, rel, {"*"}, drop=True)
        split = _python_split(text)
        if split is not None:
            code.update(_shingle_set(split[0]))
        if rel.startswith("minilstm/"):
            lines += set(normalise_python(text)) | {normalise_line(x) for x in text.splitlines()}
            text_counts.update(_shingles(_canonical(text)))
    return {"lines": lines, "text": text_counts, "code": code}


def _given_lines(source_root: Path) -> list:
    """Normalised lines of the code every handout gives away (the package outside solution regions,
    duplicate blocks, duplicate files and the visible tests), with repeats."""
    return _given(source_root)["lines"]


def _region_code(region: Region, source_root: Path) -> str:
    src = (source_root / region.path).read_text(encoding="utf-8").splitlines()
    return textwrap.dedent("\n".join(src[region.code_start:region.end]))


_ADVICE = ("Put that code or text between '### BEGIN DUPLICATE [{key}]' and '### END DUPLICATE' in the source (a "
           "block of comments or markdown becomes a one-line note, or what '(instead: ...)' says), rewrite it so it "
           "teaches without the solution's steps, or list the file in DUPLICATE_FILES (minilstm/assign.py)")


def check_leaks(files: dict, stubbed: list, source_root: Path) -> None:
    """Refuse a handout in which the code of a handed-out region appears in any file it writes, copied or
    restated.

    Code, line by line: lines are compared normalised (tokens without comments or whitespace; kernel
    strings and notebooks line by line without ';' and comments). A line counts when it is at least
    LEAK_MIN_CHARS long, not in a hint and not boilerplate (found twice or more in the package's code
    outside the regions); a file leaks a region when two of its lines, or one line of 40 characters or
    more, appear in it.

    Text, as canonical tokens (``canonical_tokens``): markdown cells, comments, string literals, the
    visible tests and helpers, other text files; long ones in windows of LEAK_WINDOW lines. A run of
    LEAK_SHINGLE tokens of a region found in a piece of text counts unless it is public: in a hint of a
    handed-out region, twice or more in the package's given code and text, or in the given code of the
    package and the lessons. A piece leaks a region when the runs it shares cover LEAK_TEXT_TOKENS or more
    of the region's tokens, and either LEAK_TEXT_RUN of them in a row or LEAK_TEXT_SHARE of the region's
    tokens that are not public: several consecutive solution lines, or one long distinctive one.
    """
    leaks = find_leaks(files, stubbed, source_root)
    if leaks:
        keys = sorted({key for key, _ in leaks})
        raise AssignError("\n".join(message for _, message in leaks[:12])
                          + (f"\n(and {len(leaks) - 12} more)" if len(leaks) > 12 else "")
                          + "\n" + _ADVICE.format(key=keys[0] if len(keys) == 1 else "assignment:part"))


def find_leaks(files: dict, stubbed: list, source_root: Path) -> list:
    """[(part key, message)] of every leak check_leaks finds: per file (and notebook cell or window), the
    region it restates most."""
    given = _given(source_root)
    return _copied_lines(files, stubbed, source_root, given) + _restated_text(files, stubbed, source_root, given)


def _copied_lines(files: dict, stubbed: list, source_root: Path, given: dict) -> list:
    lines_given = "\n".join(given["lines"])
    hints = "\n".join(normalise_line(r.hint) for r in stubbed)

    def boilerplate(line):  # in given code twice or more (a line found once there may be a copied solution)
        return lines_given.count(line) >= 2
    needles = {}
    for r in stubbed:
        for line in normalise_python(_region_code(r, source_root)):
            if len(line) >= LEAK_MIN_CHARS and line not in hints and not boilerplate(line):
                needles.setdefault(r, set()).add(line)
    leaks = []
    for rel in sorted(files):
        for text in _texts(rel, files[rel]):
            hay = {normalise_line(x) for x in text.splitlines()}
            blob = "\n".join(hay)
            for r, lines in needles.items():
                found = sorted(n for n in lines if n in hay or (len(n) >= 24 and n in blob))
                if len(found) >= 2 or any(len(n) >= 40 for n in found):
                    leaks.append((r.key, f"leak: {rel} contains the solution of [{r.key}] ({r.where}): "
                                         f"{', '.join(map(repr, found))}."))
                    break
    return leaks


def _restated_text(files: dict, stubbed: list, source_root: Path, given: dict) -> list:
    public = set(given["code"]) | {s for s, n in given["text"].items() if n >= 2}
    for r in stubbed:
        public.update(_shingles(canonical_tokens(r.hint)))
    needles, index = [], {}  # index: shingle -> [(needle, position)]
    for r in stubbed:
        tokens = canonical_tokens(_without_comments(_region_code(r, source_root)))
        shingles = _shingles(tokens)
        in_public = [False] * len(tokens)
        for k, s in enumerate(shingles):
            if s in public:
                in_public[k:k + LEAK_SHINGLE] = [True] * LEAK_SHINGLE
            else:
                index.setdefault(s, []).append((len(needles), k))
        needles.append((r, tokens, len(tokens) - sum(in_public)))
    leaks = []
    for rel in sorted(files):
        for place, text in _text_pieces(rel, files[rel]):
            covered = {}
            for s in _shingle_set(text) & index.keys():
                for n, k in index[s]:
                    covered.setdefault(n, set()).update(range(k, k + LEAK_SHINGLE))
            found = []
            for n, positions in covered.items():
                run, start = _longest_run(positions)
                if len(positions) >= LEAK_TEXT_TOKENS and (
                        run >= LEAK_TEXT_RUN or len(positions) >= LEAK_TEXT_SHARE * needles[n][2]):
                    found.append((len(positions), -n, run, start))
            if not found:
                continue
            size, n, run, start = max(found)
            r, tokens, secret = needles[-n]
            excerpt = " ".join(tokens[start:start + run])
            excerpt = excerpt if len(excerpt) <= 100 else excerpt[:97] + "..."
            where = f"{rel} ({place})" if place else rel
            leaks.append((r.key, f"leak: {where} contains the solution of [{r.key}] ({r.where}), restated: "
                                 f"{excerpt!r} and more, {size} of its {secret} tokens that no hint or given code "
                                 "has (compared as canonical tokens, see check_leaks)."))
    return leaks


def _longest_run(positions: set):
    """(length, start) of the longest run of consecutive integers in positions."""
    best, best_start = 0, 0
    for p in sorted(positions):
        if p - 1 not in positions:
            length = 1
            while p + length in positions:
                length += 1
            if length > best:
                best, best_start = length, p
    return best, best_start


def _expand_part(name: str, chosen: list) -> str:
    hits = [part_key(a, p) for a in chosen for p in a.parts if p.name == name]
    if len(hits) != 1:
        raise AssignError(f"--solved {name}: name a part as assignment:part (parts: "
                          f"{', '.join(part_key(a, p) for a in chosen for p in a.parts)})")
    return hits[0]


def write_student_version(out_dir, assignments=None, force=False, solved=(),
                          source_root: Path | str = SOURCE_ROOT) -> list:
    """Build the student version and write it to ``out_dir``. Returns the relative paths written.

    Refuses a non-empty ``out_dir`` unless ``force`` (which empties it first, so no stale
    file of an earlier handout survives).
    """
    files = build(assignments, solved, source_root)  # everything is checked before anything is written
    out = Path(out_dir).resolve()
    _check_out_dir(out, force, Path(source_root))
    if out.exists():
        for child in sorted(out.iterdir()):
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    for rel in sorted(files):
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[rel])
    write_plan(out, json.loads(files["assignment.json"]))
    return sorted(files)


def write_plan(out: Path, meta: dict) -> Path:
    """``OUT.plan.json`` beside the handout ``OUT`` (``plan_path``): the instructor's record of what was handed
    out (assignments, parts and points, parts given solved), which ``minilstm grade --plan`` grades by. The
    handout's own assignment.json says the same for the student, but it is the student's file: the grader
    only compares it with the plan."""
    path = plan_path(out)
    record = {**{k: meta[k] for k in ("assignments", "parts", "solved", "stubbed")}, "handout": str(out),
              "generated_by": "minilstm assign: keep it with your grading files, not in the handout; "
                              "grade with minilstm grade STUDENT_DIR --plan " + path.name}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

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
    except AssignError as exc:
        print(f"minilstm assign: error: {exc}", file=sys.stderr)
        return 1
    chosen = select(args.assignment)
    notebooks = sum(p.endswith(".ipynb") for p in written)
    print(f"wrote {len(written)} files to {args.out_dir}: assignment "
          f"{', '.join(a.name for a in chosen)} ({sum(a.max_points for a in chosen)} points), "
          f"{notebooks} lesson notebooks, visible tests in tests/")
    print(f"grading plan: {plan_path(args.out_dir)} (yours, not the students': keep it with your grading files)")
    print(f"grade with: minilstm grade STUDENT_DIR_OR_CLASS_DIR --plan {plan_path(args.out_dir)}")
    return 0


def add_cli(subparsers) -> None:
    """Register ``assign`` and ``grade`` on an argparse subparsers object (minilstm/cli.py calls this)."""
    from .grade import add_grade_parser

    names = ", ".join(ASSIGNMENTS)
    a = subparsers.add_parser(
        "assign", help="write the student version of an assignment (stubs, notebooks, visible tests)",
        description="Write a student version of the course into OUT_DIR: the package with the solution regions "
                    "of the chosen assignment replaced by `raise NotImplementedError(hint)`, the lessons as "
                    "notebooks, the visible tests and ASSIGNMENT.md. Hidden tests are never copied. Running it "
                    f"twice gives byte-identical files. Assignments: {names}.")
    a.add_argument("out_dir", nargs="?", metavar="OUT_DIR",
                   help="folder to write (must be empty or new); its grading plan goes beside it, OUT_DIR.plan.json "
                        "(for minilstm grade --plan; keep it, do not hand it out)")
    a.add_argument("--assignment", action="append", choices=list(ASSIGNMENTS), metavar="NAME",
                   help=f"assignment to hand out ({names}); repeat for several; default: all of them")
    a.add_argument("--force", action="store_true",
                   help=f"replace an earlier handout in OUT_DIR (only a folder holding the {MARKER} file assign writes)")
    a.add_argument("--solved", action="append", metavar="PART",
                   help="leave this part filled in (assignment:part); repeatable, e.g. to hand out a part as "
                        "a worked example")
    a.add_argument("--source", metavar="CHECKOUT",
                   help="the course's sources (a checkout holding minilstm/, lessons/, setup.cfg); default: where "
                        "this minilstm is installed from, which must be a checkout (pip install -e .)")
    a.add_argument("--list", action="store_true", help="list the assignments and their parts, then exit")
    a.set_defaults(func=_cmd_assign)
    add_grade_parser(subparsers)


__all__ = ["Region", "AssignError", "find_regions", "render", "stub_lines", "percent_to_notebook",
           "collect_regions", "check_regions", "check_leaks", "build", "write_student_version", "add_cli",
           "DUPLICATE_FILES", "MARKER"]
