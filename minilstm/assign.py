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
(which assignment this is, read by ``minilstm grade``), the marker
``.minilstm-handout`` (``--force`` replaces only such a folder), plus README,
LICENSE and the packaging files so ``pip install -e .`` works. Before writing
anything, a leak check refuses a handout in which a handed-out region's code
appears anywhere in it (``check_leaks``).

It is generated, never edited by hand: the same source gives byte-identical
files (sorted walks, no timestamps, notebooks without execution counts).
"""

from __future__ import annotations

import ast
import io
import json
import re
import shutil
import sys
import textwrap
import tokenize
from dataclasses import dataclass
from pathlib import Path

from .assignments import ASSIGNMENTS, part_key, select

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
# Code elsewhere that repeats a part (evaluate_ensemble is evaluate for K models) sits between
# ``### BEGIN DUPLICATE [assignment:part]`` and ``### END DUPLICATE``: a stub while that part is handed out.
DUP_BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)### BEGIN DUPLICATE \[(?P<key>[\w-]+:[\w-]+)\]"
                          r"(?:\s*\(instead: (?P<instead>.*)\))?\s*$")
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


def _read_hint(rest: str, lines: list, start: int, where: str):
    """Parse ``(hint: ...)`` from the BEGIN line's remainder and any ``###`` continuation lines.

    The hint ends where its opening parenthesis closes, so hints may contain
    parentheses of their own. Returns (hint, index of the first code line).
    """
    rest = rest.strip()
    if not rest:
        return "", start
    if not rest.startswith("(hint:"):
        raise AssignError(f"{where}: after the tag, expected '(hint: ...)', got {rest!r}")
    text, depth, i = rest[len("(hint:"):], 1, start
    pieces = []
    while True:
        for pos, ch in enumerate(text):
            depth += (ch == "(") - (ch == ")")
            if depth == 0:
                if text[pos + 1:].strip():
                    raise AssignError(f"{where}: text after the hint's closing parenthesis (an unbalanced \")\" in "
                                      "the hint, as in '[0, 1)', closes it early)")
                pieces.append(text[:pos])
                return " ".join(p.strip() for p in pieces if p.strip()), i
        pieces.append(text)
        m = CONT_RE.match(lines[i]) if i < len(lines) else None
        if m is None or BEGIN_RE.match(lines[i]) or END_RE.match(lines[i]):
            raise AssignError(f"{where}: the hint's parenthesis never closes; continue a long hint on lines "
                              "starting with ### and end it with ')'")
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
    or by nothing (``drop``); drop the markers. ``(instead: code)`` after the tag replaces the
    block by that one line (e.g. a call of the student's function) rather than a stub."""
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
        end = next((k for k in range(i + 1, len(lines)) if DUP_END_RE.match(lines[k])), None)
        if end is None:
            raise AssignError(f"{path}:{i + 1}: '### BEGIN DUPLICATE' without '### END DUPLICATE'")
        key, ind = m.group("key"), m.group("indent")
        if drop:
            pass
        elif m.group("instead") and (key in stubbed or "*" in stubbed):
            out.append(ind + m.group("instead"))
        elif key in stubbed or "*" in stubbed:
            inside = [name for first, last, name in spans if first <= i <= last]
            who = inside[-1] if inside else path
            out += [f"{ind}raise NotImplementedError(",
                    f"{ind}    {_literal(f'{who} is not part of this handout: it would give away [{key}]')})"]
        else:
            out += lines[i + 1:end]
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
        "of the other parts are the reference's there, so a bug in one part costs that part's points only, and "
        "a part that crashes, loops forever or runs out of memory scores 0 without harming the others. The "
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

_SKIP_TOKENS = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                tokenize.ENCODING, tokenize.ENDMARKER}


def normalise_python(code: str) -> list:
    """One string per line of code: its tokens joined, comments and whitespace gone."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
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


def _texts(rel: str, data: bytes) -> list:
    """The text(s) of one handout file to search, notebooks cell by cell."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    if rel.endswith(".ipynb"):
        try:
            return ["".join(c.get("source", "")) for c in json.loads(text).get("cells", [])]
        except (ValueError, AttributeError):
            return [text]
    return [text]


_GIVEN_CACHE = {}


def _given_lines(source_root: Path) -> list:
    """Normalised lines of the code every handout gives away (the package outside solution regions,
    duplicate blocks, duplicate files and the visible tests), with repeats. Cached per state of the files."""
    package = source_root / "minilstm"
    paths = list(_walk(package, skip_dirs=[package / "assignments" / "visible"]))
    key = (str(source_root.resolve()), tuple((str(p), p.stat().st_mtime_ns) for p in paths))
    if key not in _GIVEN_CACHE:
        _GIVEN_CACHE.clear()
        _GIVEN_CACHE[key] = _read_given(source_root, paths)
    return _GIVEN_CACHE[key]


def _read_given(source_root: Path, paths: list) -> list:
    given = []
    for path in paths:
        rel = path.relative_to(source_root).as_posix()
        if path.suffix != ".py" or rel in DUPLICATE_FILES:
            continue
        text = render(path.read_text(encoding="utf-8"), rel, lambda r: True)
        text = _render_duplicates(text, rel, {"*"}, drop=True)
        given += set(normalise_python(text)) | {normalise_line(x) for x in text.splitlines()}
    return given


def check_leaks(files: dict, stubbed: list, source_root: Path) -> None:
    """Refuse a handout in which the code of a handed-out region appears in any file it writes.

    Lines are compared normalised (tokens without comments or whitespace; kernel strings and
    notebooks line by line without ';' and comments). A line counts when it is at least
    LEAK_MIN_CHARS long, not in a hint and not boilerplate (found twice or more in the package's
    code outside the regions); a file leaks a region when two of its lines, or one line of 40
    characters or more, appear in it.
    """
    given = "\n".join(_given_lines(source_root))
    hints = "\n".join(normalise_line(r.hint) for r in stubbed)

    def boilerplate(line):  # in given code twice or more (a line found once there may be a copied solution)
        return given.count(line) >= 2
    needles = {}
    for r in stubbed:
        src = (source_root / r.path).read_text(encoding="utf-8").splitlines()
        code = textwrap.dedent("\n".join(src[r.code_start:r.end]))
        for line in normalise_python(code):
            if len(line) >= LEAK_MIN_CHARS and line not in hints and not boilerplate(line):
                needles.setdefault(r, set()).add(line)
    for rel in sorted(files):
        for text in _texts(rel, files[rel]):
            hay = {normalise_line(x) for x in text.splitlines()}
            blob = "\n".join(hay)
            for r, lines in needles.items():
                found = sorted(n for n in lines if n in hay or (len(n) >= 24 and n in blob))
                if len(found) >= 2 or any(len(n) >= 40 for n in found):
                    raise AssignError(
                        f"leak: {rel} contains the solution of [{r.key}] ({r.where}): {', '.join(map(repr, found))}. "
                        f"Put that code between '### BEGIN DUPLICATE [{r.key}]' and '### END DUPLICATE', or list "
                        "the file in DUPLICATE_FILES (minilstm/assign.py)")


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
    return sorted(files)


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
    print(f"grade it with: minilstm grade {args.out_dir}")
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
    a.add_argument("out_dir", nargs="?", metavar="OUT_DIR", help="folder to write (must be empty or new)")
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
